"""The gate: champion and challenger scored on the same rows, and a paired test decides.

Both models predict the same rows, which neither trained on. The difference of their
scores is judged by a paired test at 95 %:

- accuracy: McNemar's test on the discordant pairs (``b``: rows only the champion got
  right, ``c``: rows only the challenger got right); the exact binomial test when
  ``b + c < 25``, else the chi-square statistic with continuity correction; the interval
  of the difference is Wald's for paired proportions;
- any other metric (AUC, R², RMSE, MAE, F1, log loss): the paired bootstrap, both
  models scored on the same resampled rows (``default_rng(seed).integers(0, n, (B, n))``);
  the percentile interval of the difference, and the two-sided p-value
  ``min(1, 2 min(P(d <= 0), P(d >= 0)))``.

The difference is signed so that a positive value favours the challenger (for a loss,
champion minus challenger). The challenger is promoted only when the difference is
positive with p < 0.05 (not worse, and better beyond chance) and at least
``min_improvement``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
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
    "GateDecision",
    "decide",
    "gate_models",
    "mcnemar",
    "paired_bootstrap",
]

#: Level of the paired tests (95 % intervals).
ALPHA = 0.05
#: McNemar's exact binomial test below this many discordant pairs, chi-square above.
EXACT_BELOW = 25
BOOTSTRAP_REPLICATES = 2000
#: Metrics where lower is better.
_LOSSES = frozenset({"rmse", "mae", "log_loss"})


@dataclass(frozen=True)
class GateDecision:
    """What the gate found.

    Attributes
    ----------
    metric : str
        The metric compared (the champion's optimized metric).
    champion, challenger : float
        Both scores on the gate rows.
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
        Two-sided.
    n_rows : int
        Gate rows scored.
    promote : bool
        The verdict.
    reason : str
        One sentence saying why.
    details : dict
        Test facts: McNemar's ``b`` and ``c``, the bootstrap's replicates and seed.
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

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as plain data."""
        return asdict(self)


def mcnemar(champion_right: np.ndarray, challenger_right: np.ndarray) -> dict[str, Any]:
    """McNemar's test of two classifiers' paired correctness.

    Returns ``b`` (champion right, challenger wrong), ``c`` (the reverse), the
    ``statistic`` ``(|b - c| - 1)^2 / (b + c)`` (0 without discordant pairs), the
    two-sided ``p_value`` (exact binomial when ``b + c < 25``) and the ``test`` used.
    """
    import numpy as np
    from scipy import stats

    first = np.asarray(champion_right, dtype=bool)
    second = np.asarray(challenger_right, dtype=bool)
    b = int((first & ~second).sum())
    c = int((~first & second).sum())
    n = b + c
    statistic = (abs(b - c) - 1) ** 2 / n if n else 0.0
    if n == 0:
        p_value, test = 1.0, "mcnemar_exact"
    elif n < EXACT_BELOW:
        p_value, test = float(stats.binomtest(min(b, c), n, 0.5).pvalue), "mcnemar_exact"
    else:
        p_value, test = float(stats.chi2.sf(statistic, 1)), "mcnemar_chi2"
    return {"b": b, "c": c, "statistic": float(statistic), "p_value": min(1.0, p_value),
            "test": test}  # fmt: skip


def _paired_interval(champion_right: np.ndarray, challenger_right: np.ndarray) -> tuple:
    """Wald's 95 % interval of the difference of two paired proportions."""
    import numpy as np
    from scipy import stats

    first = np.asarray(champion_right, dtype=float)
    second = np.asarray(challenger_right, dtype=float)
    n = len(first)
    difference = float(second.mean() - first.mean())
    b = float((first * (1 - second)).sum())
    c = float(((1 - first) * second).sum())
    spread = math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n
    z = float(stats.norm.ppf(1 - ALPHA / 2))
    return difference, difference - z * spread, difference + z * spread


def paired_bootstrap(
    metric: Any,
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
        of the replicates), ``p_value``, ``mean`` of the replicates, ``replicates``
        used (those where the metric is defined, e.g. AUC needs both classes).
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
    p_value = min(1.0, 2 * min(float(np.mean(gaps <= 0)), float(np.mean(gaps >= 0))))
    return {
        "difference": gap(np.arange(n)),
        "lower": float(np.percentile(gaps, 100 * ALPHA / 2)),
        "upper": float(np.percentile(gaps, 100 * (1 - ALPHA / 2))),
        "p_value": p_value,
        "mean": float(gaps.mean()),
        "replicates": len(gaps),
    }


def _rows(proba: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    return None if proba is None else proba[rows]


def decide(difference: float, p_value: float, min_improvement: float) -> tuple[bool, str]:
    """Return whether to promote, and why: better beyond chance, and by enough."""
    if difference <= 0:
        worse = p_value < ALPHA and difference < 0
        said = "worse than" if worse else "not better than"
        return False, f"the challenger is {said} the champion (p = {p_value:.3g})"
    if p_value >= ALPHA:
        return False, (
            f"the challenger's gain of {difference:.4g} could be chance (p = {p_value:.3g} "
            f">= {ALPHA:g})"
        )
    if difference < min_improvement:
        return False, (
            f"the challenger is better by {difference:.4g} (p = {p_value:.3g}), less than "
            f"--min-improvement {min_improvement:g}"
        )
    return True, f"the challenger is better by {difference:.4g} (p = {p_value:.3g})"


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
) -> GateDecision:
    """Score both models on the gate rows and decide.

    Raises
    ------
    DataError
        If fewer than ``min_rows`` gate rows can be scored (the message says how many
        it needs).
    ConfigError
        For a metric that does not apply to the models' task.
    """
    from titanicml.metrics import metric_for_task, score_all, score_one
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
    scores_first = score_all(first.task, first.y, first.prediction, first.proba)
    scores_second = score_all(second.task, second.y, second.prediction, second.proba)
    if metric == "accuracy":
        right_first = first.prediction == first.y
        right_second = second.prediction == second.y
        test = mcnemar(right_first, right_second)
        difference, lower, upper = _paired_interval(right_first, right_second)
        name, statistic, p_value = test["test"], test["statistic"], test["p_value"]
        details = {"b": test["b"], "c": test["c"]}
    else:

        def one(y: Any, prediction: Any, proba: Any) -> float:
            return score_one(first.task, metric, y, prediction, proba)

        boot = paired_bootstrap(one, first, second, replicates, seed, metric in _LOSSES)
        difference, lower, upper = boot["difference"], boot["lower"], boot["upper"]
        name, statistic, p_value = "paired_bootstrap", boot["mean"], boot["p_value"]
        details = {"replicates": boot["replicates"], "seed": seed}
    if not math.isfinite(difference):
        raise ConfigError(f"{metric} is not defined on the gate rows; choose another metric")
    promote, reason = decide(difference, p_value, min_improvement)
    details["unscored"] = first.unscored
    return GateDecision(
        metric=metric,
        champion=scores_first[metric],
        challenger=scores_second[metric],
        difference=float(difference),
        lower=float(lower),
        upper=float(upper),
        test=name,
        statistic=float(statistic),
        p_value=float(p_value),
        n_rows=n,
        promote=promote,
        reason=reason,
        details=details,
    )
