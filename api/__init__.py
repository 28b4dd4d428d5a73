"""HTTP adapter: the Emporix Pick-Pack API on FastAPI, and the `pickpack` command line."""
