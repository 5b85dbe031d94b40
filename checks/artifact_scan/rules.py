"""What a loader may import: the allowlist of exact names, the denylist tables, and the verdict.

The allowlist holds exact `module.name` entries only (never whole packages): the constructors that
pickles of NumPy, SciPy, pandas, scikit-learn and the standard library use. The denylist wins over
it; its tables name whole modules (``"subprocess"``) or exact callables (``"numpy.load"``), so the
dangerous corners of otherwise safe packages are covered. A name the loader reaches through another
module's attribute (``numpy.os.system``) matches the table entry it ends with.
"""

from __future__ import annotations

import _compat_pickle
from dataclasses import dataclass
from functools import lru_cache

from checks.artifact_scan._generated_allowlist import GENERATED
from checks.findings import Severity


@dataclass(frozen=True)
class Category:
    """A family of dangerous callables and what loading one means."""

    label: str
    severity: Severity
    runs_code: bool  # a load that reaches it runs code or a process (ATLAS AML.T0011)


PROCESS = Category("process execution", Severity.CRITICAL, True)
CODE = Category("code evaluation, compilation or import", Severity.CRITICAL, True)
REENTRY = Category("pickle or marshal re-entry", Severity.CRITICAL, True)
DEBUG = Category("profiler or debugger running code", Severity.CRITICAL, True)
INDIRECTION = Category("attribute or call indirection", Severity.HIGH, False)
IO = Category("file or network I/O", Severity.HIGH, False)
SYSTEM = Category("interpreter or system state", Severity.HIGH, False)

_EXEC = ["execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe"]
_SPAWN = ["spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe"]
_OS_PROCESS = ["system", "popen", "popen2", "popen3", "popen4", "fork", "forkpty", "posix_spawn"]
_OS_PROCESS += ["posix_spawnp", "startfile", *_EXEC, *_SPAWN]

# Whole modules (and their submodules).
DENY_MODULES: dict[str, Category] = {
    **dict.fromkeys(["subprocess", "_posixsubprocess", "pty", "commands", "popen2", "webbrowser"], PROCESS),
    **dict.fromkeys(["multiprocessing", "_multiprocessing", "concurrent", "joblib.externals.loky"], PROCESS),
    **dict.fromkeys(["os", "posix", "nt"], SYSTEM),
    **dict.fromkeys(["code", "codeop", "runpy", "importlib", "imp", "zipimport", "pkgutil"], CODE),
    **dict.fromkeys(["ctypes", "_ctypes", "cffi", "numpy.ctypeslib", "numpy.f2py", "numpy.distutils"], CODE),
    **dict.fromkeys(["numpy.testing", "pandas.util._tester", "sklearn.utils._testing"], CODE),
    **dict.fromkeys(["pandas.core.computation", "setuptools", "distutils", "pip", "ensurepip"], CODE),
    **dict.fromkeys(["torch.hub", "torch.utils.cpp_extension", "IPython", "_xxsubinterpreters"], CODE),
    **dict.fromkeys(["pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle"], REENTRY),
    **dict.fromkeys(["pandas.compat.pickle_compat", "joblib.externals.cloudpickle", "skops.io"], REENTRY),
    **dict.fromkeys(["cProfile", "profile", "pdb", "bdb", "timeit", "trace", "doctest", "pydoc"], DEBUG),
    **dict.fromkeys(["io", "_io", "shutil", "tempfile", "glob", "fileinput", "mmap", "sqlite3"], IO),
    **dict.fromkeys(["socket", "_socket", "ssl", "select", "selectors", "asyncio", "socketserver"], IO),
    **dict.fromkeys(["urllib", "http", "ftplib", "smtplib", "poplib", "imaplib", "telnetlib"], IO),
    **dict.fromkeys(["xmlrpc", "requests", "httpx", "urllib3", "aiohttp", "paramiko", "fsspec"], IO),
    **dict.fromkeys(["pandas.io", "scipy.io", "sklearn.datasets", "numpy.lib._datasource"], IO),
    **dict.fromkeys(["sys", "signal", "atexit", "threading", "_thread", "gc", "resource"], SYSTEM),
}

