"""The system of record: items, venues, portals, devices, people, approvals, incidents and the journal.

Every other package reads the register; only this package writes the database. Each service function
validates its write against the rules of `domain-rules.md`, appends to the tamper-evident journal in the
same transaction, and raises `RuleViolation` naming the rule when a write is refused.
"""
