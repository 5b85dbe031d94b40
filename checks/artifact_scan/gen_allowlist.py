"""Regenerate `_generated_allowlist.py` (dev time only; imports scikit-learn, NumPy, pandas, SciPy).

    .venv/bin/python -m checks.artifact_scan.gen_allowlist

The table is exact `module.name` entries, never packages:
- scikit-learn: every class defined in a scikit-learn module (tests, testing helpers and vendored
  externals excluded), plus the Cython pickle helpers its extension types reduce to
  (`newObj`, `__pyx_unpickle_*`);
- NumPy: scalar types under their public and defining names, ufuncs, `numpy.dtypes` classes;
- pandas: the classes and unpickle helpers (`_new_*`, `_unpickle*`, `__pyx_unpickle_*`) of the
  modules that pickled frames, series, indexes, arrays, dtypes, blocks and offsets live in, under
  the module paths older pandas versions pickle them with;
- pandas, SciPy sparse, PyArrow, NumPy and scikit-learn internals: every global that pickles
  (protocols 0-5) of a battery of real objects import, found with this package's own analyser;
  the battery includes every scikit-learn estimator (all_estimators()) that fits with its
  default parameters on a small classification or regression problem, so the functions and
  SciPy classes default parameters and fitted attributes refer to are covered.
Names the denylist covers are dropped (and printed). Review the diff before committing.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pickle
import pkgutil
import platform
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from checks.artifact_scan.pickle_vm import analyse
from checks.artifact_scan.rules import classify_name, python3_name
from checks.artifact_scan.streams import Reader

TARGET = Path(__file__).with_name("_generated_allowlist.py")
SKIP_PARTS = (
    "tests",
    "externals",
    "_testing",
    "estimator_checks",
    "conftest",
    "_build_utils",
    "__check_build",
)


def sklearn_names() -> set[str]:
    import sklearn

    names: set[str] = set()
    for info in pkgutil.walk_packages(sklearn.__path__, "sklearn."):
        if any(part in info.name.split(".") for part in SKIP_PARTS):
            continue
        try:
            module = importlib.import_module(info.name)
        except Exception:  # noqa: BLE001 - optional-dependency modules
            continue
        for attr, obj in vars(module).items():
            if inspect.isclass(obj) and obj.__module__ == info.name:
                names.add(f"{info.name}.{obj.__qualname__}")
            elif callable(obj) and (attr == "newObj" or attr.startswith("__pyx_unpickle_")):
                names.add(f"{info.name}.{attr}")
    return names


def numpy_names() -> set[str]:
    import numpy as np

    names: set[str] = set()
    for attr in dir(np):
        obj = getattr(np, attr, None)
        if isinstance(obj, type) and issubclass(obj, np.generic):
            names |= {f"numpy.{attr}", f"{obj.__module__}.{obj.__qualname__}"}
        elif isinstance(obj, np.ufunc):
            names.add(f"numpy.{attr}")
    for attr, obj in vars(np.dtypes).items():
        if isinstance(obj, type):
            names.add(f"numpy.dtypes.{attr}")
    return names


PANDAS_PACKAGES = ("pandas.core.indexes", "pandas.core.arrays", "pandas.core.internals", "pandas._libs")
PANDAS_MODULES = ("pandas.core.frame", "pandas.core.series", "pandas.core.flags", "pandas.core.dtypes.dtypes")
PANDAS_HOMES = ("core/frame.py", "core/series.py", "core/flags.py", "core/dtypes/dtypes.py", "core/indexes/")
PANDAS_HOMES += ("core/arrays/", "core/internals/", "_libs/")
PANDAS_NOT_HOMES = (
    "_libs/parsers",
    "_libs/writers",
    "_libs/json",
    "_libs/testing",
    "_libs/window",
    "_libs/sas",
)
PANDAS_SKIP = ("parsers", "writers", "json", "sas", "testing", "window", "byteswap")
HELPER_PREFIXES = (
    "_new_",
    "_unpickle",
    "__pyx_unpickle_",
    "_nat_unpickle",
    "_timedelta_unpickle",
    "new_block",
)


def _pandas_home(obj: object, module: object) -> bool:
    """True when `obj` is defined in a module that pickled frames, arrays, dtypes or blocks use."""
    import pandas

    try:
        path = inspect.getfile(obj)  # type: ignore[arg-type]
    except TypeError:  # extension types and functions: the module that holds them
        path = getattr(module, "__file__", "") or ""
    rel = Path(path).resolve().as_posix().split(Path(pandas.__file__).parent.resolve().as_posix() + "/")[-1]
    return rel.startswith(PANDAS_HOMES) and not rel.startswith(PANDAS_NOT_HOMES)


def pandas_names() -> set[str]:
    """Classes and unpickle helpers of the pandas modules pickled data lives in, by every module
    path they are reachable under there (older pandas versions pickle them under these paths)."""
    import pandas

    modules = list(PANDAS_MODULES)
    for package in PANDAS_PACKAGES:
        root = importlib.import_module(package)
        modules += [package] + [i.name for i in pkgutil.walk_packages(root.__path__, f"{package}.")]
    names: set[str] = set()
    accepted: set[int] = set()
    for name in modules:
        if any(part in name.split(".") for part in SKIP_PARTS + PANDAS_SKIP):
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional-dependency modules
            continue
        for attr, obj in vars(module).items():
            helper = callable(obj) and attr.startswith(HELPER_PREFIXES)
            if (inspect.isclass(obj) or helper) and _pandas_home(obj, module):
                names.add(f"{name}.{attr}")
                accepted.add(id(obj))
    for public in (pandas, pandas.arrays):
        names |= {f"{public.__name__}.{a}" for a, o in vars(public).items() if id(o) in accepted}
    return names


def battery() -> Iterator[object]:
    """Real objects whose pickles ML artifacts contain."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import scipy.sparse as sp
    from sklearn.datasets import make_classification
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        IsolationForest,
        RandomForestClassifier,
    )
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.svm import SVC

    yield from (np.arange(3), np.float64(1), np.dtype("U5"), np.array(["a", 1], dtype=object), np.int32)
    yield from (
        np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]),
        np.datetime64("2020-01-01"),
        np.timedelta64(1, "s"),
    )
    yield from (
        np.random.RandomState(0),
        np.random.default_rng(0),
        np.ma.array([1, 2], mask=[0, 1]),
        np.matrix([1]),
    )
    yield from (np.log1p, np.bool_(True), np.str_("x"), np.complex128(1j))
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil"):
        yield getattr(sp, f"{fmt}_matrix")(np.eye(3))
        yield getattr(sp, f"{fmt}_array")(np.eye(3))
    df = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.0, 2.0, 3.0],
            "s": ["a", "b", "c"],
            "o": ["x", 1, None],
            "c": pd.Categorical(["a", "b", "a"]),
            "d": pd.date_range("2020", periods=3),
            "tz": pd.date_range("2020", periods=3, tz="UTC"),
            "b": [True, False, True],
            "I": pd.array([1, None, 3], dtype="Int64"),
            "td": pd.to_timedelta([1, 2, 3], unit="s"),
            "iv": pd.arrays.IntervalArray.from_breaks([0, 1, 2, 3]),
            "p": pd.period_range("2020", periods=3, freq="D"),
            "st": pd.array(["a", None, "c"], dtype="string"),
            "sp": pd.array(["a", None, "c"], dtype="string[python]"),
            "bo": pd.array([True, None, False], dtype="boolean"),
            "F": pd.array([1.0, None, 2], dtype="Float64"),
            "ar": pd.array([1, None, 3], dtype=pd.ArrowDtype(pa.int64())),
            "sparse": pd.arrays.SparseArray([0, 0, 1]),
        }
    )
    yield from (df, df.set_index("d"), df.set_index(["i", "s"]), df["c"], pd.RangeIndex(5), pd.NA, pd.NaT)
    yield from (pd.CategoricalIndex(["a"]), pd.IntervalIndex.from_breaks([0, 1]), pd.TimedeltaIndex([1]))
    yield from (pd.PeriodIndex(["2020"], freq="M"), pd.Timestamp("2020", tz="Europe/Paris"), pd.Timedelta(1))
    yield from (pd.Period("2020"), pd.Interval(0, 1), pd.Index([1.5]), pd.Index([True]), pd.Index(["a"]))
    for freq in ("D", "h", "min", "s", "ms", "ME", "MS", "QE", "YE", "W-SUN", "B", "BME", "SME", "QS", "YS"):
        yield pd.date_range("2020", periods=2, freq=freq)
    yield from fitted_estimators()
    X, y = make_classification(120, 5, random_state=0)
    for est in (
        LogisticRegression(),
        RandomForestClassifier(3, random_state=0),
        HistGradientBoostingClassifier(max_iter=3),
        GradientBoostingClassifier(n_estimators=3),
        KNeighborsClassifier(),
        SVC(probability=True),
        MLPClassifier(max_iter=3),
        SGDClassifier(),
        IsolationForest(n_estimators=3),
    ):
        yield est.fit(X, y)


