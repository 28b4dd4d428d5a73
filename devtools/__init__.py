"""Development tools outside the production packages (the fake Order Service)."""
