"""Repositories: every statement and codec of one family of tables, on a unit of work."""
