"""Service functions: plain functions over a session. Each validates, writes, and journals in one transaction.

The caller owns the transaction (see `registry.db.transaction`): a refused write raises and nothing of it
is kept.
"""
