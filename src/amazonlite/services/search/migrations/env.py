from amazonlite.platform.migrations import run_env
from amazonlite.services.search.models import Base

run_env(Base.metadata)
