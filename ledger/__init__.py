"""The pick-pack ledger: its domain, adapters and use cases (ledger.domain, adapters, services)."""
