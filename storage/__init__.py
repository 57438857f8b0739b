"""Persistence: SQLModel tables, queries, the outbox and migrations."""
