"""(a) Backdoor triggers: a group of rows that share a rare feature pattern and one target label,
yet look like other classes in every other feature.

Method, per class and without a removal quota:
1. Mining: for every feature and both tails, the largest extreme tail in which at least
   `backdoor_purity` of rows carry one label, or all but one (and that holds at least
   `min_group_rows` rows of it, but not most of the class). Tails of one class merge into one
   candidate pattern when most of the smaller tail lies in the larger; the pattern's rows are
   the class's rows in at least half of its tails.
2. Test ("is this class poisoned?"): drop the pattern's features and ask a kNN over the other
   rows which labels surround the group, the rest of its class, and rows of other classes.
   A natural subgroup still looks like its class; trigger rows look like the classes they were
   taken from. `foreign` places the group on that scale (0 = like its class, 1 = like the
   others). The class is called poisoned when foreign >= `backdoor_min_foreign` and the group
   holds more look-alike rows than the class's own border rows explain (binomial p <= 1e-6), an
   adaptive test rather than a removal quota. The finding names the group's look-alike rows.
Label-consistency methods rank trigger rows as clean (the trigger makes them agree with their
neighbours), which is why this pattern needs its own test. A trigger whose values stay inside
the features' usual range makes no pure extreme tail and is not found (see bench/RESULTS.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from checks.detectors.poisoning.context import Context, nearest_reference
from checks.findings import Finding

TAIL_SHARE = 0.2  # the longest tail examined, as a share of all rows
SUBGROUP_SHARE = 0.8  # a group holding more of its class than this is the class itself, not a subgroup
OVERLAP = 0.8  # tails of one class merge when this share of the smaller one lies in the larger
MAX_CANDIDATES = 50  # candidate patterns tested, purest first (progress records any left untested)
GROUP_SAMPLE = 1_000  # group rows sampled to score a pattern (all rows are classified once confirmed)
TEST_ROWS = 300  # rows sampled from the rest of the class, and from other classes, to score it
MIN_SEPARATION = 0.3  # the remaining features must tell the class from the others at least this well
SIGNIFICANCE = 1e-6  # binomial tail: so many look-alike rows by chance, at the class's own rate


@dataclass
class Tail:
    """One feature's extreme tail dominated by one class."""

    label: int
    column: int
    high: bool  # upper tail (values >= cut) or lower tail (values <= cut)
    cut: float
    members: np.ndarray  # row indices of the label inside the tail
    purity: float


@dataclass
class Pattern:
    label: int
    tails: list[Tail]
    rows: np.ndarray  # the class's rows that carry the pattern
    foreign: float = 0.0
    look_alike: np.ndarray | None = None  # those of them that look like another class without it
    sources: dict[int, int] | None = None


def find_backdoors(ctx: Context) -> list[Finding]:
    """One high finding per target class whose rare-pattern group passes the test."""
    cfg = ctx.config
    min_rows = cfg.min_group_rows
    tails = mine_tails(ctx.X, ctx.labels, ctx.k, purity=cfg.backdoor_purity, min_rows=min_rows)
    ctx.checkpoint("backdoor: tails mined")
    candidates = [p for p in merge_tails(tails, ctx.labels) if len(p.rows) >= min_rows]
    # triggers make (nearly) label-pure tails on several features at once: test those first
    candidates.sort(key=lambda p: (-min(t.purity for t in p.tails), -len(p.tails), len(p.rows)))
    ctx.progress["backdoor_candidates"] = len(candidates)
    confirmed: list[Pattern] = []
    for pattern in candidates[:MAX_CANDIDATES]:
        ctx.checkpoint("backdoor: testing candidates")
        if _confirm(ctx, pattern):
            confirmed.append(pattern)
    ctx.progress["backdoor_untested"] = max(0, len(candidates) - MAX_CANDIDATES)
    by_label: dict[int, list[Pattern]] = {}
    for pattern in confirmed:
        by_label.setdefault(pattern.label, []).append(pattern)
    findings = [_finding(ctx, label, patterns) for label, patterns in sorted(by_label.items())]
    for pattern in confirmed:
        ctx.claimed.update(pattern.look_alike.tolist())
    return findings


def mine_tails(X: np.ndarray, labels: np.ndarray, k: int, *, purity: float, min_rows: int) -> list[Tail]:
    """Every (feature, tail, class) whose longest pure extreme tail qualifies (see module doc)."""
    n = len(labels)
    depth = min(n, max(int(TAIL_SHARE * n), min_rows))
    class_sizes = np.bincount(labels, minlength=k)
    onehot = np.eye(k, dtype=np.int32)
    found: list[Tail] = []
    for column in range(X.shape[1]):
        order = np.argsort(X[:, column], kind="stable")
        for high in (True, False):
            ranked = order[::-1] if high else order  # most extreme first
            values = X[ranked, column] if high else -X[ranked, column]
            found.extend(
                _column_tails(
                    ranked, values, labels, onehot, class_sizes, column, high, depth, purity, min_rows
                )
            )
    return found


