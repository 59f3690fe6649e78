"""Rally UXR adapter: study-record client and Svix webhook verification/parsing."""

from adapters.rally.client import RallyClient
from adapters.rally.webhooks import RallySignatureError, verify_and_parse

__all__ = ["RallyClient", "RallySignatureError", "verify_and_parse"]
