"""Targets a user sets on a model (``accuracy>=0.8``, ``dp_difference<=0.1``) and their verdicts.

A target is ``<metric><op><number>`` with ``op`` one of ``>=``, ``>``, ``<=``, ``<``;
the metric is any figure of the scorecard: a cross-validated metric (``accuracy``,
``roc_auc``, ``f1``, ``log_loss``, ``r2``, ``rmse``, ``mae``...) or a fairness figure
(``dp_difference``, ``dp_ratio``, ``eo_difference``, ``eo_ratio``).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from titanicml.exceptions import ConfigError

__all__ = [
    "FAIL",
    "FAIRNESS_FIGURES",
    "NOT_MEASURED",
    "PASS",
    "Target",
    "Verdict",
    "judge",
    "parse_target",
    "parse_targets",
]

PASS = "pass"
FAIL = "fail"
NOT_MEASURED = "not measured"
#: The scorecard's fairness figures: measured only with sensitive columns and labelled rows.
FAIRNESS_FIGURES = ("dp_difference", "dp_ratio", "eo_difference", "eo_ratio", "accuracy_difference")

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_TARGET = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|>|<)\s*([-+]?[0-9.]+(?:e[-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Target:
    """One target: ``metric op threshold``, e.g. ``accuracy >= 0.8``."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"

    def met_by(self, value: float) -> bool:
        """Whether ``value`` meets the target."""
        return bool(_OPERATORS[self.op](value, self.threshold))


@dataclass(frozen=True)
class Verdict:
    """A target judged against the model's figure: ``pass``, ``fail`` or ``not measured``."""

    target: Target
    value: float | None
    spread: float | None
    status: str


def parse_target(text: str) -> Target:
    """Parse ``accuracy>=0.8`` into a :class:`Target`.

    Raises
    ------
    ConfigError
        If the text is not ``<metric><op><number>`` with op ``>=``, ``>``, ``<=`` or ``<``.
    """
    match = _TARGET.match(text)
    if match is None:
        raise ConfigError(
            f"target {text!r} is not <metric><op><number>: write it like accuracy>=0.8 or "
            "dp_difference<=0.1 (op: >=, >, <=, <)"
        )
    metric, op, number = match.groups()
    try:
        threshold = float(number)
    except ValueError:
        raise ConfigError(f"target {text!r}: {number!r} is not a number") from None
    return Target(metric.lower(), op, threshold)


def parse_targets(texts: Iterable[str | Target]) -> list[Target]:
    """Parse several targets (already parsed ones are kept)."""
    return [t if isinstance(t, Target) else parse_target(t) for t in texts]


def judge(
    targets: Iterable[Target],
    figures: dict[str, float],
    spreads: dict[str, float] | None = None,
) -> list[Verdict]:
    """Judge every target against ``figures`` (metric name to value; NaN is not measured)."""
    spreads = spreads or {}
    verdicts = []
    for target in targets:
        value = figures.get(target.metric)
        if value is None or math.isnan(value):
            verdicts.append(Verdict(target, None, None, NOT_MEASURED))
            continue
        status = PASS if target.met_by(value) else FAIL
        verdicts.append(Verdict(target, float(value), spreads.get(target.metric), status))
    return verdicts
