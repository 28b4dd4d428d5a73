"""Read models folded from the event store: line totals and order packing state."""
