"""ledger/domain"""
