"""The scanner's corpus: every format and indirection with a canary payload (each must be flagged),
and benign artifacts written by the real libraries (each must be clean)."""

from __future__ import annotations

import functools
import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

from tests.artifact_corpus import (
    BUILD,
    EMPTY_DICT,
    EMPTY_TUPLE,
    MARK,
    MEMOIZE,
    NEWOBJ,
    NEWOBJ_EX,
    OBJ,
    POP,
    PROTO,
    REDUCE,
    SETITEM,
    STACK_GLOBAL,
    STOP,
    TUPLE,
    TUPLE1,
    TUPLE2,
    Case,
    Expect,
    OpenCanary,
    SystemCanary,
    TeamModel,
    binget,
    binunicode,
    break_crcs,
    compress,
    get0,
    glob,
    inst,
    long_binget,
    long_binput,
    op,
    overlapping_zip,
    pickled,
    put0,
    set_flag_bits,
    set_method,
    string0,
    tar_bytes,
    touch,
    ustr,
    write,
    zip_bytes,
    zip_with_symlink,
)

CRIT, HIGH, MED = "critical", "high", "medium"


def _system(c: Path) -> bytes:
    """os.system("touch <canary>") as a protocol 4 pickle, via the real pickler."""
    return pickled(SystemCanary(c), 4)


def _evil_text_pickle(c: Path) -> bytes:
    """Protocol 0 text, no PROTO opcode."""
    return glob("os", "system") + MARK + string0(touch(c)) + TUPLE + REDUCE + STOP


def _memo_stack_global(c: Path) -> bytes:
    return (
        PROTO(4) + ustr("os") + MEMOIZE + ustr("system") + MEMOIZE + POP + POP
        + binget(0) + binget(1) + STACK_GLOBAL + ustr(touch(c)) + TUPLE1 + REDUCE + STOP
    )  # fmt: skip


def _put_get_text(c: Path) -> bytes:
    return (
        string0("subprocess") + put0(7) + POP + string0("getoutput") + put0(8) + POP
        + get0(7) + get0(8) + STACK_GLOBAL + MARK + string0(touch(c)) + TUPLE + REDUCE + STOP
    )  # fmt: skip


def _long_memo(c: Path) -> bytes:
    return (
        PROTO(2) + binunicode("posix") + long_binput(70000) + binunicode("system") + long_binput(70001)
        + POP + POP + long_binget(70000) + long_binget(70001) + STACK_GLOBAL
        + binunicode(touch(c)) + TUPLE1 + REDUCE + STOP
    )  # fmt: skip


def _inst(c: Path) -> bytes:
    return MARK + string0(touch(c)) + inst("os", "system") + STOP


def _obj(c: Path) -> bytes:
    return PROTO(1) + MARK + glob("os", "system") + binunicode(touch(c)) + OBJ + STOP


def _newobj(c: Path) -> bytes:
    return (
        PROTO(2) + glob("subprocess", "Popen") + MARK + binunicode(touch(c)) + TUPLE + TUPLE1 + NEWOBJ + STOP
    )


def _newobj_ex(c: Path) -> bytes:
    args = MARK + ustr("sh") + ustr("-c") + ustr(touch(c)) + TUPLE + TUPLE1
    return PROTO(4) + glob("subprocess", "Popen") + args + EMPTY_DICT + NEWOBJ_EX + STOP


def _getattr_chain(c: Path) -> bytes:
    """importlib.import_module("os"), then getattr(<module>, "system")(cmd)."""
    module = glob("importlib", "import_module") + ustr("os") + TUPLE1 + REDUCE
    func = glob("builtins", "getattr") + module + ustr("system") + TUPLE2 + REDUCE
    return PROTO(4) + func + ustr(touch(c)) + TUPLE1 + REDUCE + STOP


def _getattr_resolved(c: Path) -> bytes:
    """getattr(numpy.testing._private.utils, "runstring")(code, {}) through an allowlisted package."""
    func = (
        glob("builtins", "getattr")
        + glob("numpy.testing._private", "utils")
        + ustr("runstring")
        + TUPLE2
        + REDUCE
    )
    code = f"open({str(c)!r}, 'w')"
    return PROTO(4) + func + ustr(code) + EMPTY_DICT + TUPLE2 + REDUCE + STOP