def _column_tails(
    ranked: np.ndarray,
    values: np.ndarray,
    labels: np.ndarray,
    onehot: np.ndarray,
    class_sizes: np.ndarray,
    column: int,
    high: bool,
    depth: int,
    purity: float,
    min_rows: int,
) -> list[Tail]:
    """Tails of one column, rows `ranked` most extreme first with their (sign-adjusted) values."""
    top, ordered = ranked[:depth], values[:depth]
    # a tail may only end between two different values, never inside a run of ties
    ends = np.r_[ordered[1:] != ordered[:-1], depth == len(values) or values[depth - 1] != values[depth]]
    counts = np.cumsum(onehot[labels[top]], axis=0)
    sizes = np.arange(1, depth + 1)[:, None]
    pure = (counts >= purity * sizes) | (counts >= sizes - 1)  # one stray row never spoils a tail
    ok = ends[:, None] & pure & (counts >= min_rows)
    ok &= counts <= SUBGROUP_SHARE * class_sizes[None, :]
    tails = []
    for label in np.flatnonzero(ok.any(axis=0)):
        end = int(np.flatnonzero(ok[:, label])[-1])
        inside = top[: end + 1]
        members = np.sort(inside[labels[inside] == label])
        cut = float(ordered[end]) if high else -float(ordered[end])
        tails.append(Tail(int(label), column, high, cut, members, float(counts[end, label] / (end + 1))))
    return tails


