"""The gate: champion and challenger scored on the same rows, and paired tests decide.

Both models predict the same rows, which neither trained on: the champion's frozen
holdout (the population it was trained on) and the most recent labelled production rows
(the population it serves now). The difference ``d`` of their scores is signed for the
challenger (positive: better; for a loss, champion minus challenger) and judged by a
paired test:

- accuracy: McNemar's test on the discordant pairs (``b``: rows only the champion got
  right, ``c``: rows only the challenger got right): the exact binomial test when
  ``b + c < 25``, else the normal approximation with continuity correction (two-sided:
  ``max(|b - c| - 1, 0)^2 / (b + c)`` against chi-square with 1 degree of freedom;
  one-sided: ``z = (c - b - 1) / sqrt(b + c)``); the interval of ``d = (c - b) / n`` is
  Wald's for paired proportions, ``d ± z_0.975 sqrt(b + c - (c - b)^2 / n) / n``;
- any other metric (AUC, R², RMSE, MAE, F1, log loss): the paired bootstrap, both
  models scored on the same resampled rows (``default_rng(seed).integers(0, n, (B, n))``);
  the percentile interval of ``d``; the one-sided p-values ``P*(d <= 0)`` (of "not
  better") and ``P*(d >= 0)`` (of "not worse").

:data:`RULE` is the decision, printed with every gate: the challenger is promoted when
(1) on all the gate rows the one-sided paired test rejects "the challenger is not
better" at 5 % and the 95 % interval's lower bound is at least ``min_improvement``, and
(2) on each source of rows (``holdout``, ``recent``) the one-sided paired test does not
find it worse at 5 %. A source where the metric is undefined (AUC on rows of one class)
is shown, not judged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.model.scoring import ScoredRows

__all__ = [
    "ALPHA",
    "BOOTSTRAP_REPLICATES",
    "EXACT_BELOW",
    "RULE",
    "SOURCE_NAMES",
    "GateDecision",
    "compare",
    "decide",
    "gate_models",
    "judge",
    "mcnemar",
    "paired_bootstrap",
    "paired_interval",
]

#: Level of the paired tests (one-sided), and 1 - ALPHA the intervals' level is 95 %.
ALPHA = 0.05
#: McNemar's exact binomial test below this many discordant pairs, normal above.
EXACT_BELOW = 25
BOOTSTRAP_REPLICATES = 2000
#: The rule, as printed with every decision.
RULE = (
    "promote when, on all gate rows, the one-sided paired test rejects 'not better' at 5 % "
    "and the 95 % interval's lower bound is >= --min-improvement, and on each source "
    "(holdout, recent production) the one-sided paired test does not find it worse at 5 %"
)
#: How the sources of gate rows are named in messages.
SOURCE_NAMES = {"holdout": "champion's holdout", "recent": "recent production"}
#: Metrics where lower is better.
_LOSSES = frozenset({"rmse", "mae", "log_loss"})

Score = Callable[[Any, Any, Any], float]


@dataclass(frozen=True)
class GateDecision:
    """What the gate found.

    Attributes
    ----------
    metric : str
        The metric compared (the champion's optimized metric).
    champion, challenger : float
        Both scores on all the gate rows.
    difference : float
        In the challenger's favour (positive: better), champion minus challenger for
        losses.
    lower, upper : float
        The 95 % interval of ``difference``.
    test : str
        ``mcnemar_exact``, ``mcnemar_chi2`` or ``paired_bootstrap``.
    statistic : float
        McNemar's chi-square (continuity corrected; also shown for the exact test), or
        the bootstrap's mean difference.
    p_value : float
        One-sided, of "the challenger is not better" (small: better).
    n_rows : int
        Gate rows scored.
    promote : bool
        The verdict (:data:`RULE`).
    reason : str
        One sentence saying why.
    details : dict
        Test facts: McNemar's ``b`` and ``c``, the bootstrap's replicates and seed, the
        two-sided p-value.
    sources : list of dict
        Per source (``holdout``, ``recent``): ``source``, ``n_rows``, ``champion``,
        ``challenger``, ``difference``, ``lower``, ``upper``, ``test``, ``p_worse``
        (one-sided, of "not worse": small means worse) and ``not_worse``.
    rule : str
        :data:`RULE`.
    """

    metric: str
    champion: float
    challenger: float
    difference: float
    lower: float
    upper: float
    test: str
    statistic: float
    p_value: float
    n_rows: int
    promote: bool
    reason: str
    details: dict[str, Any]
    sources: list[dict[str, Any]] = field(default_factory=list)
    rule: str = RULE

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as plain data."""
        return asdict(self)


def mcnemar(champion_right: np.ndarray, challenger_right: np.ndarray) -> dict[str, Any]:
    """McNemar's test of two classifiers' paired correctness.

    Returns ``b`` (champion right, challenger wrong), ``c`` (the reverse), the
    ``statistic`` ``max(|b - c| - 1, 0)^2 / (b + c)`` (0 without discordant pairs), the
    two-sided ``p_value``, the one-sided ``p_better`` (of "the challenger is not
    better") and ``p_worse`` (of "not worse"): exact binomial when ``b + c < 25``, else
    the continuity-corrected normal approximation; and the ``test`` used.
    """
    import numpy as np
    from scipy import stats

    first = np.asarray(champion_right, dtype=bool)
    second = np.asarray(challenger_right, dtype=bool)
    b = int((first & ~second).sum())
    c = int((~first & second).sum())
    n = b + c
    statistic = max(abs(b - c) - 1, 0) ** 2 / n if n else 0.0
    if n == 0:
        p_value, p_better, p_worse, test = 1.0, 1.0, 1.0, "mcnemar_exact"
    elif n < EXACT_BELOW:
        test = "mcnemar_exact"
        p_value = float(stats.binomtest(c, n, 0.5).pvalue)
        p_better = float(stats.binomtest(c, n, 0.5, alternative="greater").pvalue)
        p_worse = float(stats.binomtest(c, n, 0.5, alternative="less").pvalue)
    else:
        test = "mcnemar_chi2"
        p_value = float(stats.chi2.sf(statistic, 1))
        p_better = float(stats.norm.sf((c - b - 1) / math.sqrt(n)))
        p_worse = float(stats.norm.sf((b - c - 1) / math.sqrt(n)))
    return {"b": b, "c": c, "statistic": float(statistic), "p_value": min(1.0, p_value),
            "p_better": min(1.0, p_better), "p_worse": min(1.0, p_worse),
            "test": test}  # fmt: skip


def paired_interval(
    champion_right: np.ndarray, challenger_right: np.ndarray
) -> tuple[float, float, float]:
    """Return the difference of two paired proportions and Wald's 95 % interval of it.

    ``d = (c - b) / n`` and ``d ± z_0.975 sqrt(b + c - (c - b)^2 / n) / n``.
    """
    import numpy as np
    from scipy import stats

    first = np.asarray(champion_right, dtype=bool)
    second = np.asarray(challenger_right, dtype=bool)
    n = len(first)
    b = int((first & ~second).sum())
    c = int((~first & second).sum())
    difference = (c - b) / n
    spread = math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n
    z = float(stats.norm.ppf(1 - ALPHA / 2))
    return difference, difference - z * spread, difference + z * spread


def paired_bootstrap(
    metric: Score,
    champion: ScoredRows,
    challenger: ScoredRows,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
    loss: bool = False,
) -> dict[str, Any]:
    """Bootstrap the difference of a metric between two models on the same rows, paired.

    Parameters
    ----------
    metric : callable
        ``metric(y, prediction, proba) -> float`` (one of :mod:`titanicml.metrics`).
    champion, challenger : ScoredRows
        Both models' predictions of the same rows (the same ``y``).
    replicates : int
        Resamples, drawn as ``default_rng(seed).integers(0, n, size=(replicates, n))``.
    seed : int
        Seed of the draw.
    loss : bool
        Lower is better: the difference is champion minus challenger.

    Returns
    -------
    dict
        ``difference`` (on all rows), ``lower`` and ``upper`` (2.5 and 97.5 percentiles
        of the replicates), the one-sided ``p_better`` ``P*(d <= 0)`` and ``p_worse``
        ``P*(d >= 0)``, the two-sided ``p_value`` (twice the smaller, at most 1),
        ``mean`` of the replicates, ``replicates`` used (those where the metric is
        defined, e.g. AUC needs both classes).

    Raises
    ------
    DataError
        If the metric is defined on no resample.
    """
    import numpy as np

    sign = -1.0 if loss else 1.0
    y = champion.y

    def gap(rows: Any) -> float:
        first = metric(y[rows], champion.prediction[rows], _rows(champion.proba, rows))
        second = metric(y[rows], challenger.prediction[rows], _rows(challenger.proba, rows))
        return sign * (second - first)

    n = len(y)
    draws = np.random.default_rng(seed).integers(0, n, size=(replicates, n))
    gaps = np.array([gap(rows) for rows in draws])
    gaps = gaps[np.isfinite(gaps)]
    if len(gaps) == 0:
        raise DataError("the metric is not defined on any resample of the gate rows")
    p_better, p_worse = float(np.mean(gaps <= 0)), float(np.mean(gaps >= 0))
    return {
        "difference": gap(np.arange(n)),
        "lower": float(np.percentile(gaps, 100 * ALPHA / 2)),
        "upper": float(np.percentile(gaps, 100 * (1 - ALPHA / 2))),
        "p_better": p_better,
        "p_worse": p_worse,
        "p_value": min(1.0, 2 * min(p_better, p_worse)),
        "mean": float(gaps.mean()),
        "replicates": len(gaps),
    }


def _rows(proba: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if proba is None else proba[rows]


def compare(
    metric: str,
    first: ScoredRows,
    second: ScoredRows,
    score: Score,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare two models on the same scored rows with the paired test of ``metric``.

    Returns ``n_rows``, both scores (``champion``, ``challenger``), ``difference``,
    ``lower``, ``upper``, ``test``, ``statistic``, ``p_value`` (two-sided), ``p_better``
    and ``p_worse`` (one-sided), and McNemar's ``b``, ``c`` or the bootstrap's
    ``replicates``. A metric undefined on the rows gives NaN figures and ``p`` values 1.
    """
    import numpy as np

    facts: dict[str, Any] = {
        "n_rows": len(first.y),
        "champion": float(score(first.y, first.prediction, first.proba)),
        "challenger": float(score(second.y, second.prediction, second.proba)),
    }
    if metric == "accuracy":
        right_first, right_second = first.prediction == first.y, second.prediction == second.y
        test = mcnemar(right_first, right_second)
        difference, lower, upper = paired_interval(right_first, right_second)
        facts.update(test, difference=difference, lower=lower, upper=upper)
        return facts
    try:
        boot = paired_bootstrap(score, first, second, replicates, seed, metric in _LOSSES)
    except DataError:
        nan = float("nan")
        boot = {"difference": nan, "lower": nan, "upper": nan, "p_better": 1.0,
                "p_worse": 1.0, "p_value": 1.0, "mean": nan, "replicates": 0}  # fmt: skip
    statistic = boot.pop("mean")
    facts.update(boot, test="paired_bootstrap", statistic=statistic)
    if not np.isfinite(facts["difference"]):
        facts["p_better"] = facts["p_worse"] = facts["p_value"] = 1.0
    return facts


def judge(
    metric: str,
    first: ScoredRows,
    second: ScoredRows,
    sources: Sequence[str] | np.ndarray,
    score: Score,
    min_improvement: float = 0.0,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> tuple[dict[str, Any], list[dict[str, Any]], bool, str]:
    """Compare on all rows and on each source; decide by :data:`RULE`.

    ``sources`` names the source of each scored row (``holdout``, ``recent``).
    Returns the pooled comparison, the per-source ones, the verdict and its reason.
    """
    import numpy as np

    labels = np.asarray(sources, dtype=object)
    pooled = compare(metric, first, second, score, replicates, seed)
    per_source = []
    for source in dict.fromkeys(labels.tolist()):
        mask = labels == source
        found = compare(metric, first.subset(mask), second.subset(mask), score, replicates, seed)
        judged = math.isfinite(found["difference"])
        found.update(source=source, judged=judged, not_worse=found["p_worse"] >= ALPHA)
        per_source.append(found)
    promote, reason = decide(pooled, per_source, min_improvement)
    return pooled, per_source, promote, reason


def decide(
    pooled: dict[str, Any], per_source: Sequence[dict[str, Any]], min_improvement: float
) -> tuple[bool, str]:
    """Return whether to promote, and why (:data:`RULE`).

    ``pooled`` and each of ``per_source`` hold ``difference``, ``lower``, ``p_better``
    and ``p_worse`` (as :func:`compare` returns them); a source also its ``source``.
    """
    for found in per_source:
        if found["p_worse"] < ALPHA:
            where = SOURCE_NAMES.get(found["source"], found["source"])
            return False, (
                f"the challenger is worse on the {where} rows (difference "
                f"{found['difference']:+.4g}, one-sided p = {found['p_worse']:.3g} < {ALPHA:g})"
            )
    difference, lower, p_better = pooled["difference"], pooled["lower"], pooled["p_better"]
    if not p_better < ALPHA:
        return False, (
            f"the challenger is not better beyond chance (difference {difference:+.4g}, "
            f"one-sided p = {p_better:.3g} >= {ALPHA:g})"
        )
    if lower < min_improvement:
        return False, (
            f"the challenger is better (difference {difference:+.4g}, one-sided p = "
            f"{p_better:.3g}) but the 95 % interval's lower bound {lower:+.4g} is below "
            f"--min-improvement {min_improvement:g}"
        )
    return True, (
        f"the challenger is better by {difference:+.4g} (95 % interval from {lower:+.4g}, "
        f"one-sided p = {p_better:.3g}) and not worse on any source"
    )


def gate_models(
    champion: Any,
    challenger: Any,
    rows: pd.DataFrame,
    target: str,
    metric: str,
    min_improvement: float = 0.0,
    min_rows: int = 30,
    seed: int = 0,
    replicates: int = BOOTSTRAP_REPLICATES,
    sources: Sequence[str] | None = None,
) -> GateDecision:
    """Score both models on the gate rows and decide.

    ``sources`` names the source of each row of ``rows`` (``holdout``, ``recent``);
    default: one source, ``gate``.

    Raises
    ------
    DataError
        If fewer than ``min_rows`` gate rows can be scored (the message says how many
        it needs).
    ConfigError
        For a metric that does not apply to the models' task, or is undefined on the
        gate rows.
    """
    import numpy as np

    from titanicml.metrics import metric_for_task, score_one
    from titanicml.model.scoring import scored_rows

    first = scored_rows(champion, rows, target)
    second = scored_rows(challenger, rows, target)
    n = len(first.y)
    if n < min_rows:
        raise DataError(
            f"the gate has {n} scorable row(s); it needs at least {min_rows} "
            f"({min_rows - n} more): train the champion with a holdout (--holdout 0.2), "
            "join more labels (titanicml monitor labels), or lower --min-gate-rows"
        )
    metric_for_task(metric, first.task)
    labels = np.asarray(sources if sources is not None else ["gate"] * len(rows), dtype=object)

    def score(y: Any, prediction: Any, proba: Any) -> float:
        return score_one(first.task, metric, y, prediction, proba)

    pooled, per_source, promote, reason = judge(
        metric, first, second, labels[first.positions], score, min_improvement, replicates, seed
    )
    if not math.isfinite(pooled["difference"]):
        raise ConfigError(f"{metric} is not defined on the gate rows; choose another metric")
    details = {k: pooled[k] for k in ("b", "c", "replicates") if k in pooled}
    details.update(p_two_sided=pooled["p_value"], p_worse=pooled["p_worse"],
                   unscored=first.unscored)  # fmt: skip
    if pooled["test"] == "paired_bootstrap":
        details["seed"] = seed
    kept = ("source", "n_rows", "champion", "challenger", "difference", "lower", "upper",
            "test", "p_worse", "judged", "not_worse")  # fmt: skip
    return GateDecision(
        metric=metric,
        champion=pooled["champion"],
        challenger=pooled["challenger"],
        difference=float(pooled["difference"]),
        lower=float(pooled["lower"]),
        upper=float(pooled["upper"]),
        test=pooled["test"],
        statistic=float(pooled["statistic"]),
        p_value=float(pooled["p_better"]),
        n_rows=n,
        promote=promote,
        reason=reason,
        details=details,
        sources=[{k: s[k] for k in kept} for s in per_source],
    )
