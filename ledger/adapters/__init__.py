"""ledger/adapters"""
