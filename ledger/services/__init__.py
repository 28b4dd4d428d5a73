"""ledger/services"""