# Exact names, inside modules that are otherwise not denied or with a worse category than theirs.
DENY_NAMES: dict[str, Category] = {
    **{f"{mod}.{fn}": PROCESS for mod in ("os", "posix", "nt") for fn in _OS_PROCESS},
    "platform.popen": PROCESS,
    "asyncio.create_subprocess_shell": PROCESS,
    "asyncio.create_subprocess_exec": PROCESS,
    "asyncio.subprocess.create_subprocess_shell": PROCESS,
    "asyncio.subprocess.create_subprocess_exec": PROCESS,
    "joblib.parallel.Parallel": PROCESS,
    "joblib.Parallel": PROCESS,
    **dict.fromkeys(
        [f"builtins.{n}" for n in ("eval", "exec", "execfile", "compile", "__import__", "reload")], CODE
    ),
    **dict.fromkeys(
        ["types.CodeType", "types.FunctionType", "types.LambdaType", "types.MethodType", "types.ModuleType"],
        CODE,
    ),
    "numpy.testing._private.utils.runstring": CODE,
    "pandas.eval": CODE,
    "pandas.core.frame.DataFrame.eval": CODE,
    "pandas.core.frame.DataFrame.query": CODE,
    "pandas.DataFrame.eval": CODE,
    "pandas.DataFrame.query": CODE,
    "builtins.breakpoint": DEBUG,
    **dict.fromkeys(
        [f"builtins.{n}" for n in ("getattr", "setattr", "delattr", "globals", "locals", "vars", "apply")],
        INDIRECTION,
    ),
    **dict.fromkeys(["builtins.type", "builtins.map", "builtins.filter", "builtins.super"], INDIRECTION),
    **dict.fromkeys(["functools.partial", "functools.partialmethod", "functools.reduce"], INDIRECTION),
    **dict.fromkeys(["operator.attrgetter", "operator.methodcaller", "operator.call"], INDIRECTION),
    **dict.fromkeys(["operator.setitem", "operator.delitem", "itertools.starmap"], INDIRECTION),
    **dict.fromkeys(["builtins.open", "builtins.file", "codecs.open", "pathlib.Path.write_text"], IO),
    **dict.fromkeys(["numpy.fromfile", "numpy.save", "numpy.savez", "numpy.savetxt", "numpy.loadtxt"], IO),
    **dict.fromkeys(["numpy.genfromtxt", "numpy.memmap", "numpy.ndarray.tofile", "numpy.ndarray.dump"], IO),
    **dict.fromkeys(["numpy.lib.format.open_memmap", "numpy.DataSource"], IO),
    **dict.fromkeys(["builtins.input", "builtins.exit", "builtins.quit", "builtins.help"], SYSTEM),
    **dict.fromkeys(
        [
            "numpy.load",
            "numpy.loads",
            "numpy.lib.npyio.load",
            "numpy.lib._npyio_impl.load",
            "numpy.lib.format.read_array",
            "numpy.ndarray.dumps",
            "pandas.read_pickle",
            "pandas.io.pickle.read_pickle",
            "joblib.load",
            "joblib.numpy_pickle.load",
            "joblib.numpy_pickle.NumpyUnpickler",
            "sklearn.externals.joblib.load",
            "sklearn.externals.joblib.numpy_pickle.load",
            "torch.load",
            "torch.serialization.load",
            "torch.storage._load_from_bytes",
            "torch.jit.load",
            "mlflow.pyfunc.load_model",
            "mlflow.sklearn.load_model",
            "keras.models.load_model",
        ],
        REENTRY,
    ),
}

# Module names that, met inside a longer path, mean the path runs through that module.
ALIAS_MODULES = frozenset(
    [
        *("os", "posix", "nt", "subprocess", "pty", "builtins", "__builtin__", "pickle", "_pickle"),
        *("marshal", "ctypes", "socket", "shutil", "runpy", "importlib", "webbrowser", "pdb", "cProfile"),
    ]
)

