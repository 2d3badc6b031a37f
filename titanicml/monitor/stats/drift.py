"""Drift metrics between a production window and its reference, with bootstrap intervals.

The metric names and their definitions are Azure ML model monitoring's:

==================================  ===========  =====================================
metric                              columns      value (``alert`` when lower > threshold)
==================================  ===========  =====================================
normalized_wasserstein_distance     numeric      Wasserstein-1 distance / reference std
jensen_shannon_distance             both         JS distance, base 2 (numeric: binned)
population_stability_index          both         PSI, +1 (Laplace) per bin, as Azure
two_sample_kolmogorov_smirnov_test  numeric      KS statistic D; p-value, BH q-value
pearsons_chi_squared_test           categorical  Cramér's V; chi-square p, BH q-value
==================================  ===========  =====================================

Numeric columns are binned for JS and PSI at the reference's deciles (distinct edges
only; Azure uses equal-width Sturges bins over both samples, so binned figures differ
slightly from Azure's). For the two tests the value is an effect size (D, Cramér's V)
judged like a distance, and the test's p-value is reported beside it, adjusted across
features by Benjamini-Hochberg; a test alerts only when both say so.

Every figure has a bootstrap interval: each side is resampled (multinomially over its
support, at most ``max_rows`` rows a replicate: the cost is bounded whatever the
window's size, and the interval is then that of ``max_rows`` rows, a little wider),
all replicates in one array operation. The interval is the basic (reverse percentile)
bootstrap interval, clipped at 0 (for the JS distance and Cramér's V, made on their
squares, the divergences, whose bias adds up, and then rooted): a distance measured
between two samples is biased upwards (two samples of one distribution are never at
distance 0), and the basic interval removes that bias where a percentile interval
would keep it. Its upper bound is never below the value. The rows a window needs come
from the same replicates: the interval's half-width must be at most the threshold (see
:func:`rows_needed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from titanicml.monitor.stats.distributions import OTHER, Categorical, Numeric

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CATEGORICAL_METRICS",
    "DEFAULT_THRESHOLDS",
    "NUMERIC_METRICS",
    "TEST_METRICS",
    "Measurement",
    "benjamini_hochberg",
    "interval",
    "jensen_shannon",
    "measure_categorical",
    "measure_numeric",
    "rows_needed",
]

NWD = "normalized_wasserstein_distance"
JSD = "jensen_shannon_distance"
PSI = "population_stability_index"
KS = "two_sample_kolmogorov_smirnov_test"
CHI2 = "pearsons_chi_squared_test"
NUMERIC_METRICS = (NWD, JSD, PSI, KS)
CATEGORICAL_METRICS = (JSD, PSI, CHI2)
TEST_METRICS = (KS, CHI2)
#: Azure's defaults for its two default metrics (0.1); PSI's 0.25 is the usual
#: "significant shift" line; 0.1 for D and Cramér's V (a small effect).
DEFAULT_THRESHOLDS = {NWD: 0.1, JSD: 0.1, PSI: 0.25, KS: 0.1, CHI2: 0.1}
#: Azure floors the reference standard deviation at this value.
MIN_STD = 0.001
BINS = 10
# Metrics that are the square root of a divergence: their interval is made on the square.
SQUARED = (JSD, CHI2)


@dataclass(frozen=True)
class Measurement:
    """One metric measured between a window and its reference.

    Attributes
    ----------
    value : float
        The metric on the two samples.
    lower, upper : float
        The bootstrap interval.
    spread : float
        Width of the replicates' central interval (for :func:`rows_needed`).
    p_value : float or None
        The test's p-value, for the two tests.
    n_production, n_reference : int
        Rows each replicate of each side resampled.
    """

    value: float
    lower: float
    upper: float
    spread: float
    p_value: float | None
    n_production: int
    n_reference: int


def measure_numeric(
    production: Numeric,
    reference: Numeric,
    metric: str,
    *,
    n_boot: int = 200,
    max_rows: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Measurement:
    """Measure ``metric`` between two numeric distributions, with its interval."""
    import numpy as np

    grid = np.union1d(production.values, reference.values)
    (p, m_p, n_p), (q, m_q, n_q) = _both_sides(
        [
            (production.values, production.weights, production.n),
            (reference.values, reference.weights, reference.n),
        ],
        grid,
        n_boot,
        max_rows,
        seed,
    )
    if metric in (NWD, KS):
        # Row 0 holds the observed distributions: the Wasserstein-1 distance is the area
        # between their CDFs over the union of both supports (as scipy's
        # wasserstein_distance: tests/test_drift_stats.py checks it against scipy).
        gap = np.abs(np.cumsum(p, axis=1) - np.cumsum(q, axis=1))
        if metric == NWD:
            values = gap[:, :-1] @ np.diff(grid) / max(_finite(reference.std), MIN_STD)
        else:
            values = gap.max(axis=1)
    elif metric in (JSD, PSI):
        edges = _decile_edges(reference)
        bins = np.searchsorted(edges, grid, side="right")
        onehot = np.zeros((grid.size, edges.size + 1))
        onehot[np.arange(grid.size), bins] = 1.0
        values = _binned(metric, (p @ onehot) * n_p, (q @ onehot) * n_q)
    else:
        raise ValueError(f"{metric!r} is not a metric of numeric columns")
    p_value = None
    if metric == KS:
        from scipy.stats import ks_2samp

        p_value = float(ks_2samp(production.sample(), reference.sample()).pvalue)
    return _measurement(values, p_value, m_p, m_q, confidence, metric)


def measure_categorical(
    production: Categorical,
    reference: Categorical,
    metric: str,
    *,
    n_boot: int = 200,
    max_rows: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Measurement:
    """Measure ``metric`` between two categorical distributions, with its interval.

    The production categories are aligned with the reference's: a value outside the
    reference's top values counts as :data:`OTHER`, or as :data:`UNSEEN` when the
    reference lists every value it holds.
    """
    import numpy as np

    labels = list(reference.counts)
    ref_counts = np.array([reference.counts[k] for k in labels] + [0.0])
    prod_counts = np.zeros(len(labels) + 1)
    index = {k: i for i, k in enumerate(labels)}
    pool = index.get(OTHER, len(labels))
    for key, count in production.counts.items():
        prod_counts[index.get(key, pool)] += count
    if not prod_counts[-1] and not ref_counts[-1]:
        prod_counts, ref_counts = prod_counts[:-1], ref_counts[:-1]
    if metric not in CATEGORICAL_METRICS:
        raise ValueError(f"{metric!r} is not a metric of categorical columns")
    grid = np.arange(prod_counts.size)
    (p, m_p, n_p), (q, m_q, n_q) = _both_sides(
        [(grid, prod_counts, production.n), (grid, ref_counts, reference.n)],
        grid,
        n_boot,
        max_rows,
        seed,
    )
    values = _binned(metric, p * n_p, q * n_q)
    p_value = None
    if metric == CHI2:
        from scipy.stats import chi2_contingency

        table = np.vstack([prod_counts, ref_counts])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] > 1:
            p_value = float(chi2_contingency(table, correction=False).pvalue)
        else:
            p_value = 1.0
    return _measurement(values, p_value, m_p, m_q, confidence, metric)


def _both_sides(
    sides: list[tuple[np.ndarray, np.ndarray, int]],
    grid: np.ndarray,
    n_boot: int,
    max_rows: int,
    seed: int,
) -> list[tuple[np.ndarray, int, np.ndarray]]:
    """Resample each ``(support, weights, n)`` side on ``grid`` (production first).

    Returns, per side, its shares (:func:`_replicates`), the rows each replicate drew,
    and the rows behind each row of shares as a column (``n``, then the replicates'),
    to turn shares into counts.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for support, weights, n in sides:
        shares, drawn = _replicates(support, weights, grid, n_boot, max_rows, rng)
        rows = np.concatenate([[n], np.full(n_boot, drawn)])[:, None]
        out.append((shares, drawn, rows))
    return out


def _replicates(
    support: np.ndarray,
    weights: np.ndarray,
    grid: np.ndarray,
    n_boot: int,
    max_rows: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int]:
    """Return the observed and ``n_boot`` resampled distributions on ``grid``.

    Row 0 is the observed probabilities, rows 1.. the replicates; each row sums to 1.
    """
    import numpy as np

    total = float(weights.sum())
    probabilities = weights / total
    rows = max(1, min(round(total), max_rows))
    counts = rng.multinomial(rows, probabilities, size=n_boot) / rows
    out = np.zeros((n_boot + 1, grid.size))
    columns = np.searchsorted(grid, support)
    out[0, columns] = probabilities
    out[1:, columns] = counts
    return out, rows


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Return the Jensen-Shannon distance (base 2) between each row of ``p`` and ``q``.

    Rows are counts or shares (normalized here); a row without any count gives 0.
    The same computation as ``scipy.spatial.distance.jensenshannon(p, q, base=2,
    axis=1)``, from ``scipy.special.rel_entr``: importing ``scipy.spatial`` alone took
    a fifth of the monitor's time on a million rows (``benchmarks/monitor.py``).
    """
    import numpy as np
    from scipy.special import rel_entr

    with np.errstate(divide="ignore", invalid="ignore"):
        p = p / p.sum(axis=1, keepdims=True)
        q = q / q.sum(axis=1, keepdims=True)
        m = (p + q) / 2
        divergence = (rel_entr(p, m).sum(axis=1) + rel_entr(q, m).sum(axis=1)) / np.log(2)
    return np.nan_to_num(np.sqrt(np.maximum(divergence, 0.0) / 2))


def _binned(metric: str, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Apply a binned metric to rows of counts (production ``p``, reference ``q``)."""
    import numpy as np

    if metric == JSD:
        return jensen_shannon(p, q)
    if metric == PSI:
        k = p.shape[1]
        sp = (p + 1) / (p.sum(axis=1, keepdims=True) + k)
        sq = (q + 1) / (q.sum(axis=1, keepdims=True) + k)
        return np.sum((sp - sq) * np.log(sp / sq), axis=1)
    # Cramér's V of the 2 x k table (production, reference): sqrt(chi2 / N).
    total = p.sum(axis=1, keepdims=True) + q.sum(axis=1, keepdims=True)
    column = p + q
    chi2 = np.zeros(p.shape[0])
    for side in (p, q):
        expected = side.sum(axis=1, keepdims=True) * column / total
        with np.errstate(divide="ignore", invalid="ignore"):
            chi2 += np.where(expected > 0, (side - expected) ** 2 / expected, 0.0).sum(axis=1)
    return np.sqrt(chi2 / total[:, 0])


def _decile_edges(reference: Numeric) -> np.ndarray:
    """Inner bin edges at the reference's deciles (distinct values only)."""
    import numpy as np

    cumulative = np.cumsum(reference.weights) / reference.weights.sum()
    levels = np.arange(1, BINS) / BINS
    edges = reference.values[
        np.minimum(np.searchsorted(cumulative, levels), reference.values.size - 1)
    ]
    return np.unique(edges)


def _measurement(
    values: np.ndarray, p_value: float | None, m_p: int, m_q: int, confidence: float, metric: str
) -> Measurement:
    import numpy as np

    value = float(values[0])
    if metric in SQUARED:
        # A divergence's bias adds up; the interval is made on the square, then rooted.
        low, high, _ = interval(value**2, values[1:] ** 2, confidence)
        lower, upper = math.sqrt(low), max(value, math.sqrt(high))
    else:
        lower, upper, _ = interval(value, values[1:], confidence)
    tail = (1 - confidence) / 2
    q_lo, q_hi = np.quantile(values[1:], [tail, 1 - tail])
    return Measurement(value, lower, upper, float(q_hi - q_lo), p_value, m_p, m_q)


def interval(
    value: float, replicates: np.ndarray, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Return the basic bootstrap interval of a non-negative statistic, and its spread.

    Parameters
    ----------
    value : float
        The statistic on the data.
    replicates : ndarray
        The statistic on each bootstrap replicate.
    confidence : float
        Two-sided level of the interval.

    Returns
    -------
    tuple of float
        ``(lower, upper, spread)``: ``lower = max(0, 2 value - q_hi)``,
        ``upper = max(value, 2 value - q_lo)`` and ``spread = q_hi - q_lo``, with
        ``q_lo``, ``q_hi`` the replicates' quantiles at ``(1 - confidence) / 2`` and
        ``(1 + confidence) / 2``.
    """
    import numpy as np

    tail = (1 - confidence) / 2
    q_lo, q_hi = np.quantile(replicates, [tail, 1 - tail])
    lower = max(0.0, 2 * value - float(q_hi))
    upper = max(value, 2 * value - float(q_lo))
    return lower, upper, float(q_hi - q_lo)


def rows_needed(measurement: Measurement, threshold: float, n_reference: int) -> float:
    """Return the production rows for an interval at most ``2 threshold`` wide.

    The interval's half-width must not exceed the threshold, so that a feature drifted
    by twice the threshold is flagged. The replicates' spread ``s`` shrinks as
    ``s^2 = c (1/m_p + 1/m_r)`` with the rows each side resampled; solving
    ``c (1/n + 1/n_reference) <= (2 threshold)^2`` for the window's rows ``n`` gives
    the answer (infinite when the reference alone is too small for that width).
    """
    m = measurement
    c = m.spread**2 / (1 / m.n_production + 1 / m.n_reference)
    if c == 0:
        return 0.0
    room = (2 * threshold) ** 2 / c - 1 / max(n_reference, 1)
    # Rounded first: floating-point noise must not add a row.
    return math.inf if room <= 0 else float(math.ceil(round(1 / room, 6)))


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Return Benjamini-Hochberg adjusted p-values (q-values), in the input order."""
    import numpy as np
    from scipy.stats import false_discovery_control

    p = np.asarray(p_values, dtype="float64")
    if p.size == 0:
        return p
    return false_discovery_control(p, method="bh")


def _finite(value: float) -> float:
    return value if value is not None and math.isfinite(value) else 0.0
