"""The pick-pack ledger: domain events, rules and the PostgreSQL event store."""
