"""The service layer: use cases, the group-commit writer, the outbox dispatcher, wiring."""
