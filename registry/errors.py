"""Errors the register raises. A refused write names the rule it broke; the transaction is rolled back."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every register error."""


class RuleViolation(RegistryError):
    """A write would break a rule of domain-rules.md. `rule` is a stable identifier, e.g. `venue.ceiling`;
    `field`, when known, names the input field whose value breaks it (the site loader points at its line)."""

    def __init__(self, rule: str, message: str, *, details: list[str] | None = None, field: str | None = None) -> None:
        super().__init__(f"[{rule}] {message}")
        self.rule = rule
        self.message = message
        self.details = details or []
        self.field = field


class InvalidInput(RegistryError):
    """A value is malformed (EPC, level, date, unknown enum member). `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NotFound(RegistryError):
    """A reference names nothing in the register."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"no {kind} {key!r}")
        self.kind = kind
        self.key = key