def merge_tails(tails: list[Tail], labels: np.ndarray) -> list[Pattern]:
    """Group each class's tails whose members overlap (OVERLAP of the smaller tail) into patterns."""
    patterns = []
    for label in sorted({t.label for t in tails}):
        mine = [t for t in tails if t.label == label]
        membership = np.zeros((len(mine), len(labels)), dtype=np.float32)
        for i, tail in enumerate(mine):
            membership[i, tail.members] = 1.0
        overlap = membership @ membership.T
        sizes = np.diag(overlap)
        smaller = np.maximum(np.minimum(sizes[:, None], sizes[None, :]), 1.0)
        for component in _components(overlap / smaller >= OVERLAP):
            hits = membership[component].sum(axis=0)
            rows = np.flatnonzero(hits >= (len(component) + 1) // 2)
            patterns.append(Pattern(label, [mine[i] for i in component], rows))
    return patterns


def _components(adjacent: np.ndarray) -> list[list[int]]:
    """Connected components of a small symmetric boolean adjacency matrix."""
    unseen = set(range(len(adjacent)))
    components = []
    while unseen:
        stack = [unseen.pop()]
        component = []
        while stack:
            node = stack.pop()
            component.append(node)
            linked = [int(j) for j in np.flatnonzero(adjacent[node]) if j in unseen]
            unseen.difference_update(linked)
            stack.extend(linked)
        components.append(sorted(component))
    return components


def _confirm(ctx: Context, pattern: Pattern) -> bool:
    """Is this class poisoned through this pattern? Sets `foreign`, and for a confirmed pattern the
    rows that look like another class without it (`look_alike`) and those classes (`sources`).

    The score comes from samples (of the group, the rest of its class and other classes); only a
    confirmed group has every row classified. Undecidable (no feature left, or the remaining
    features cannot tell the class's ordinary rows from the others) counts as not confirmed.
    """
    keep = np.ones(ctx.X.shape[1], dtype=bool)
    keep[[t.column for t in pattern.tails]] = False
    in_group = np.zeros(ctx.n, dtype=bool)
    in_group[pattern.rows] = True
    same = np.flatnonzero(~in_group & (ctx.labels == pattern.label))
    other = np.flatnonzero(ctx.labels != pattern.label)
    if not keep.any() or min(len(same), len(other)) < ctx.config.min_group_rows:
        return False
    rng = np.random.default_rng(ctx.config.seed)
    reference = np.flatnonzero(~in_group)
    if len(reference) > ctx.config.reference_rows // 2:
        reference = np.sort(rng.choice(reference, ctx.config.reference_rows // 2, replace=False))

    def share(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Share of the pattern's label among each row's neighbours, and the neighbours."""
        neighbours, _ = nearest_reference(ctx.compact, reference, rows, ctx.config.neighbors, keep)
        return (ctx.labels[neighbours] == pattern.label).mean(axis=1), neighbours

    group, rest, others = (share(_sample(rng, rows, size))[0] for rows, size in _roles(pattern, same, other))
    separation = rest.mean() - others.mean()
    if separation < MIN_SEPARATION:
        return False
    pattern.foreign = float(np.clip((rest.mean() - group.mean()) / separation, 0.0, 1.0))
    base_rate = max(float(np.mean(rest < 0.5)), 0.5 / len(rest))
    if binomial_tail(int(np.sum(group < 0.5)), len(group), base_rate) > SIGNIFICANCE:
        pattern.foreign = 0.0  # a handful of rows: too few to tell from the class's own border cases
    if pattern.foreign < ctx.config.backdoor_min_foreign:
        return False
    shares, neighbours = share(pattern.rows)
    looks_foreign = shares < 0.5
    pattern.look_alike = pattern.rows[looks_foreign]
    votes = np.bincount(ctx.labels[neighbours[looks_foreign]].ravel(), minlength=ctx.k)
    votes[pattern.label] = 0
    pattern.sources = {int(c): int(v) for c, v in enumerate(votes) if v}
    return len(pattern.look_alike) >= ctx.config.min_group_rows


def _roles(pattern: Pattern, same: np.ndarray, other: np.ndarray) -> list[tuple[np.ndarray, int]]:
    return [(pattern.rows, GROUP_SAMPLE), (same, TEST_ROWS), (other, TEST_ROWS)]


def binomial_tail(hits: int, trials: int, rate: float) -> float:
    """P(X >= hits) for X ~ Binomial(trials, rate), summed in log space."""
    if hits <= 0:
        return 1.0
    if rate >= 1.0:
        return 1.0
    log_terms = [
        math.lgamma(trials + 1)
        - math.lgamma(i + 1)
        - math.lgamma(trials - i + 1)
        + i * math.log(rate)
        + (trials - i) * math.log1p(-rate)
        for i in range(hits, trials + 1)
    ]
    top = max(log_terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in log_terms))


def _sample(rng: np.random.Generator, rows: np.ndarray, size: int) -> np.ndarray:
    return rows if len(rows) <= size else np.sort(rng.choice(rows, size, replace=False))


def _describe(ctx: Context, pattern: Pattern) -> list[dict]:
    """Features and values of a pattern: the tail cut, the group's values, everyone else's range."""
    others = np.ones(ctx.n, dtype=bool)
    others[pattern.rows] = False
    described = []
    for tail in sorted(pattern.tails, key=lambda t: t.column):
        column = ctx.X[:, tail.column]
        group = column[pattern.rows]
        low, high = np.percentile(column[others], [5, 95]) if others.any() else (np.nan, np.nan)
        described.append(
            {
                "feature": ctx.feature(tail.column),
                "direction": "high" if tail.high else "low",
                "cut": round(tail.cut, 6),
                "group_median": round(float(np.median(group)), 6),
                "group_range": [round(float(group.min()), 6), round(float(group.max()), 6)],
                "others_p5_p95": [round(float(low), 6), round(float(high), 6)],
            }
        )
    return described


def _finding(ctx: Context, label: int, patterns: list[Pattern]) -> Finding:
    target = ctx.class_name(label)
    rows = np.unique(np.concatenate([p.look_alike for p in patterns]))
    described = [_describe(ctx, p) for p in patterns]
    trigger = "; ".join(
        " and ".join(
            f"{d['feature']} {'>=' if d['direction'] == 'high' else '<='} {d['cut']:g}" for d in desc
        )
        for desc in described
    )
    sources: dict[str, int] = {}
    for pattern in patterns:
        for code, votes in (pattern.sources or {}).items():
            sources[ctx.class_name(code)] = sources.get(ctx.class_name(code), 0) + votes
    look_alike = sorted(sources, key=lambda name: -sources[name])[:3]
    return ctx.finding(
        f"backdoor:{target}",
        ctx.config.backdoor_severity,
        f"Suspected backdoor into class {target!r}: {len(rows)} rows share a rare pattern ({trigger}) "
        f"and look like class {', '.join(map(repr, look_alike))} otherwise",
        {
            "rows": ctx.rows(rows),
            "target_class": target,
            "patterns": [
                {"features": desc, "rows_with_pattern": len(p.rows), "foreign": round(p.foreign, 3)}
                for desc, p in zip(described, patterns, strict=True)
            ],
            "look_alike_classes": {
                name: sources[name] for name in sorted(sources, key=lambda s: -sources[s])
            },
            "min_foreign": ctx.config.backdoor_min_foreign,
        },
        f"Drop the {len(rows)} listed rows (or restore their true labels), trace how rows with "
        f"{trigger} labelled {target!r} entered the source, and retrain. Before deploying, check that "
        f"inputs with this pattern are no longer classified as {target!r}.",
    )
