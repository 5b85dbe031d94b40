"""Static pickle analysis: walk the opcodes and simulate the stack and memo, never import or call.

The machine follows values far enough to know which `module.name` each GLOBAL / STACK_GLOBAL /
INST / OBJ imports (strings may arrive through the memo) and which of them REDUCE / NEWOBJ /
NEWOBJ_EX / OBJ / INST / BUILD invoke. Only the values that matter are modelled: short strings,
integers, tuples and dicts (capped), imported names and call results; everything else is opaque.

Two loader quirks are followed because they decide where opcodes are: joblib's NumpyArrayWrapper,
whose BUILD reads raw array bytes (or a nested pickle) straight from the stream, and legacy PyTorch
files, whose pickles are interleaved with raw storage records.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from checks.artifact_scan import layouts
from checks.artifact_scan.pickle_ops import HANDLERS, STOP
from checks.artifact_scan.pickle_values import (
    LONG_STR,
    OPAQUE,
    STR_CAP,
    Analysis,
    Call,
    Global,
    Issue,
    Map,
    PickleError,
    Ref,
    Seq,
    is_dotted,
)
from checks.artifact_scan.rules import RESOLVERS, python3_name
from checks.artifact_scan.streams import Corrupt, Limit, Reader, Truncated

__all__ = ["Analysis", "Machine", "PickleError", "Ref", "analyse"]

LINE_CAP = 1 << 20  # protocol 0 lines (GLOBAL, INT, STRING...) longer than this are a parse error
PROBE_CAP = 1 << 16  # bytes of joblib raw array data also read as opcodes (the plain pickle.load view)
NESTED_PROBE_CAP = 1 << 24  # nested object-array pickles longer than this get no plain-view reading


# -- the machine ----------------------------------------------------------------------------------


class Machine:
    """Runs one pickle's opcodes over a Reader, recording imports and calls into an Analysis.

    A child machine (`parent=`) starts from its parent's stack and reads through to its memo: used
    for the plain-pickle view of joblib array bytes and for nested object-array pickles.
    """

    def __init__(
        self,
        reader: Reader,
        out: Analysis,
        *,
        denied: Callable[[Ref], bool],
        parent: Machine | None = None,
        joblib: bool = True,
    ) -> None:
        self.r = reader
        self.out = out
        self.denied = denied
        self.parent = parent
        self.joblib = joblib
        self.stack: list[Any] = list(parent.stack) if parent else []
        self.marks: list[int] = list(parent.marks) if parent else []
        self.memo: dict[int, Any] = {}
        self.proto = parent.proto if parent else 0
        self.op_offset = 0

    def run(self) -> Any:
        """Execute until STOP and return the pickled value; PickleError when that is impossible."""
        r = self.r
        handlers = HANDLERS
        try:
            while True:
                pos = r.pos
                if pos < len(r.buf):  # the hot path: one opcode byte from the buffer
                    code = r.buf[pos]
                    r.pos = pos + 1
                    self.op_offset = r.base + pos
                else:
                    self.op_offset = r.tell()
                    code = r.read_byte()
                if code == STOP:
                    value = self._pop()
                    self.out.pickles += 1
                    self.out.protocols.add(self.proto)
                    return value
                if code < 0:
                    raise self.error("pickle ends without a STOP opcode")
                handler = handlers[code]
                if handler is None:
                    raise self.error(f"unknown opcode 0x{code:02x}")
                handler(self)
        except Truncated as exc:
            raise PickleError(self.op_offset, f"truncated pickle: {exc}") from None
        except (ValueError, UnicodeDecodeError, OverflowError) as exc:
            raise PickleError(self.op_offset, f"malformed argument: {exc}") from None

    def error(self, message: str) -> PickleError:
        return PickleError(self.op_offset, message)

    # stack helpers
    def _frame_start(self) -> int:
        return self.marks[-1] if self.marks else 0

    def _pop(self) -> Any:
        marks = self.marks
        if len(self.stack) <= (marks[-1] if marks else 0):
            raise self.error("stack underflow")
        return self.stack.pop()

    def _top(self) -> Any:
        marks = self.marks
        if len(self.stack) <= (marks[-1] if marks else 0):
            raise self.error("stack underflow")
        return self.stack[-1]

    def _pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self.error("MARK expected")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _memo_get(self, index: int) -> Any:
        machine: Machine | None = self
        while machine is not None:
            if index in machine.memo:
                return machine.memo[index]
            machine = machine.parent
        raise self.error(f"memo key {index} not found")

    def _memo_len(self) -> int:
        return len(self.memo) + (self.parent._memo_len() if self.parent else 0)

    # argument readers
    def _uint(self, n: int) -> int:
        if n == 1:
            return self.r.read_u8()
        return int.from_bytes(self.r.read_exact(n), "little")

    def _sint(self, n: int) -> int:
        return int.from_bytes(self.r.read_exact(n), "little", signed=True)

    def _line(self) -> bytes:
        line = self.r.readline(LINE_CAP)
        if line is None:
            raise self.error("line argument too long")
        if not line.endswith(b"\n"):
            raise self.error("truncated pickle: line argument without newline")
        return line[:-1]

    def _text(self, n: int, encoding: str) -> Any:
        if n < 0:
            raise self.error("negative length")
        if n > STR_CAP:
            self.r.skip(n)
            return LONG_STR
        return self.r.read_exact(n).decode(encoding, "surrogatepass" if encoding == "utf-8" else "strict")

    def _blob(self, n: int) -> Any:
        if n < 0:
            raise self.error("negative length")
        self.r.skip(n)
        return OPAQUE

    # semantics
    def _import(self, module: Any, name: Any) -> Any:
        if not (isinstance(module, str) and isinstance(name, str)):
            raise self.error("GLOBAL needs two strings")
        if not (is_dotted(module) and is_dotted(name)):
            raise self.error(f"not an importable name: {module!r} {name!r}")
        return Global(self.out.ref(module, name, self.op_offset), self.op_offset)

    def _call(self, callee: Any, args: Any, op: str, kwargs: Any = None) -> None:
        self.out.calls += 1
        result: Any = Call(callee, args, self.op_offset)
        if isinstance(callee, Global):
            callee.ref.invoked = True
            kind = RESOLVERS.get(python3_name(callee.ref.module, callee.ref.name))
            resolved = self._resolve(kind, callee, args) if kind else None
            if resolved is None:
                callee.ref.other_uses += 1
            else:
                callee.ref.resolved_calls += 1
                result = resolved
        else:
            producer = callee.callee_name if isinstance(callee, Call) else None
            self.out.issues.append(
                Issue("dynamic_call", self.op_offset, f"{op} calls an object built at load time", producer)
            )
        for container in (args, kwargs):
            items = (
                container.items.values() if isinstance(container, Map) else getattr(container, "items", [])
            )
            for item in items:
                if isinstance(item, Global):
                    item.ref.invoked = True  # handed to a constructor or call that may invoke it
                    item.ref.other_uses += 1
        self.stack.append(result)

    def _resolve(self, kind: str, resolver: Global, args: Any) -> Global | None:
        """The name a resolver call fetches when its arguments are constants, else None."""
        items = args.items if isinstance(args, Seq) and args.size == len(args.items) else []
        if len(items) != 2 or not isinstance(items[1], str) or not is_dotted(items[1]):
            return None
        if kind == "module_name" and isinstance(items[0], str) and is_dotted(items[0]):
            module, name = items[0], items[1]
        elif kind == "attribute" and isinstance(items[0], Global):
            module, name = items[0].ref.module, f"{items[0].ref.name}.{items[1]}"
        else:
            return None
        return Global(self.out.ref(module, name, self.op_offset, via=resolver.ref.full), self.op_offset)

    def _build(self, state: Any) -> None:
        self.out.calls += 1
        target = self._top()
        if isinstance(target, Global):
            target.ref.other_uses += 1
            self.out.issues.append(
                Issue(
                    "build_on_global",
                    self.op_offset,
                    "BUILD sets attributes on an imported object",
                    target.ref.full,
                )
            )
        elif isinstance(target, Call):
            target.state = state
            if self.joblib and target.callee_name in layouts.JOBLIB_WRAPPERS:
                self._joblib_array(state)

    def _joblib_array(self, state: Any) -> None:
        """joblib's BUILD reads the array that follows in the stream: skip it or walk its pickle.

        A plain pickle.load of the same file reads those bytes as opcodes of the outer pickle
        instead; that second reading is probed too, keeping only the denied names it reaches.
        """
        try:
            layout = layouts.joblib_array(state)
        except layouts.LayoutError as exc:
            raise self.error(f"cannot tell where joblib array data ends: {exc}") from None
        start = self.r.tell()
        if layout.has_object:  # joblib reads a nested pickle with a fresh unpickler
            self.r.start_recording(NESTED_PROBE_CAP)
            try:
                Machine(self.r, self.out, denied=self.denied, joblib=False).run()
            finally:
                nested = self.r.stop_recording()
            if nested is not None:
                self._probe_plain_view(nested, start, covers=True)
        else:
            size = layout.nbytes
            if layout.aligned:
                head = self.r.peek(1)
                size += 1 + (head[0] if head else 0)
            window = self.r.peek(min(size, PROBE_CAP) + 4096)  # the region, then where joblib resumes
            self._probe_plain_view(window, start, covers=len(window) >= size)
            self.r.skip(size)
        self.stack[-1] = OPAQUE

    def _probe_plain_view(self, data: bytes, start: int, *, covers: bool) -> None:
        """Read `data` as opcodes continuing this pickle; keep the denied names reached. When the
        opcodes are still valid where `data` ends and it does not cover the whole region joblib
        skips, the plain reading cannot be followed: an ambiguous stream."""
        part = Analysis()
        probe = Machine(Reader(io.BytesIO(data), start), part, denied=self.denied, parent=self, joblib=False)
        try:
            probe.run()
        except PickleError:
            if probe.r.at_eof() and not covers:
                self.out.issues.append(
                    Issue("ambiguous_stream", start, "joblib array bytes also parse as pickle opcodes")
                )
        self.out.merge(part, keep=self.denied)


# -- streams of pickles ---------------------------------------------------------------------------


def analyse(reader: Reader, *, committed: bool, denied: Callable[[Ref], bool]) -> Analysis:
    """Analyse the pickle at the reader's position and every pickle that follows it.

    `committed` says the bytes are known to be a pickle (a PROTO opcode, or the artifact says so):
    then any failure to parse is an error of the analysis. Otherwise the bytes are probed: a probe
    that fails before any call opcode is not a pickle (text, raw data) and only denied imports seen
    on the way are kept. Bytes after a complete pickle are always probed, as loaders that read
    several pickles from one file would read them. Corrupt or over-limit streams below the pickle
    end the walk with `stream_error` set; what was found until then is kept.
    """
    out = Analysis()
    first = True
    while first or not _at_eof(reader, out):
        part = Analysis()
        try:
            value = Machine(reader, part, denied=denied).run()
        except PickleError as exc:
            _keep_failed(out, part, committed and first, exc, denied)
            return out
        except (Corrupt, Limit) as exc:
            _keep_failed(out, part, committed and first, None, denied)
            out.stream_error = exc
            return out
        out.merge(part)
        first = False
        try:
            layouts.skip_legacy_torch_record(value, reader)
        except (layouts.LayoutError, Truncated) as exc:
            out.error = PickleError(reader.tell(), f"legacy PyTorch record: {exc}")
            return out
        except (Corrupt, Limit) as exc:
            out.stream_error = exc
            return out
    return out


def _at_eof(reader: Reader, out: Analysis) -> bool:
    try:
        return reader.at_eof()
    except (Corrupt, Limit) as exc:
        out.stream_error = exc
        return True


def _keep_failed(
    out: Analysis, part: Analysis, committed: bool, exc: PickleError | None, denied: Callable[[Ref], bool]
) -> None:
    """Keep a failed parse: all of it when it is surely a pickle or already called something."""
    if committed or part.calls:
        out.merge(part)
        out.error = exc or out.error
    else:
        out.merge(part, keep=denied)
