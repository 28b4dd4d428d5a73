"""Adapters: PostgreSQL (event store, outbox, pools, migrations) and HTTP (Order Service)."""
