"""Scan limits and the team's own allowlist entries, as one immutable value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

MiB = 1024**2
GiB = 1024**3


@dataclass(frozen=True, kw_only=True)
class ScanPolicy:
    """What the artifact scanner trusts beyond its built-in tables, and how far it reads.

    `allow` holds extra exact `module.name` entries (a team's own classes); the built-in denylist
    still wins over them. Every limit turns into a finding when reached, never into a silent pass:
    `max_file_bytes` per regular file, `max_total_bytes` decompressed over the whole scan,
    `max_depth` nested containers and compression layers, `max_compression_ratio` once a stream
    has produced `ratio_floor_bytes`, `max_members` entries per archive or directory.
    """

    allow: frozenset[str] = frozenset()
    max_file_bytes: int = 2 * GiB
    max_total_bytes: int = 8 * GiB
    max_depth: int = 6
    max_compression_ratio: float = 200.0
    ratio_floor_bytes: int = 32 * MiB
    max_members: int = 10_000

    def __post_init__(self) -> None:
        allow = frozenset(self.allow)
        bad = sorted(a for a in allow if not _is_exact_name(a))
        if bad:
            raise ValueError(
                f"allow entries must be exact dotted names such as 'mypkg.models.MyModel', not {bad}"
            )
        object.__setattr__(self, "allow", allow)
        for name in ("max_file_bytes", "max_total_bytes", "max_depth", "max_members", "ratio_floor_bytes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be a positive integer")
        if float(self.max_compression_ratio) <= 1:
            raise ValueError("max_compression_ratio must be greater than 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> ScanPolicy:
        """Build from a policy-file section such as ``{"allow": [...], "max_depth": 4}``."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown artifact scan settings: {', '.join(unknown)}")
        if "allow" in data:
            data["allow"] = frozenset(data["allow"] or ())
        return cls(**data)


def _is_exact_name(entry: object) -> bool:
    if not isinstance(entry, str) or "." not in entry:
        return False
    return all(part.isidentifier() for part in entry.split("."))
