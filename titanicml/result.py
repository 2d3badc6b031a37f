"""TrainingResult: what a training returns, whichever backend ran it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.data.resolve import DataRef
    from titanicml.explain import Explanation
    from titanicml.fairness import FairnessReport
    from titanicml.model.predictor import TabularModel
    from titanicml.spec import TrainSpec

__all__ = ["BASELINE", "TrainingResult"]

#: The ``estimator`` of the leaderboard row of the trivial baseline (no trials, no model).
BASELINE = "baseline"


@dataclass
class TrainingResult:
    """What a training returns, whichever backend ran it.

    Attributes
    ----------
    model : TabularModel
        The best model, featurization included; predicts on raw rows.
    leaderboard : DataFrame
        One row per estimator family: CV mean and std of each metric, trials, fit time;
        plus the trivial baseline's row (``estimator`` ``"baseline"``, no trials). The
        local backend's ``validation`` column names what a row was scored on
        (``"5-fold cv"``, ``"5-fold cv x2"`` for folds drawn twice, or ``"10% split"``
        for a large table's search and its ensemble: std 0).
    metrics : dict
        Metrics of the best model, from its leaderboard row (``accuracy``,
        ``accuracy_std``, ...).
    task, metric : str
        The task trained for and the metric optimized.
    spec : TrainSpec
        The settings of the run.
    data : DataRef
        Where the data came from and its hash.
    features : DataFrame
        How each input column was used (the featurization plan).
    trials : DataFrame
        Every trial of the search.
    data_checks : DataFrame
        The data checks run before training: ``check``, ``column``, ``status``
        (passed / alerted / fixed) and ``message``.
    profile : dict
        Profile of the training features (:func:`titanicml.data.profile.profile_frame`),
        saved with the model as the reference for drift.
    run_id : str, optional
        The MLflow run, when tracking was on.
    extras : dict
        Backend facts: ``"ensemble"`` (the local backend's ensemble selection: the
        candidate families, the blend's weights and scores, whether it was chosen),
        ``"oof"`` (how :attr:`oof` was made, or why there is none),
        ``"search"`` (how the local search spent its budget, and its threads),
        ``"fitted_on"`` (what the model, or each member of an ensemble, was fitted on:
        ``"all rows"``, or ``"90% split"`` when a refit after a search on a validation
        split would have ended too late),
        ``"folds"`` (the folds used and whether titanicml chose them),
        ``"azure"`` (the Azure ML job: name, studio URL, ...).
    oof : DataFrame, optional
        Out-of-fold predictions of the selected model on the training rows, from the
        search's folds: ``label``, ``prediction``, ``probability_<class>``; saved as
        ``titanicml/oof.parquet`` (:func:`titanicml.model.layout.read_oof`).
    holdout : DataFrame, optional
        The rows set apart before the search (``holdout``), saved as
        ``titanicml/holdout.parquet`` (:func:`titanicml.model.layout.read_holdout`);
        ``extras["holdout"]`` holds the share, the row count and the model's scores.
    """

    model: TabularModel
    leaderboard: pd.DataFrame
    metrics: dict[str, float]
    task: str
    metric: str
    spec: TrainSpec
    data: DataRef
    features: pd.DataFrame
    trials: pd.DataFrame
    backend: str
    data_checks: pd.DataFrame | None = None
    profile: dict[str, Any] | None = None
    rows_dropped: int = 0
    elapsed: float = 0.0
    run_id: str | None = None
    tracking_uri: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    oof: pd.DataFrame | None = None
    holdout: pd.DataFrame | None = None

    @property
    def best_estimator(self) -> str:
        """Family of the best model, e.g. ``"lgbm"``."""
        return str(self.leaderboard.iloc[0]["estimator"])

    @property
    def best_score(self) -> float:
        """Cross-validated score of the best model on the optimized metric."""
        return self.metrics[self.metric]

    @property
    def classes(self) -> list | None:
        """Class labels, in the column order of :meth:`predict_proba`."""
        return self.model.labels

    def predict(self, X: Any) -> np.ndarray:
        """Predict labels (or values) for raw rows: a DataFrame, a dict or a list of dicts."""
        return self.model.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities for raw rows, columns in :attr:`classes` order.

        Raises
        ------
        AttributeError
            For a regression model, as scikit-learn's regressors do.
        """
        if not self.model.is_classifier:
            raise AttributeError(
                "predict_proba is for classifiers; this model is a regressor: use predict"
            )
        return self.model.predict_proba(X)

    def explain(self, X: Any, background: Any = None) -> Explanation:
        """Explain the model on raw rows: each input column's contribution, row by row.

        See :func:`titanicml.explain.explain_model` and ``docs/explain.md`` (what is
        exact, and in which output space).
        """
        from titanicml.explain import explain_model

        return explain_model(self.model, X, background=background)

    def fairness(self, data: Any, sensitive: Any = (), **options: Any) -> FairnessReport:
        """Assess fairness by group of ``sensitive`` columns on labelled rows.

        On the training table (``data``) the model's out-of-fold predictions are used
        (:attr:`oof`; the :attr:`holdout`'s rows left out); on other labelled rows, its own.
        ``options`` are those of
        :func:`titanicml.fairness.assess_fairness` (``bins``, ``mitigate``, ...).
        """
        from titanicml.fairness import assess_fairness

        options.setdefault("holdout", self.holdout)
        return assess_fairness(
            self.model, data, sensitive=sensitive, target=self.spec.target, oof=self.oof, **options
        )

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the model as an MLflow model directory (see :mod:`titanicml.model.layout`).

        Parameters
        ----------
        path : str or Path
            Directory to create; it must not exist unless ``overwrite``.
        overwrite : bool
            Replace an existing directory (atomically).
        """
        from titanicml.model.artifact import save_model
        from titanicml.model.layout import HOLDOUT_FILE, OOF_FILE

        frames = {} if self.oof is None else {OOF_FILE: self.oof}
        if self.holdout is not None:
            frames[HOLDOUT_FILE] = self.holdout

        return save_model(
            self.model,
            path,
            metadata=self.metadata(),
            tables=self.tables(),
            profile=self.profile,
            overwrite=overwrite,
            frames=frames,
        )

    def metadata(self) -> dict[str, Any]:
        """Facts about the training saved with the model (``titanicml/metadata.json``)."""
        return {
            "target": self.spec.target,
            "metric": self.metric,
            "metrics": self.metrics,
            "best_estimator": self.best_estimator,
            "run_id": self.run_id,
            "data": self.data.to_params(),
            "spec": self.spec.to_dict(),
            "oof": self.oof_facts(),
            **({"holdout": self.extras["holdout"]} if "holdout" in self.extras else {}),
            **({"folds": self.extras["folds"]} if "folds" in self.extras else {}),
        }

    def oof_facts(self) -> dict[str, Any]:
        """How :attr:`oof` was made (``source``), or why there is none (``reason``)."""
        if "oof" in self.extras:
            return self.extras["oof"]
        if self.oof is not None:
            return {"available": True}
        reason = f"the {self.backend} backend does not compute out-of-fold predictions"
        return {"available": False, "reason": reason}

    def tables(self) -> dict[str, pd.DataFrame]:
        """Return the tables saved with the model and the run (leaderboard, features, checks)."""
        tables = {"leaderboard": self.leaderboard, "features": self.features}
        if self.data_checks is not None:
            tables["data_checks"] = self.data_checks
        return tables