def fitted_estimators() -> Iterator[object]:
    """Every scikit-learn estimator that fits with default parameters on a small problem."""
    import numpy as np
    from sklearn.datasets import make_classification, make_regression
    from sklearn.utils import all_estimators

    Xc, yc = make_classification(60, 5, random_state=0)
    Xr, yr = make_regression(60, 5, random_state=0)
    problems = {"classifier": (Xc, yc), "regressor": (Xr, yr), "transformer": (np.abs(Xc), yc)}
    problems["cluster"] = (Xc, yc)
    for kind, (X, y) in problems.items():
        for _, cls in all_estimators(type_filter=kind):
            try:
                yield cls().fit(X, y)
            except Exception:  # noqa: BLE001 - estimators that need parameters are skipped
                continue


def observed_names() -> set[str]:
    names: set[str] = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for obj in battery():
            for proto in range(pickle.HIGHEST_PROTOCOL + 1):
                if proto < 2 and type(obj).__module__.startswith("sklearn"):
                    continue  # estimators pickle the same globals at every protocol
                data = pickle.dumps(obj, protocol=proto)
                found = analyse(Reader(io.BytesIO(data)), committed=True, denied=lambda _: True)
                names |= {python3_name(r.module, r.name) for r in found.refs.values()}
    return names


def main() -> None:
    import numpy
    import pandas
    import pyarrow
    import scipy
    import sklearn

    names = sklearn_names() | numpy_names() | pandas_names() | observed_names()
    dropped = sorted(n for n in names if classify_name(n).status == "deny")
    for name in dropped:
        print(f"dropped (denylisted): {name}", file=sys.stderr)
    names -= set(dropped)
    versions = (
        f"scikit-learn {sklearn.__version__}, NumPy {numpy.__version__}, pandas {pandas.__version__}, "
        f"SciPy {scipy.__version__}, PyArrow {pyarrow.__version__}, Python {platform.python_version()}"
    )
    body = "\n".join(f'        "{name}",' for name in sorted(names))
    TARGET.write_text(
        '"""Generated by `python -m checks.artifact_scan.gen_allowlist`; do not edit by hand.\n\n'
        f"Built with {versions}.\nSee gen_allowlist.py for what is included and why.\n"
        '"""\n\n'
        f"GENERATED: frozenset[str] = frozenset(\n    {{\n{body}\n    }}\n)\n"
    )
    print(f"{len(names)} names written to {TARGET}", file=sys.stderr)


if __name__ == "__main__":
    main()
