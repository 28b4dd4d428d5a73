"""The HTTP entrypoint: the Emporix Pick-Pack API on FastAPI."""