# Safe constructors by exact name, beyond the generated scikit-learn/NumPy/pandas/SciPy tables.
ALLOW: frozenset[str] = frozenset(
    [
        *(f"builtins.{n}" for n in ("set", "frozenset", "complex", "slice", "bytearray", "bytes")),
        *(f"builtins.{n}" for n in ("range", "object", "int", "float", "str", "list", "tuple", "dict")),
        *(f"builtins.{n}" for n in ("bool", "Ellipsis", "NotImplemented")),
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "_codecs.encode",
        *(f"collections.{n}" for n in ("OrderedDict", "defaultdict", "deque", "Counter")),
        *(f"datetime.{n}" for n in ("date", "datetime", "time", "timedelta", "timezone")),
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "re._compile",
        "zoneinfo.ZoneInfo",
        "zoneinfo.ZoneInfo._unpickle",
        "zoneinfo._zoneinfo.ZoneInfo",
        "zoneinfo._zoneinfo.ZoneInfo._unpickle",
        "pytz._p",
        "pytz._UTC",
        "dateutil.tz.tz.tzutc",
        "dateutil.tz.tz.tzoffset",
        # NumPy 1.x and 2.x array, scalar and random-state reconstruction.
        *(f"numpy.{m}.multiarray.{n}" for m in ("core", "_core") for n in ("_reconstruct", "scalar")),
        *(f"numpy.{m}.numeric._frombuffer" for m in ("core", "_core")),
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.matrix",
        "numpy.matrixlib.defmatrix.matrix",
        "numpy.ma.core._mareconstruct",
        "numpy.ma.core.MaskedArray",
        "numpy.ma.MaskedArray",
        *(f"numpy.random._pickle.{n}" for n in ("__randomstate_ctor", "__generator_ctor")),
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        *(f"numpy.random._{m}.{c}" for m, c in [("mt19937", "MT19937"), ("pcg64", "PCG64")]),
        *(f"numpy.random._{m}.{c}" for m, c in [("pcg64", "PCG64DXSM"), ("philox", "Philox")]),
        "numpy.random._sfc64.SFC64",
        # SciPy sparse containers under module paths of SciPy releases before the generated table's.
        *(f"scipy.sparse.{f}.{f}_matrix" for f in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil")),
        *(f"scipy.sparse._arrays.{f}_array" for f in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil")),
        # joblib's in-stream array marker: its BUILD reads the array bytes that follow it.
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "sklearn.externals.joblib.numpy_pickle.NumpyArrayWrapper",
        # PyTorch state dicts (torch.save): tensor rebuilders and storage types.
        *(
            f"torch._utils.{n}"
            for n in (
                "_rebuild_tensor",
                "_rebuild_tensor_v2",
                "_rebuild_tensor_v3",
                "_rebuild_parameter",
                "_rebuild_parameter_with_state",
                "_rebuild_qtensor",
                "_rebuild_sparse_tensor",
                "_rebuild_meta_tensor_no_storage",
                "_rebuild_device_tensor_from_numpy",
            )
        ),
        "torch._tensor._rebuild_from_type_v2",
        "torch.Size",
        "torch.device",
        "torch.nn.parameter.Parameter",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.UntypedStorage",
        *(f"torch.{t}Storage" for t in ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short")),
        *(f"torch.{t}Storage" for t in ("Char", "Byte", "Bool", "ComplexFloat", "ComplexDouble")),
        *(
            f"torch.{t}Tensor"
            for t in ("Double", "Float", "Half", "Long", "Int", "Short", "Char", "Byte", "Bool")
        ),
        *(f"torch.{t}" for t in ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16")),
        *(f"torch.{t}" for t in ("int8", "uint8", "bool", "complex64", "complex128", "strided")),
    ]
)

# Callables that are an import in disguise when their arguments are constants: the call is judged
# as the name it resolves to. "module_name": f(module, name); "attribute": getattr(obj, name).
RESOLVERS = {
    "numpy.core._ufunc_reconstruct": "module_name",
    "numpy._core._ufunc_reconstruct": "module_name",
    "builtins.getattr": "attribute",
}

# Dunder attributes a name may legitimately pass through.
DUNDER_OK = frozenset(["copyreg.__newobj__", "copyreg.__newobj_ex__"])


@dataclass(frozen=True)
class Verdict:
    """How one imported name is judged: allowed, denied (with its category) or unknown."""

    status: str  # "allow" | "deny" | "unknown"
    category: Category | None = None
    resolves_to: str | None = None  # the name Python 3 imports, when the pickle names a Python 2 path


def python3_name(module: str, name: str) -> str:
    """The `module.name` a protocol 0–2 pickle resolves to after Python 2 name fixing."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return f"{module}.{name}"


def _worst(categories: list[Category | None]) -> Category | None:
    found = [c for c in categories if c is not None]
    return max(found, key=lambda c: c.severity) if found else None


@lru_cache(maxsize=8192)
def _deny(full: str) -> tuple[Category | None, Category | None]:
    """(table match, heuristic match) for `full`.

    Table matches: the path or any suffix of it is an exact entry, or the path lies in a denied
    module; they win over the allowlist. Heuristic matches: the path runs through a dangerous
    module's name (`numpy.os.system`) or through dunder attributes; exact allowlist entries win
    over those, since real modules have submodules called `_pickle` or `os`.
    """
    parts = full.split(".")
    table = [DENY_NAMES.get(".".join(parts[start:])) for start in range(len(parts))]
    table += [DENY_MODULES.get(".".join(parts[:end])) for end in range(1, len(parts) + 1)]
    heuristic = [DENY_MODULES.get(p, SYSTEM) for p in parts[1:] if p in ALIAS_MODULES]
    if full not in DUNDER_OK and any(
        p.startswith("__") and p.endswith("__") and len(p) > 4 for p in parts[1:]
    ):
        heuristic.append(INDIRECTION)
    return _worst(table), _worst(heuristic)


def classify(module: str, name: str, extra_allow: frozenset[str] = frozenset()) -> Verdict:
    """Judge `module.name` as a pickle would import it (Python 2 names fixed as pickle does)."""
    raw = f"{module}.{name}"
    fixed = python3_name(module, name)
    resolves_to = fixed if fixed != raw else None
    (table_raw, heur_raw), (table_fixed, heur_fixed) = _deny(raw), _deny(fixed)
    table = _worst([table_raw, table_fixed])
    if table is not None:
        return Verdict("deny", table, resolves_to)
    if fixed in ALLOW or fixed in GENERATED or fixed in extra_allow:
        return Verdict("allow", None, resolves_to)
    heuristic = _worst([heur_raw, heur_fixed])
    if heuristic is not None:
        return Verdict("deny", heuristic, resolves_to)
    return Verdict("unknown", None, resolves_to)


def classify_name(full: str, extra_allow: frozenset[str] = frozenset()) -> Verdict:
    """Judge a dotted name that is not split into module and attribute (skops types, MLmodel lists)."""
    module, _, name = full.rpartition(".")
    return classify(module, name, extra_allow)
