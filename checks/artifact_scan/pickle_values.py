"""What the pickle machine models and reports: its values, the names a pickle imports, the issues
it raises, and the analysis of a stream of pickles."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STR_CAP = 1 << 16  # longer strings are kept as LONG_STR, never materialised
ITEM_CAP = 256  # items kept per container
OFFSET_CAP = 1000  # offsets kept per imported name


class PickleError(Exception):
    """The bytes stop being a pickle a loader could finish: truncated, unknown opcode, bad stack."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"{message} (offset {offset})")
        self.offset = offset
        self.message = message


@dataclass(eq=False)
class Ref:
    """One imported `module.name`, with where it is imported and whether a load calls it."""

    module: str
    name: str
    offsets: list[int] = field(default_factory=list)
    count: int = 0
    invoked: bool = False
    via: str | None = None  # a resolver call (getattr, numpy's _ufunc_reconstruct) rather than an opcode
    resolved_calls: int = 0  # calls of this resolver with constant arguments (judged as their result)
    other_uses: int = 0  # any other call of it, or hand-over to another call or BUILD

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}"

    def seen(self, offset: int) -> None:
        self.count += 1
        if len(self.offsets) < OFFSET_CAP:
            self.offsets.append(offset)


@dataclass
class Issue:
    """Something a loader would do that cannot be pinned to a name: kind, offset, related name."""

    kind: str  # dynamic_import | dynamic_call | build_on_global | ambiguous_stream
    offset: int
    detail: str
    name: str | None = None


@dataclass
class Analysis:
    """Everything found in one stream of pickles; partial when `error` or `stream_error` is set."""

    refs: dict[str, Ref] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    calls: int = 0
    pickles: int = 0
    protocols: set[int] = field(default_factory=set)
    error: PickleError | None = None
    stream_error: Exception | None = None

    def ref(self, module: str, name: str, offset: int, via: str | None = None) -> Ref:
        key = f"{module}.{name}"
        found = self.refs.get(key)
        if found is None:
            found = self.refs[key] = Ref(module, name, via=via)
        found.seen(offset)
        return found

    def merge(self, other: Analysis, keep: Callable[[Ref], bool] | None = None) -> None:
        for key, ref in other.refs.items():
            if keep is not None and not keep(ref):
                continue
            mine = self.refs.setdefault(key, Ref(ref.module, ref.name, via=ref.via))
            mine.invoked |= ref.invoked
            mine.count += ref.count
            mine.resolved_calls += ref.resolved_calls
            mine.other_uses += ref.other_uses
            mine.offsets = sorted(set(mine.offsets) | set(ref.offsets))[:OFFSET_CAP]
        if keep is None:
            self.issues += other.issues
            self.calls += other.calls
            self.pickles += other.pickles
        self.protocols |= other.protocols


# -- values ---------------------------------------------------------------------------------------


class _Opaque:
    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


OPAQUE = _Opaque("opaque")
LONG_STR = _Opaque("long string")
UNRESOLVED = _Opaque("unresolved global")


class Global:
    """The object a GLOBAL-like opcode imports."""

    __slots__ = ("offset", "ref")

    def __init__(self, ref: Ref, offset: int) -> None:
        self.ref = ref
        self.offset = offset


class Call:
    """What calling `callee` with `args` returns; `state` is what a later BUILD gave it."""

    __slots__ = ("args", "callee", "offset", "state")

    def __init__(self, callee: Any, args: Any, offset: int) -> None:
        self.callee = callee
        self.args = args
        self.offset = offset
        self.state: Any = None

    @property
    def callee_name(self) -> str | None:
        return self.callee.ref.full if isinstance(self.callee, Global) else None


class Seq:
    """A tuple, list, set or frozenset; only the first ITEM_CAP items are kept."""

    __slots__ = ("items", "kind", "size")

    def __init__(self, kind: str, items: list[Any] | None = None) -> None:
        self.kind = kind
        self.items: list[Any] = []
        self.size = 0
        self.extend(items or [])

    def extend(self, items: list[Any]) -> None:
        room = ITEM_CAP - len(self.items)
        if room > 0:
            self.items.extend(items[:room])
        self.size += len(items)


class Map:
    """A dict; string and integer keys only, first ITEM_CAP entries."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[Any, Any] = {}

    def update(self, flat: list[Any]) -> None:
        items = self.items
        for i in range(0, min(len(flat), 2 * (ITEM_CAP - len(items))), 2):
            key = flat[i]
            if type(key) is str or type(key) is int:
                items[key] = flat[i + 1]


def is_dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))
