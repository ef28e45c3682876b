"""Persistence: SQLModel tables, engines and sessions, and the queries (the only SQL)."""

from gatepass.store import admin, bodies, events, identity, models, oauth  # noqa: F401  (registers every table)
