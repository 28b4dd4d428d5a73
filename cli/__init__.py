"""The `pickpack` command line (entry point: cli.main:main)."""
