"""The ledger: the only part of the service that talks to the database."""
