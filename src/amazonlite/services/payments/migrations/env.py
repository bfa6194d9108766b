from amazonlite.platform.migrations import run_env
from amazonlite.services.payments.models import Base

run_env(Base.metadata)
