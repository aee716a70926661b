from services.customer.models import Base
from shared.messaging import MESSAGING_METADATA
from shared.migrations import run_env

run_env([Base.metadata, MESSAGING_METADATA])
