from __future__ import annotations

from pathlib import Path

from amazonlite.platform.service import ServiceModule
from amazonlite.services.search.commands import checks, on_shutdown, on_startup
from amazonlite.services.search.endpoints import router
from amazonlite.services.search.handlers import handlers
from amazonlite.services.search.models import Base
from amazonlite.services.search.settings import SearchSettings

SERVICE = ServiceModule(
    name="search",
    description="Full-text product search (a read model of the catalog): relevance, typos, filters, facets, "
                "autocomplete.",
    router=router,
    metadata=Base.metadata,
    settings=SearchSettings,
    handlers=handlers,
    on_startup=on_startup,
    on_shutdown=on_shutdown,
    checks=checks,
    migrations=Path(__file__).parent / "migrations",
)
