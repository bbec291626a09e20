"""rating-service: prices AI support outcomes and keeps an append-only ledger of what is owed."""

__version__ = "0.1.0"
