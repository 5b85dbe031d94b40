"""Where loaders read raw bytes from the middle of a pickle stream, and how many.

joblib writes each NumPy array as a NumpyArrayWrapper whose BUILD is followed by the array's raw
bytes (after an alignment pad) or, for object arrays, by a nested pickle. Legacy PyTorch files
interleave small pickles with raw storage and tensor records. Skipping exactly what the loader
skips keeps the opcode walk in step with the loader; anything ambiguous is a LayoutError, which
the scanner reports instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from checks.artifact_scan.pickle_values import Call, Global, Map, Seq
from checks.artifact_scan.streams import Reader

JOBLIB_WRAPPERS = frozenset(
    ["joblib.numpy_pickle.NumpyArrayWrapper", "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper"]
)
_FLEXIBLE = frozenset("USVa")
_UNIT = {"U": 4}  # bytes per character of a unicode string dtype
_TYPESTR = re.compile(r"([a-zA-Z?])(\d*)")

# Bytes per element of legacy PyTorch storage types.
STORAGE_SIZES = {
    "DoubleStorage": 8,
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
    "QUInt8Storage": 1,
    "QInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}


class LayoutError(ValueError):
    """The stream does not say unambiguously how many raw bytes the loader reads."""


@dataclass(frozen=True)
class ArrayLayout:
    has_object: bool  # a nested pickle follows instead of raw bytes
    nbytes: int  # raw bytes, without the alignment pad
    aligned: bool  # a one-byte pad length and that many pad bytes come first


def joblib_array(state: Any) -> ArrayLayout:
    """The layout joblib reads after a NumpyArrayWrapper BUILD with this state."""

    if not isinstance(state, Map) or len(state.items) >= 256:
        raise LayoutError("wrapper state is not a plain dict")
    items = state.items
    aligned = items.get("numpy_array_alignment_bytes") is not None
    has_object, itemsize = _dtype(items.get("dtype"))
    shape = items.get("shape")
    if not isinstance(shape, Seq) or shape.size != len(shape.items):
        raise LayoutError("shape is not a tuple")
    count = 1
    for dim in shape.items:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise LayoutError(f"shape has a non-size entry {dim!r}")
        count *= dim
    nbytes = count * itemsize
    if nbytes >= 1 << 62:
        raise LayoutError("array size out of range")
    return ArrayLayout(has_object, nbytes, aligned)


def _dtype(value: Any) -> tuple[bool, int]:
    """(has object fields, itemsize) of a dtype rebuilt as numpy.dtype(typestr, ...) + BUILD state."""

    if not isinstance(value, Call) or value.callee_name != "numpy.dtype":
        raise LayoutError("dtype is not a numpy.dtype reconstruction")
    args = value.args.items if isinstance(value.args, Seq) else []
    match = _TYPESTR.fullmatch(args[0]) if args and isinstance(args[0], str) else None
    if match is None:
        raise LayoutError(f"unrecognised dtype {args[:1]!r}")
    kind, digits = match.group(1), match.group(2)
    itemsize = int(digits) * _UNIT.get(kind, 1) if digits else 0
    state = value.state
    if state is None:
        return kind == "O", itemsize
    fields = state.items if isinstance(state, Seq) else []
    if len(fields) < 8 or fields[0] not in (3, 4) or not all(isinstance(fields[i], int) for i in (5, 7)):
        raise LayoutError("unrecognised dtype state")
    elsize, flags = fields[5], fields[7]
    if kind in _FLEXIBLE and elsize > 0:
        itemsize = elsize
    if itemsize <= 0 and not flags & 1:
        raise LayoutError(f"dtype {args[0]!r} has no size")
    return bool(flags & 1), itemsize


def skip_legacy_torch_record(value: Any, reader: Reader) -> None:
    """After a legacy PyTorch record pickle, skip the raw storage or tensor bytes that follow it."""

    if not (isinstance(value, Seq) and value.kind == "tuple" and len(value.items) == 3):
        return
    kind = value.items[2]
    if not isinstance(kind, Global) or not kind.ref.module.startswith("torch"):
        return
    cls = kind.ref.name.rsplit(".", 1)[-1]
    if cls in STORAGE_SIZES:
        count = int.from_bytes(reader.read_exact(8), "little", signed=True)
        if count < 0:
            raise LayoutError("negative storage size")
        reader.skip(count * STORAGE_SIZES[cls])
    elif cls.endswith("Tensor"):
        ndim = int.from_bytes(reader.read_exact(4), "little", signed=True)
        if not 0 <= ndim <= 64:
            raise LayoutError(f"tensor record with {ndim} dimensions")
        reader.skip(4 + 16 * ndim + 8)
