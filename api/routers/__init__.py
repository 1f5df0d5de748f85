"""One router per kind of user: administration, approvals, guard station, destruction centre, auditor."""
