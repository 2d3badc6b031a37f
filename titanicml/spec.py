"""TrainSpec: everything a backend needs to know to run one AutoML search.

The Trainer builds it from its parameters; job files (``job create -f``) are read
into the same object, so a local run and an Azure ML job are described the same
way. Each field is a training option of :data:`titanicml.options.OPTIONS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from titanicml._utils.values import is_int, is_number
from titanicml.exceptions import ConfigError

__all__ = [
    "AUTO_CV_MAX_ROWS",
    "AUTO_CV_REPEATS",
    "AUTO_REPEATED_CV_MAX_ROWS",
    "DEFAULT_ESTIMATORS",
    "ESTIMATORS",
    "LEAKAGE_ACTIONS",
    "MAX_HOLDOUT",
    "NO_SKILL_ACTIONS",
    "TASKS",
    "TrainSpec",
]

TASKS = ("auto", "binary", "multiclass", "regression")
LEAKAGE_ACTIONS = ("drop", "warn", "error")
NO_SKILL_ACTIONS = ("error", "warn")
#: ``cv=None`` uses 5 folds up to this many training rows, 3 above.
AUTO_CV_MAX_ROWS = 10_000
#: ``cv_repeats=None`` repeats the folds :data:`AUTO_CV_REPEATS` times up to this many
#: training rows (where one pass of the folds scores a configuration noisily and
#: costs little), once above.
AUTO_REPEATED_CV_MAX_ROWS = 5_000
AUTO_CV_REPEATS = 2
#: The largest share of the rows ``holdout`` may set apart.
MAX_HOLDOUT = 0.5

#: Estimator families titanicml searches, by FLAML's learner name, with the
#: display name used in leaderboards and MLflow.
ESTIMATORS: dict[str, str] = {
    "lgbm": "LightGBM",
    "xgboost": "XGBoost",
    "xgb_limitdepth": "XGBoostLimitDepth",
    "rf": "RandomForest",
    "extra_tree": "ExtraTrees",
    "lrl1": "LogisticRegressionL1",
    "lrl2": "LogisticRegressionL2",
    "histgb": "HistGradientBoosting",
    "kneighbor": "KNeighbors",
    "lassolars": "LassoLars",
    "sgd": "SGD",
}
DEFAULT_ESTIMATORS = ("lgbm", "xgboost", "xgb_limitdepth", "rf", "extra_tree", "lrl1", "lassolars")
# FLAML's logistic regressions classify; LassoLars only regresses.
_CLASSIFICATION_ONLY = frozenset({"lrl1", "lrl2"})
_REGRESSION_ONLY = frozenset({"lassolars"})


@dataclass(frozen=True)
class TrainSpec:
    """A validated description of one training job.

    Parameters
    ----------
    target : str
        Column to predict.
    task : {"auto", "binary", "multiclass", "regression"}
        ``"auto"`` infers it from the target column.
    metric : str
        Metric to optimize (see :mod:`titanicml.metrics`) or ``"auto"``.
    time_budget : float
        Seconds for the whole fit, search and final refit included.
    cv : int or None
        Number of cross-validation folds (at least 2); ``None`` (the default) chooses
        by the number of training rows: 5 up to :data:`AUTO_CV_MAX_ROWS`, 3 above (a
        trial on a larger table costs more; fewer folds give the search more trials).
        Above 10,000 rows the local search scores its trials on a 10 % validation split
        of them (the ensemble is selected on it too); the out-of-fold output and the
        baseline use the folds.
    seed : int
        Random seed of the search and the folds.
    exclude : tuple of str
        Columns never used as features.
    estimators : tuple of str
        Estimator families to search (keys of :data:`ESTIMATORS`).
    max_trials : int, optional
        Stop after this many trials even if time is left.
    n_jobs : int
        Threads per fit; ``-1``: the cores idle when the search starts.
    ensemble : bool
        Try a weighted ensemble of the best families after the search.
    holdout : float
        Share of the rows set apart before the search (stratified for classifiers,
        seeded by ``seed``): never trained on, scored after it and shipped in the model
        (``titanicml/holdout.parquet``) as the frozen rows a retrained model is gated
        on. ``0`` (the default) sets none apart.
    on_no_skill : {"error", "warn"}
        What to do when the best model does not beat the trivial baseline (the
        majority class, or the mean) on the same folds.
    on_leakage : {"drop", "warn", "error"}
        What the data checks do with a column that leaks the target.
    cv_repeats : int or None
        How many times the folds are drawn, each time shuffled anew (scikit-learn's
        ``RepeatedStratifiedKFold``): every configuration is scored on ``cv x
        cv_repeats`` folds, and the out-of-fold output averages the repeats. ``None``
        (the default) chooses by the number of training rows: :data:`AUTO_CV_REPEATS`
        up to :data:`AUTO_REPEATED_CV_MAX_ROWS`, 1 above. A search scored on a
        validation split (above 10,000 rows) does not repeat it. Azure AutoML jobs do
        not repeat their folds.
    dropped : dict of str to str
        Columns the data checks removed, with the reason (filled in by the Trainer).
    """

    target: str
    task: str = "auto"
    metric: str = "auto"
    time_budget: float = 60.0
    cv: int | None = None
    seed: int = 0
    exclude: tuple[str, ...] = ()
    estimators: tuple[str, ...] = DEFAULT_ESTIMATORS
    max_trials: int | None = None
    n_jobs: int = -1
    ensemble: bool = True
    on_leakage: str = "drop"
    on_no_skill: str = "error"
    holdout: float = 0.0
    cv_repeats: int | None = None
    dropped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.target, str) or not self.target:
            raise ConfigError("target must be the name of a column, e.g. target='Survived'")
        if self.task not in TASKS:
            raise ConfigError(f"unknown task {self.task!r}; choose one of: {', '.join(TASKS)}")
        if not is_number(self.time_budget) or self.time_budget <= 0:
            raise ConfigError(
                f"time_budget must be a positive number of seconds, got {self.time_budget!r}"
            )
        if self.cv is not None and (not is_int(self.cv) or self.cv < 2):
            raise ConfigError(
                f"cv must be an integer number of folds of at least 2, or None (chosen by "
                f"the number of rows), got {self.cv!r}"
            )
        if self.cv_repeats is not None and (not is_int(self.cv_repeats) or self.cv_repeats < 1):
            raise ConfigError(
                f"cv_repeats must be a positive integer, or None (chosen by the number of "
                f"rows), got {self.cv_repeats!r}; e.g. cv_repeats=2"
            )
        if not is_int(self.seed):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")
        if self.max_trials is not None and (not is_int(self.max_trials) or self.max_trials < 2):
            raise ConfigError(
                f"max_trials must be an integer of at least 2, or None; got {self.max_trials!r}"
            )
        if not is_int(self.n_jobs) or not (self.n_jobs >= 1 or self.n_jobs == -1):
            raise ConfigError(
                f"n_jobs must be a positive integer or -1 (the idle cores), got {self.n_jobs!r}"
            )
        if not is_number(self.holdout) or not 0 <= self.holdout <= MAX_HOLDOUT:
            raise ConfigError(
                f"holdout must be a share of the rows from 0 to {MAX_HOLDOUT:g}, "
                f"got {self.holdout!r}; e.g. holdout=0.2"
            )
        if not isinstance(self.ensemble, bool):
            raise ConfigError(f"ensemble must be True or False, got {self.ensemble!r}")
        unknown = [e for e in self.estimators if e not in ESTIMATORS]
        if unknown or not self.estimators:
            raise ConfigError(
                f"unknown estimator(s) {unknown or '(none given)'}; "
                f"choose from: {', '.join(ESTIMATORS)}"
            )
        if self.on_no_skill not in NO_SKILL_ACTIONS:
            raise ConfigError(
                f"unknown on_no_skill {self.on_no_skill!r}; "
                f"choose one of: {', '.join(NO_SKILL_ACTIONS)}"
            )
        if self.on_leakage not in LEAKAGE_ACTIONS:
            raise ConfigError(
                f"unknown on_leakage {self.on_leakage!r}; "
                f"choose one of: {', '.join(LEAKAGE_ACTIONS)}"
            )
        if self.target in self.exclude:
            raise ConfigError(f"the target {self.target!r} cannot also be excluded")
        if self.metric != "auto" and self.task != "auto":
            from titanicml.metrics import metric_for_task

            metric_for_task(self.metric, self.task)

    @property
    def draws(self) -> int:
        """How many times the folds are drawn: ``cv_repeats``, 1 before it is chosen."""
        return self.cv_repeats or 1

    def with_folds(self, n_rows: int, repeated: bool = True) -> TrainSpec:
        """Return this spec with ``cv`` and ``cv_repeats`` chosen for ``n_rows`` rows when None.

        ``repeated=False`` (a backend that draws its folds once) chooses one draw.
        """
        cv = self.cv if self.cv is not None else 5 if n_rows <= AUTO_CV_MAX_ROWS else 3
        repeats = self.cv_repeats
        if repeats is None:
            small = repeated and n_rows <= AUTO_REPEATED_CV_MAX_ROWS
            repeats = AUTO_CV_REPEATS if small else 1
        return replace(self, cv=cv, cv_repeats=repeats)

    def estimators_for(self, task: str) -> list[str]:
        """Return the estimator families that apply to ``task``."""
        other_task = _CLASSIFICATION_ONLY if task == "regression" else _REGRESSION_ONLY
        return [e for e in self.estimators if e not in other_task]

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as plain data (for MLflow params and job files)."""
        data = asdict(self)
        data["exclude"] = list(self.exclude)
        data["estimators"] = list(self.estimators)
        data["dropped"] = sorted(self.dropped)
        return data