def _ufunc_resolver(c: Path) -> bytes:
    func = glob("numpy.core", "_ufunc_reconstruct") + ustr("os") + ustr("system") + TUPLE2 + REDUCE
    return PROTO(2) + func + ustr(touch(c)) + TUPLE1 + REDUCE + STOP


def _call(module: str, name: str, *args: str) -> bytes:
    return PROTO(4) + glob(module, name) + MARK + b"".join(ustr(a) for a in args) + TUPLE + REDUCE + STOP


def _dotted_alias(c: Path) -> bytes:
    """Protocol 4 names may be dotted: module "numpy", name "os.system"."""
    return (
        PROTO(4) + ustr("numpy") + ustr("os.system") + STACK_GLOBAL + ustr(touch(c)) + TUPLE1 + REDUCE + STOP
    )


def _computed_import(c: Path) -> bytes:
    """STACK_GLOBAL whose module name is the result of a call."""
    module = glob("builtins", "str") + ustr("os") + TUPLE1 + REDUCE
    return PROTO(4) + module + ustr("system") + STACK_GLOBAL + ustr(touch(c)) + TUPLE1 + REDUCE + STOP


def _build_on_global(c: Path) -> bytes:
    state = EMPTY_DICT + ustr("__reduce__") + glob("os", "system") + SETITEM
    return PROTO(4) + glob("sklearn.base", "BaseEstimator") + op("N") + state + TUPLE2 + BUILD + STOP


def _unknown_called(c: Path) -> bytes:
    return PROTO(4) + glob("teamlib.models", "Loader") + EMPTY_TUPLE + REDUCE + STOP


def _unknown_referenced(c: Path) -> bytes:
    return PROTO(4) + EMPTY_DICT + ustr("scorer") + glob("teamlib.metrics", "score") + SETITEM + STOP


def _extension(c: Path) -> bytes:
    return PROTO(2) + op("\x82", b"\x07") + EMPTY_TUPLE + REDUCE + STOP


def _joblib(c: Path, name: str, compress: object) -> Path:
    import joblib
    import numpy as np

    path = c.parent / "artifacts" / f"model-{name}.joblib"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"coef": np.arange(1000.0), "hook": SystemCanary(c)}, path, compress=compress)
    return path


def _joblib_object_array(c: Path) -> bytes:
    import joblib
    import numpy as np

    buffer = io.BytesIO()
    joblib.dump({"a": np.arange(4.0), "objects": np.array(["x", SystemCanary(c)], dtype=object)}, buffer)
    return buffer.getvalue()


def _joblib_plain_view(c: Path) -> bytes:
    """A NumpyArrayWrapper whose 'array bytes' are opcodes: joblib skips them, pickle.load runs them."""
    import numpy as np
    from joblib.numpy_pickle import NumpyArrayWrapper

    hidden = POP + _evil_text_pickle(c)[:-1]
    wrapper = NumpyArrayWrapper(
        np.ndarray, (len(hidden),), "C", np.dtype("u1"), numpy_array_alignment_bytes=None
    )
    head = pickle.dumps(wrapper, protocol=4)
    assert head.endswith(BUILD + STOP)
    return head[:-1] + hidden + STOP


def _npy_object(c: Path) -> Path:
    import numpy as np

    path = c.parent / "artifacts" / "features.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.array([1, SystemCanary(c)], dtype=object), allow_pickle=True)
    return path


