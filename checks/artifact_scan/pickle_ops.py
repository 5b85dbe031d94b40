"""Opcode handlers: what each opcode does to the simulated stack and memo (nothing is imported).

One function per opcode, registered by pickletools' opcode name; the commonest ones read their
argument straight from the reader's buffer, since one extra call per opcode is the scan's cost.
"""

from __future__ import annotations

import codecs
import pickletools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from checks.artifact_scan.pickle_values import (
    LONG_STR,
    OPAQUE,
    STR_CAP,
    UNRESOLVED,
    Call,
    Global,
    Issue,
    Map,
    Seq,
)

if TYPE_CHECKING:
    from checks.artifact_scan.pickle_vm import Machine

OPCODES = {ord(op.code): op.name for op in pickletools.opcodes}
STOP = ord(".")


def _op(name: str) -> Callable[[Callable[[Machine], None]], Callable[[Machine], None]]:
    def register(fn: Callable[[Machine], None]) -> Callable[[Machine], None]:
        _BY_NAME[name] = fn
        return fn

    return register


_BY_NAME: dict[str, Callable[[Machine], None]] = {}


def _push(value_of: Callable[[Machine], Any]) -> Callable[[Machine], None]:
    def handler(m: Machine) -> None:
        m.stack.append(value_of(m))

    return handler


def _decimal(m: Machine) -> Any:
    data = m._line()
    if data == b"00":
        return False
    if data == b"01":
        return True
    return int(data, 0)


def _long_line(m: Machine) -> int:
    data = m._line()
    return int(data[:-1] if data.endswith(b"L") else data, 0)


def _long_bytes(m: Machine, n: int) -> Any:
    if n < 0:
        raise m.error("negative length")
    if n > 64:
        m.r.skip(n)
        return OPAQUE
    return int.from_bytes(m.r.read_exact(n), "little", signed=True)


def _text_line(m: Machine, decode: Callable[[bytes], str]) -> Any:
    """A protocol 0 string argument; kept only when short."""
    line = m.r.readline(STR_CAP)
    if line is None:
        return LONG_STR
    if not line.endswith(b"\n"):
        raise m.error("truncated pickle: line argument without newline")
    return decode(line[:-1])


def _unquote(data: bytes) -> str:
    if len(data) < 2 or data[0] != data[-1] or data[:1] not in (b"'", b'"'):
        raise ValueError("STRING argument must be quoted")
    return codecs.escape_decode(data[1:-1])[0].decode("latin-1")


def _extension(m: Machine, code: int) -> Global:
    """EXT1/2/4 import through copyreg's extension registry; named by code, judged as unknown."""
    return Global(m.out.ref("copyreg._extension_registry", f"code{code}", m.op_offset), m.op_offset)


def _float_line(m: Machine) -> Any:
    float(m._line())
    return OPAQUE


_BY_NAME.update(
    {
        "INT": _push(_decimal),
        "LONG": _push(_long_line),
        "LONG1": _push(lambda m: _long_bytes(m, m._uint(1))),
        "LONG4": _push(lambda m: _long_bytes(m, m._sint(4))),
        "STRING": _push(lambda m: _text_line(m, _unquote)),
        "BINSTRING": _push(lambda m: m._text(m._sint(4), "latin-1")),
        "SHORT_BINSTRING": _push(lambda m: m._text(m._uint(1), "latin-1")),
        "BINBYTES8": _push(lambda m: m._blob(m._uint(8))),
        "BYTEARRAY8": _push(lambda m: m._blob(m._uint(8))),
        "NEXT_BUFFER": _push(lambda m: OPAQUE),
        "UNICODE": _push(lambda m: _text_line(m, lambda b: b.decode("raw-unicode-escape"))),
        "BINUNICODE8": _push(lambda m: m._text(m._uint(8), "utf-8")),
        "FLOAT": _push(_float_line),
        "EMPTY_SET": _push(lambda m: Seq("set")),
        "LIST": _push(lambda m: Seq("list", m._pop_mark())),
        "TUPLE": _push(lambda m: Seq("tuple", m._pop_mark())),
        "FROZENSET": _push(lambda m: Seq("frozenset", m._pop_mark())),
        "GET": _push(lambda m: m._memo_get(int(m._line()))),
        "LONG_BINGET": _push(lambda m: m._memo_get(m._uint(4))),
        "EXT1": _push(lambda m: _extension(m, m._uint(1))),
        "EXT2": _push(lambda m: _extension(m, m._uint(2))),
        "EXT4": _push(lambda m: _extension(m, m._sint(4))),
        "PERSID": _push(lambda m: (m._line(), OPAQUE)[1]),
    }
)


