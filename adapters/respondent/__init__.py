"""Respondent Partner API adapter: messaging client and webhook verification/parsing."""

from adapters.respondent.client import RespondentClient
from adapters.respondent.webhooks import parse_webhook, verify_signature

__all__ = ["RespondentClient", "parse_webhook", "verify_signature"]
