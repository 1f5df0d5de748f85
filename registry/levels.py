"""Classification levels, ordered as the regulations order them (domain-rules.md section 1)."""

from __future__ import annotations

import enum


class Level(enum.IntEnum):
    UNCLASSIFIED = 0
    INTERNAL = 1  # work secret
    CONFIDENTIAL = 2  # 秘密
    SECRET = 3  # 机密
    TOP_SECRET = 4  # 绝密

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Level) -> Level:
        """Accept a level name (`secret`, `top_secret`, `top-secret`) or its number; ValueError otherwise."""
        if isinstance(value, Level):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_").replace(" ", "_")
            for level in cls:
                if level.label == key:
                    return level
        names = ", ".join(level.label for level in cls)
        raise ValueError(f"{value!r} is not a classification level (one of: {names})")
