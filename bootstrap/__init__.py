"""The composition root: where a process's parts are opened, built and wired together.

It sits above both `ledger` and `projections` (docs/explanation/architecture.md): the
only package that imports both to connect them (the projection workers to the store's
commits, the read side to the store's pool), so that neither imports the other's
upper half. `opened` (opened.py) opens settings, database, migrations and store for
`serve` and every CLI command; `Runtime` (runtime.py) is what a serving process holds.
"""