# The opcodes ML pickles are made of, without the generic helpers' extra calls.


@_op("BINFLOAT")
def _binfloat(m: Machine) -> None:
    m.r.skip(8)
    m.stack.append(OPAQUE)


@_op("BININT1")
def _binint1(m: Machine) -> None:
    m.stack.append(m.r.read_u8())


@_op("SHORT_BINUNICODE")
def _short_binunicode(m: Machine) -> None:
    m.stack.append(m.r.read_exact(m.r.read_u8()).decode("utf-8", "surrogatepass"))


@_op("SHORT_BINBYTES")
def _short_binbytes(m: Machine) -> None:
    m.r.skip(m.r.read_u8())
    m.stack.append(OPAQUE)


@_op("BINGET")
def _binget(m: Machine) -> None:
    r = m.r
    pos = r.pos
    if pos < len(r.buf):  # inline one-byte argument: BINGET and MEMOIZE are the commonest opcodes
        index = r.buf[pos]
        r.pos = pos + 1
    else:
        index = r.read_u8()
    memo = m.memo
    m.stack.append(memo[index] if index in memo else m._memo_get(index))


@_op("BININT")
def _binint(m: Machine) -> None:
    m.stack.append(int.from_bytes(m.r.read_exact(4), "little", signed=True))


@_op("BININT2")
def _binint2(m: Machine) -> None:
    m.stack.append(int.from_bytes(m.r.read_exact(2), "little"))


@_op("BINUNICODE")
def _binunicode(m: Machine) -> None:
    m.stack.append(m._text(int.from_bytes(m.r.read_exact(4), "little"), "utf-8"))


@_op("BINBYTES")
def _binbytes(m: Machine) -> None:
    m.r.skip(int.from_bytes(m.r.read_exact(4), "little"))
    m.stack.append(OPAQUE)


@_op("EMPTY_LIST")
def _empty_list(m: Machine) -> None:
    m.stack.append(Seq("list"))


@_op("EMPTY_DICT")
def _empty_dict(m: Machine) -> None:
    m.stack.append(Map())


@_op("NEWTRUE")
def _newtrue(m: Machine) -> None:
    m.stack.append(True)


@_op("NEWFALSE")
def _newfalse(m: Machine) -> None:
    m.stack.append(False)


@_op("TUPLE1")
def _tuple1(m: Machine) -> None:
    m.stack.append(Seq("tuple", [m._pop()]))


@_op("TUPLE2")
def _tuple2(m: Machine) -> None:
    second = m._pop()
    m.stack.append(Seq("tuple", [m._pop(), second]))


@_op("TUPLE3")
def _tuple3(m: Machine) -> None:
    third = m._pop()
    second = m._pop()
    m.stack.append(Seq("tuple", [m._pop(), second, third]))


@_op("EMPTY_TUPLE")
def _empty_tuple(m: Machine) -> None:
    m.stack.append(Seq("tuple"))


@_op("NONE")
def _none(m: Machine) -> None:
    m.stack.append(None)


@_op("DICT")
def _dict(m: Machine) -> None:
    items = m._pop_mark()
    if len(items) % 2:
        raise m.error("DICT needs key/value pairs")
    d = Map()
    d.update(items)
    m.stack.append(d)


@_op("APPENDS")
def _appends(m: Machine) -> None:
    items = m._pop_mark()
    target = m._top()
    if isinstance(target, Seq):
        target.extend(items)


@_op("ADDITEMS")
def _additems(m: Machine) -> None:
    _appends(m)


@_op("SETITEM")
def _setitem(m: Machine) -> None:
    value = m._pop()
    key = m._pop()
    target = m._top()
    if isinstance(target, Map):
        target.update([key, value])