def _npz(c: Path, compressed: bool) -> Path:
    import numpy as np

    path = c.parent / "artifacts" / ("bundle-c.npz" if compressed else "bundle.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    save = np.savez_compressed if compressed else np.savez
    save(path, weights=np.arange(3.0), meta=np.array([OpenCanary(c)], dtype=object))
    return path


def _torch_zip(c: Path) -> bytes:
    return zip_bytes({"model/data.pkl": _system(c), "model/version": b"3\n", "model/data/0": b"\0" * 64})


def _legacy_torch_tar(c: Path, evil_record: bool = False) -> bytes:
    """Legacy PyTorch tar: storages interleave record pickles with raw storage bytes."""
    record = (
        PROTO(2) + binunicode("0") + binunicode("cpu") + glob("torch", "FloatStorage") + op("\x87") + STOP
    )
    raw = struct.pack("<q", 4) + b"\x11" * 16
    second = _system(c) if evil_record else record.replace(binunicode("0"), binunicode("1"))
    storages = pickled(2, 2) + record + raw + second + raw + pickled([], 2)
    tensor = PROTO(2) + binunicode("t0") + binunicode("0") + glob("torch", "FloatTensor") + op("\x87") + STOP
    tensors = pickled(1, 2) + tensor + struct.pack("<ii", 2, 0) + struct.pack("<5q", 2, 2, 2, 1, 0)
    main = PROTO(2) + EMPTY_DICT + binunicode("w") + binunicode("t0") + op("Q") + SETITEM + STOP
    sys_info = pickled({"protocol_version": 1001, "little_endian": True}, 2)
    return tar_bytes({"sys_info": sys_info, "pickle": main, "storages": storages, "tensors": tensors})


def _skops_team_class(c: Path) -> bytes:
    import skops.io

    return skops.io.dumps({"model": TeamModel()})


def _skops_function(c: Path) -> bytes:
    """A real skops file whose schema was edited to fetch os.system and an attrgetter."""
    import skops.io

    data = skops.io.dumps({"a": 1})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    schema = json.loads(members["schema.json"])
    schema["content"]["hook"] = {
        "__class__": "system",
        "__module__": "posix",
        "__loader__": "FunctionNode",
    }
    schema["content"]["get"] = {
        "__class__": "attrgetter",
        "__module__": "operator",
        "__loader__": "OperatorFuncNode",
        "attrs": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": []},
    }
    members["schema.json"] = json.dumps(schema).encode()
    return zip_bytes(members, zipfile.ZIP_DEFLATED)


MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    env: {{conda: conda.yaml, virtualenv: python_env.yaml}}
    loader_module: {loader}
    model_path: {model}
    python_version: 3.11.7
  sklearn:
    code: {code}
    pickled_model: {model}
    serialization_format: {fmt}
    sklearn_version: 1.9.1
    skops_trusted_types: {trusted}
mlflow_version: 3.17.2
"""


def _mlflow_dir(c: Path, *, evil: bool) -> Path:
    root = c.parent / ("evil_model" if evil else "clean_model")
    if evil:
        write(root / "model.pkl", pickled(SystemCanary(c), 4))
        write(root / "code" / "helpers.py", b"import os\n")
        text = MLMODEL.format(
            loader="teamlib.loader",
            model="model.pkl",
            code="code",
            fmt="cloudpickle",
            trusted="[posix.system]",
        )
    else:
        import skops.io
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.1, 0.9]], [0, 1, 1, 0])
        write(root / "model.skops", skops.io.dumps(model))
        text = MLMODEL.format(
            loader="mlflow.sklearn", model="model.skops", code="null", fmt="skops", trusted="[]"
        )
    write(root / "MLmodel", text.encode())
    write(root / "conda.yaml", b"channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n")
    write(root / "python_env.yaml", b"python: 3.11.7\nbuild_dependencies:\n- pip\n")
    write(root / "requirements.txt", b"cloudpickle\nnumpy\nscikit-learn\n")
    return root


def _nested_zips(c: Path, depth: int) -> bytes:
    data = _system(c)
    for level in range(depth):
        data = zip_bytes({f"level{level}.zip" if level else "payload.pkl": data})
    return data


def _truncated(c: Path) -> bytes:
    return _system(c)[:-12]


def file_case(
    case_id: str, make, expect: list[Expect], name: str = "artifact.bin", policy: dict | None = None
) -> Case:
    def build(tmp: Path, canary: Path) -> Path:
        return write(tmp / "artifacts" / name, make(canary))

    return Case(case_id, build, expect, policy)


def sys_expect(fmt: str | None = None, member: str | None = None) -> Expect:
    return Expect("posix.system", CRIT, fmt, member, invoked=True)


MALICIOUS: list[Case] = [
    *(
        file_case(f"pickle-protocol-{p}", lambda c, p=p: pickled(SystemCanary(c), p), [sys_expect("pickle")])
        for p in range(6)
    ),
    file_case("text-pickle-without-proto", _evil_text_pickle, [Expect("os.system", CRIT, "pickle")]),
    file_case("memo-memoize-binget", _memo_stack_global, [Expect("os.system", CRIT)]),
    file_case("memo-put-get-text", _put_get_text, [Expect("subprocess.getoutput", CRIT)]),
    file_case("memo-long-binput", _long_memo, [Expect("posix.system", CRIT)]),
    file_case("inst", _inst, [Expect("os.system", CRIT, invoked=True)]),
    file_case("obj", _obj, [Expect("os.system", CRIT, invoked=True)]),
    file_case("newobj", _newobj, [Expect("subprocess.Popen", CRIT)]),
    file_case("newobj-ex", _newobj_ex, [Expect("subprocess.Popen", CRIT)]),
    file_case(
        "getattr-import-chain",
        _getattr_chain,
        [
            Expect("importlib.import_module", CRIT),
            Expect("builtins.getattr", HIGH),
            Expect("dynamic_call", CRIT),
        ],
    ),
    file_case(
        "getattr-into-numpy-testing",
        _getattr_resolved,
        [Expect("numpy.testing._private.utils.runstring", CRIT)],
    ),
    file_case("numpy-ufunc-resolver", _ufunc_resolver, [Expect("os.system", CRIT)]),
    file_case("dotted-name-alias", _dotted_alias, [Expect("numpy.os.system", CRIT)]),
    file_case("computed-import", _computed_import, [Expect("dynamic_import", CRIT)]),
    file_case(
        "build-on-global", _build_on_global, [Expect("build_on_global", HIGH), Expect("os.system", CRIT)]
    ),
    file_case(
        "numpy-runstring",
        lambda c: _call("numpy.testing._private.utils", "runstring", "1"),
        [Expect("numpy.testing._private.utils.runstring", CRIT)],
    ),
    file_case("numpy-load", lambda c: _call("numpy", "load", "x.npy"), [Expect("numpy.load", CRIT)]),
    file_case(
        "pandas-read-pickle",
        lambda c: _call("pandas", "read_pickle", "x.pkl"),
        [Expect("pandas.read_pickle", CRIT)],
    ),
    file_case(
        "pandas-io-read-pickle",
        lambda c: _call("pandas.io.pickle", "read_pickle", "x"),
        [Expect("pandas.io.pickle.read_pickle", CRIT)],
    ),
    file_case("pickle-loads", lambda c: _call("pickle", "loads", "x"), [Expect("pickle.loads", CRIT)]),
    file_case("marshal-loads", lambda c: _call("marshal", "loads", "x"), [Expect("marshal.loads", CRIT)]),
    file_case(
        "builtins-eval",
        lambda c: _call("builtins", "eval", f"open({str(c)!r},'w')"),
        [Expect("builtins.eval", CRIT)],
    ),
    file_case(
        "py2-builtin-exec", lambda c: _call("__builtin__", "exec", "pass"), [Expect("__builtin__.exec", CRIT)]
    ),
    file_case("runpy", lambda c: _call("runpy", "run_path", "x.py"), [Expect("runpy.run_path", CRIT)]),
    file_case(
        "cprofile-run",
        lambda c: _call("cProfile", "run", f"open({str(c)!r},'w')"),
        [Expect("cProfile.run", CRIT)],
    ),
    file_case(
        "timeit",
        lambda c: _call("timeit", "timeit", f"open({str(c)!r},'w')"),
        [Expect("timeit.timeit", CRIT)],
    ),
    file_case("pdb-run", lambda c: _call("pdb", "run", "x"), [Expect("pdb.run", CRIT)]),
    file_case("pty-spawn", lambda c: _call("pty", "spawn", "sh"), [Expect("pty.spawn", CRIT)]),
    file_case("os-execvp", lambda c: _call("os", "execvp", "sh"), [Expect("os.execvp", CRIT)]),
    file_case(
        "webbrowser",
        lambda c: _call("webbrowser", "open", "http://127.0.0.1/"),
        [Expect("webbrowser.open", CRIT)],
    ),
    file_case("builtins-open", lambda c: pickled(OpenCanary(c), 4), [Expect("io.open", HIGH, invoked=True)]),
    file_case(
        "socket",
        lambda c: _call("socket", "create_connection", "x"),
        [Expect("socket.create_connection", HIGH)],
    ),
    file_case("shutil-rmtree", lambda c: _call("shutil", "rmtree", "x"), [Expect("shutil.rmtree", HIGH)]),
    file_case(
        "operator-attrgetter",
        lambda c: _call("operator", "attrgetter", "x"),
        [Expect("operator.attrgetter", HIGH)],
    ),
    file_case("unknown-callable", _unknown_called, [Expect("teamlib.models.Loader", HIGH, invoked=True)]),
    file_case(
        "unknown-reference", _unknown_referenced, [Expect("teamlib.metrics.score", MED, invoked=False)]
    ),
    file_case("extension-opcode", _extension, [Expect("copyreg._extension_registry.code7", HIGH)]),
    file_case(
        "concatenated", lambda c: pickled({"ok": 1}) + pickled([1, 2]) + _system(c), [sys_expect("pickle")]
    ),
    file_case("gzip-wrapped", lambda c: compress("gzip", _system(c)), [sys_expect("gzip>pickle")]),
    file_case(
        "gzip-two-members",
        lambda c: compress("gzip", pickled([1])) + compress("gzip", _system(c)),
        [sys_expect("gzip>pickle")],
    ),
    file_case("bz2-wrapped", lambda c: compress("bz2", _system(c)), [sys_expect("bz2>pickle")]),
    file_case("xz-wrapped", lambda c: compress("xz", _system(c)), [sys_expect("xz>pickle")]),
    file_case(
        "tar-gz-wrapped",
        lambda c: tar_bytes({"m.pkl": _system(c)}, "w:gz"),
        [sys_expect("gzip>tar", "m.pkl")],
    ),
    *(
        Case(f"joblib-{name}", lambda t, c, name=name, comp=comp: _joblib(c, name, comp), [sys_expect(fmt)])
        for name, comp, fmt in [
            ("plain", 0, "pickle"),
            ("zlib", 3, "zlib>pickle"),
            ("gzip", ("gzip", 3), "gzip>pickle"),
            ("bz2", ("bz2", 3), "bz2>pickle"),
            ("lzma", ("lzma", 3), "lzma>pickle"),
            ("xz", ("xz", 3), "xz>pickle"),
        ]
    ),
    file_case("joblib-object-array", _joblib_object_array, [sys_expect("pickle")]),
    file_case("joblib-plain-pickle-view", _joblib_plain_view, [Expect("os.system", CRIT)]),
    Case("npy-object", lambda t, c: _npy_object(c), [sys_expect("npy>pickle")]),
    Case("npz", lambda t, c: _npz(c, False), [Expect("io.open", HIGH, "zip>npy>pickle", "meta.npy")]),
    Case(
        "npz-compressed",
        lambda t, c: _npz(c, True),
        [Expect("io.open", HIGH, "zip>npy>pickle", "meta.npy")],
    ),
    file_case("torch-zip", _torch_zip, [sys_expect("zip>pickle", "model/data.pkl")], name="model.pt"),
    file_case(
        "zip-any-member-name",
        lambda c: zip_bytes({"weights/blob.bin": _system(c)}, zipfile.ZIP_DEFLATED),
        [sys_expect(member="weights/blob.bin")],
    ),
    file_case(
        "zip-bad-crc",
        lambda c: break_crcs(zip_bytes({"archive/data.pkl": _system(c)}, zipfile.ZIP_DEFLATED)),
        [sys_expect(member="archive/data.pkl")],
    ),
    file_case(
        "zip-odd-flag-bits",
        lambda c: set_flag_bits(zip_bytes({"archive/data.pkl": _system(c)}), 0x20 | 0x4),
        [sys_expect(member="archive/data.pkl")],
    ),
    file_case(
        "zip-broken-central-directory",
        lambda c: zip_bytes({"archive/data.pkl": _system(c)})[:-10],
        [sys_expect(member="archive/data.pkl"), Expect("archive_damaged", HIGH)],
    ),
    file_case(
        "zip-bzip2-member",
        lambda c: zip_bytes({"d.pkl": _system(c)}, zipfile.ZIP_BZIP2),
        [sys_expect(member="d.pkl")],
    ),
    file_case(
        "zip-lzma-member",
        lambda c: zip_bytes({"d.pkl": _system(c)}, zipfile.ZIP_LZMA),
        [sys_expect(member="d.pkl")],
    ),
    file_case(
        "nested-zip",
        lambda c: _nested_zips(c, 3),
        [sys_expect("zip>zip>zip>pickle", "level2.zip!level1.zip!payload.pkl")],
    ),
    file_case(
        "polyglot-pickle-then-zip",
        lambda c: pickled([1]) + zip_bytes({"x.pkl": _system(c)}),
        [sys_expect("+zip", "x.pkl")],
    ),
    file_case(
        "legacy-torch-tar",
        lambda c: _legacy_torch_tar(c, evil_record=True),
        [sys_expect("tar>pickle", "storages")],
    ),
    file_case(
        "skops-untrusted-class",
        _skops_team_class,
        [Expect("tests.artifact_corpus.TeamModel", HIGH, "skops")],
        name="m.skops",
    ),
    file_case(
        "skops-function-and-operator",
        _skops_function,
        [Expect("posix.system", CRIT, "skops"), Expect("operator.attrgetter", HIGH, "skops")],
    ),
    Case(
        "mlflow-dir",
        lambda t, c: _mlflow_dir(c, evil=True),
        [
            sys_expect(),
            Expect("mlmodel:code_paths", CRIT),
            Expect("mlmodel:loader_module", CRIT),
            Expect("mlmodel:serialization_format:cloudpickle", MED),
            Expect("mlmodel:skops_trusted_types", CRIT),
        ],
    ),
    file_case(
        "truncated-pickle", _truncated, [Expect("unparseable_pickle", HIGH), Expect("posix.system", CRIT)]
    ),
    file_case("unknown-opcode", lambda c: PROTO(4) + b"\xff" + STOP, [Expect("unparseable_pickle", HIGH)]),
    file_case("corrupt-gzip", lambda c: compress("gzip", _system(c))[:-30], [Expect("corrupt", HIGH)]),
    file_case(
        "lz4-without-module",
        lambda c: b"\x04\x22\x4d\x18" + b"\0" * 40,
        [Expect("unsupported_compression", HIGH)],
    ),
    file_case(
        "pkl-that-is-not-a-pickle",
        lambda c: b"\x01\x02garbage",
        [Expect("unparseable_pickle", HIGH)],
        name="model.pkl",
    ),
    file_case(
        "zip-encrypted-member",
        lambda c: set_flag_bits(zip_bytes({"archive/data.pkl": pickled([1])}), 0x1),
        [Expect("unreadable_member", HIGH, member="archive/data.pkl")],
    ),
    file_case(
        "zip-unknown-method",
        lambda c: set_method(zip_bytes({"archive/data.pkl": pickled([1])}), 99),
        [Expect("unreadable_member", HIGH, member="archive/data.pkl")],
    ),
    file_case(
        "zip-path-escape",
        lambda c: zip_bytes({"../../outside.pkl": _system(c)}),
        [Expect("path_escape", MED, member="../../outside.pkl"), sys_expect(member="../../outside.pkl")],
    ),
    file_case(
        "zip-symlink-member", lambda c: zip_with_symlink("data.pkl", "/etc/passwd"), [Expect("symlink", MED)]
    ),
    file_case(
        "joblib-legacy-zfile",
        lambda c: b"ZF" + hex(len(_system(c))).encode().ljust(19) + compress("zlib", _system(c)),
        [sys_expect("zfile>pickle")],
    ),
    file_case(
        "call-on-a-string",
        lambda c: PROTO(4) + ustr("os.system") + ustr(touch(c)) + TUPLE1 + REDUCE + STOP,
        [Expect("dynamic_call", HIGH)],
    ),
    file_case(
        "zip-overlapping-entries", lambda c: overlapping_zip(pickled([1])), [Expect("archive_damaged", HIGH)]
    ),
    file_case(
        "tar-symlink-member",
        lambda c: _tar_with_link(),
        [Expect("symlink", HIGH, member="pickle")],
    ),
    file_case(
        "gzip-bomb",
        lambda c: compress(
            "gzip", PROTO(4) + op("\x8e", struct.pack("<Q", 16 << 20)) + bytes(16 << 20) + STOP
        ),
        [Expect("limit:compression_ratio", HIGH)],
        policy={"ratio_floor_bytes": 1 << 20, "max_compression_ratio": 50},
    ),
    file_case(
        "zip-bomb",
        lambda c: zip_bytes(
            {"data.pkl": PROTO(4) + op("\x8e", struct.pack("<Q", 16 << 20)) + bytes(16 << 20) + STOP},
            zipfile.ZIP_DEFLATED,
        ),
        [Expect("limit:compression_ratio", HIGH, member="data.pkl")],
        policy={"ratio_floor_bytes": 1 << 20, "max_compression_ratio": 50},
    ),
    file_case(
        "too-deep", lambda c: _nested_zips(c, 5), [Expect("limit:depth", HIGH)], policy={"max_depth": 2}
    ),
    file_case(
        "too-many-members",
        lambda c: zip_bytes({f"f{i}": b"x" for i in range(30)}),
        [Expect("limit:members", HIGH)],
        policy={"max_members": 10},
    ),
    file_case(
        "too-large",
        lambda c: pickled(list(range(500))),
        [Expect("limit:file_size", HIGH)],
        policy={"max_file_bytes": 100},
    ),
    file_case(
        "total-decompressed-budget",
        lambda c: compress("gzip", PROTO(4) + op("\x8e", struct.pack("<Q", 4 << 20)) + bytes(4 << 20) + STOP),
        [Expect("limit:total_bytes", HIGH)],
        policy={"max_total_bytes": 1 << 20},
    ),
]


def _tar_with_link() -> bytes:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        info = tarfile.TarInfo("pickle")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/hostname"
        tf.addfile(info)
    return buffer.getvalue()


# -- benign artifacts written by the real libraries --------------------------------------------------


@functools.cache
def _estimators() -> list[object]:
    import numpy as np
    import pandas as pd
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import make_classification
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC

    X, y = make_classification(80, 4, random_state=0)
    frame = pd.DataFrame({"city": ["a", "b"] * 40, "x": np.arange(80.0)})
    columns = ColumnTransformer([("oh", OneHotEncoder(), ["city"]), ("num", StandardScaler(), ["x"])])
    return [
        LogisticRegression().fit(X, y),
        RandomForestClassifier(3, random_state=0).fit(X, y),
        HistGradientBoostingClassifier(max_iter=3).fit(X, y),
        GradientBoostingClassifier(n_estimators=3).fit(X, y),
        KNeighborsClassifier().fit(X, y),
        SVC(probability=True, random_state=0).fit(X, y),
        CalibratedClassifierCV(LogisticRegression(), cv=2).fit(X, y),
        make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression()).fit(X, y),
        make_pipeline(columns, LogisticRegression()).fit(frame, y),
    ]


def _frame():
    import numpy as np
    import pandas as pd

    return pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.0, np.nan, 3.0],
            "s": ["a", "b", None],
            "c": pd.Categorical(["x", "y", "x"]),
            "t": pd.date_range("2024-01-01", periods=3, tz="UTC"),
            "n": pd.array([1, None, 3], dtype="Int64"),
        }
    ).set_index("t")


def _arrays():
    import numpy as np

    return {
        "f": np.arange(12.0).reshape(3, 4),
        "u": np.array(["ab", "c"]),
        "o": np.array(["x", 1, None], dtype=object),
        "s": np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]),
        "d": np.array(["2024-01-01"], dtype="M8[D]"),
        "e": np.zeros((0, 3)),
        "r": np.random.RandomState(0),
    }


def _joblib_benign(path: Path, compress: object) -> Path:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(
        {"models": _estimators()[:4], "arrays": _arrays(), "frame": _frame()}, path, compress=compress
    )
    return path


def _state_dict_zip() -> bytes:
    """What torch.save writes for a small state dict, assembled by hand (torch is not installed)."""
    ordered = glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE
    storage = (
        MARK + binunicode("storage") + glob("torch", "FloatStorage") + binunicode("0") + binunicode("cpu")
    )
    storage += op("K", b"\x04") + TUPLE + op("Q")
    shape = MARK + op("K", b"\x02") + op("K", b"\x02") + TUPLE
    stride = MARK + op("K", b"\x02") + op("K", b"\x01") + TUPLE
    tensor = glob("torch._utils", "_rebuild_tensor_v2") + MARK + storage + op("K", b"\x00") + shape + stride
    tensor += op("\x89") + ordered + TUPLE + REDUCE
    data = PROTO(2) + ordered + binunicode("layer.weight") + tensor + SETITEM + STOP
    return zip_bytes(
        {
            "archive/data.pkl": data,
            "archive/data/0": struct.pack("<4f", 1, 2, 3, 4),
            "archive/version": b"3\n",
            "archive/byteorder": b"little",
        }
    )


def _benign_file(case_id: str, make, name: str) -> Case:
    def build(tmp: Path, canary: Path) -> Path:
        return write(tmp / "benign" / name, make())

    return Case(case_id, build)


BENIGN: list[Case] = [
    *(
        _benign_file(f"numpy-pickle-p{p}", lambda p=p: pickled(_arrays(), p), f"arrays{p}.pkl")
        for p in range(6)
    ),
    *(
        _benign_file(f"pandas-pickle-p{p}", lambda p=p: pickled(_frame(), p), f"frame{p}.pkl")
        for p in (2, 4, 5)
    ),
    *(
        _benign_file(f"sklearn-pickle-p{p}", lambda p=p: pickled(_estimators(), p), f"models{p}.pkl")
        for p in (2, 3, 4, 5)
    ),
    *(
        Case(
            f"joblib-{name}",
            lambda t, c, comp=comp, name=name: _joblib_benign(t / "benign" / f"{name}.joblib", comp),
        )
        for name, comp in [
            ("plain", 0),
            ("zlib", 3),
            ("gzip", ("gzip", 3)),
            ("bz2", ("bz2", 3)),
            ("lzma", ("lzma", 3)),
            ("xz", ("xz", 3)),
        ]
    ),
    _benign_file("pandas-to-pickle-gzip", lambda: compress("gzip", pickled(_frame(), 5)), "frame.pkl.gz"),
    _benign_file("skops-estimators", lambda: __import__("skops.io").io.dumps(_estimators()), "models.skops"),
    _benign_file("npy", lambda: _npy(__import__("numpy").arange(10.0)), "a.npy"),
    _benign_file("npz-compressed", lambda: _npz_benign(), "a.npz"),
    _benign_file("state-dict-zip", _state_dict_zip, "model.pt"),
    _benign_file("legacy-torch-tar", lambda: _legacy_torch_tar(Path("unused")), "legacy.pt"),
    _benign_file(
        "plain-zip",
        lambda: zip_bytes({"README.md": b"# model\n", "conf/params.json": b'{"c": 1}'}),
        "docs.zip",
    ),
    _benign_file(
        "plain-tar-gz",
        lambda: tar_bytes({"README": b"channels:\n- x\n", "data.csv": b"a,b\n1,2\n"}, "w:gz"),
        "docs.tgz",
    ),
    Case("mlflow-skops-dir", lambda t, c: _mlflow_dir(c, evil=False)),
]


def _npy(array) -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz_benign() -> bytes:
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, w=np.arange(5.0), labels=np.array(["a", "b"]))
    return buffer.getvalue()