@_op("SETITEMS")
def _setitems(m: Machine) -> None:
    items = m._pop_mark()
    if len(items) % 2:
        raise m.error("SETITEMS needs key/value pairs")
    target = m._top()
    if isinstance(target, Map):
        target.update(items)


@_op("POP")
def _pop_op(m: Machine) -> None:
    if len(m.stack) > m._frame_start():
        m.stack.pop()
    else:
        m._pop_mark()


@_op("POP_MARK")
def _pop_mark(m: Machine) -> None:
    m._pop_mark()


@_op("DUP")
def _dup(m: Machine) -> None:
    m.stack.append(m._top())


@_op("MARK")
def _mark(m: Machine) -> None:
    m.marks.append(len(m.stack))


@_op("APPEND")
def _append(m: Machine) -> None:
    value = m._pop()
    target = m._top()
    if type(target) is Seq:
        target.extend([value])


@_op("READONLY_BUFFER")
def _readonly(m: Machine) -> None:
    m._top()


@_op("PUT")
def _put_line(m: Machine) -> None:
    index = int(m._line())
    if index < 0:
        raise m.error("negative PUT argument")
    m.memo[index] = m._top()


@_op("BINPUT")
def _binput(m: Machine) -> None:
    m.memo[m.r.read_u8()] = m._top()


@_op("LONG_BINPUT")
def _long_binput(m: Machine) -> None:
    m.memo[m._uint(4)] = m._top()


@_op("MEMOIZE")
def _memoize(m: Machine) -> None:
    stack, marks, memo = m.stack, m.marks, m.memo
    if len(stack) <= (marks[-1] if marks else 0):
        raise m.error("stack underflow")
    memo[len(memo) if m.parent is None else m._memo_len()] = stack[-1]


@_op("GLOBAL")
def _global(m: Machine) -> None:
    module = m._line().decode("utf-8")
    name = m._line().decode("utf-8")
    m.stack.append(m._import(module, name))


@_op("STACK_GLOBAL")
def _stack_global(m: Machine) -> None:
    name = m._pop()
    module = m._pop()
    if any(isinstance(v, (Call, Global)) or v is LONG_STR or v is UNRESOLVED for v in (module, name)):
        m.out.issues.append(Issue("dynamic_import", m.op_offset, "STACK_GLOBAL imports a computed name"))
        m.stack.append(UNRESOLVED)
        return
    m.stack.append(m._import(module, name))


@_op("INST")
def _inst(m: Machine) -> None:
    module = m._line().decode("utf-8")
    name = m._line().decode("utf-8")
    cls = m._import(module, name)
    m._call(cls, Seq("tuple", m._pop_mark()), "INST")


@_op("OBJ")
def _obj(m: Machine) -> None:
    items = m._pop_mark()
    if not items:
        raise m.error("OBJ needs a class")
    m._call(items[0], Seq("tuple", items[1:]), "OBJ")


@_op("REDUCE")
def _reduce(m: Machine) -> None:
    args = m._pop()
    m._call(m._pop(), args, "REDUCE")


@_op("NEWOBJ")
def _newobj(m: Machine) -> None:
    args = m._pop()
    m._call(m._pop(), args, "NEWOBJ")


@_op("NEWOBJ_EX")
def _newobj_ex(m: Machine) -> None:
    kwargs = m._pop()
    args = m._pop()
    m._call(m._pop(), args, "NEWOBJ_EX", kwargs)


@_op("BUILD")
def _build(m: Machine) -> None:
    m._build(m._pop())


@_op("BINPERSID")
def _binpersid(m: Machine) -> None:
    m._pop()
    m.stack.append(OPAQUE)


@_op("PROTO")
def _proto(m: Machine) -> None:
    proto = m._uint(1)
    if proto > 5:
        raise m.error(f"unsupported pickle protocol {proto}")
    m.proto = proto


@_op("FRAME")
def _frame(m: Machine) -> None:
    m._uint(8)


HANDLERS: tuple[Callable[[Machine], None] | None, ...] = tuple(
    _BY_NAME[OPCODES[code]] if code in OPCODES and code != STOP else None for code in range(256)
)
