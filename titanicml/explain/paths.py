"""Contributions of each featurized column, per estimator kind, in a stated output space.

==========================  ==========================  ===========================
estimator                   how                          output space
==========================  ==========================  ===========================
LightGBM                    booster ``pred_contrib``    margin (log-odds, logits)
XGBoost                     booster ``pred_contribs``   margin
random forest, extra trees  shap ``TreeExplainer``      probability (classifiers)
histogram gradient boosting shap ``TreeExplainer``      margin
linear (``coef_``)          ``coef * (x - mean)``       margin (decision function)
``WeightedEnsemble``        weighted sum of members     probability (classifiers)
``LogTargetRegressor``      its model's, through expm1  prediction
==========================  ==========================  ===========================

Regressors explain their prediction in every case. All of these are exact: the base
value plus the contributions is the estimator's own output for every row. Members
of an ensemble that explain a margin are carried to probabilities by integrating
the link's Jacobian along the straight line from the base margin to the row's
margin (closed form for binary, 32-point Gauss-Legendre for softmax): the sum stays
exact, the split between columns of that step is a convention, stated in
``docs/explain.md``. A model of ``log1p(y)`` is carried to the prediction the same way
(each column's share of the log-scale step, times the step's ``expm1`` change).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from titanicml.exceptions import ExtraNotInstalledError, ModelError

__all__ = ["Attribution", "attribute"]

MARGIN, PROBABILITY, PREDICTION = "margin", "probability", "prediction"
INSTALL_SHAP = 'pip install "titanicml[explain]"'
_TREE_MODULES = ("sklearn.ensemble._forest", "sklearn.tree._classes")
_QUADRATURE_NODES = 32
#: Trees deeper than this are explained against background rows (interventional TreeSHAP).
MAX_PATH_DEPTH = 32
BACKGROUND_ROWS = 100
#: The largest additivity error titanicml accepts from shap or a link conversion.
TOLERANCE = 1e-6


@dataclass
class Attribution:
    """Contributions of the featurized columns to one estimator's output.

    Attributes
    ----------
    values : ndarray of shape (rows, features, outputs)
        Contribution of each featurized column to each output.
    base : ndarray of shape (outputs,)
        The output before any contribution (the expected output).
    outputs : ndarray of shape (rows, outputs)
        The estimator's own output in ``space``, computed by its own predict method.
    space : {"margin", "probability", "prediction"}
        What is explained.
    method : str
        How, for a human.
    exact : bool
        Whether the split between columns is the estimator's exact Shapley values
        (TreeSHAP, linear); ``False`` when a link step was distributed (ensembles).
    """

    values: np.ndarray
    base: np.ndarray
    outputs: np.ndarray
    space: str
    method: str
    exact: bool = True

    @property
    def additivity_error(self) -> float:
        """Largest ``|base + sum of contributions - output|`` over rows and outputs."""
        total = self.base[None, :] + self.values.sum(axis=1)
        return float(np.max(np.abs(total - self.outputs))) if total.size else 0.0


def attribute(
    estimator: Any, matrix: np.ndarray, background: np.ndarray, n_classes: int | None
) -> Attribution:
    """Explain ``estimator`` on featurized rows.

    Parameters
    ----------
    estimator : fitted estimator
        The last step of a model's pipeline.
    matrix : ndarray
        Featurized rows to explain.
    background : ndarray
        Featurized rows whose mean is the reference of linear models.
    n_classes : int or None
        Number of classes; ``None`` for a regressor. A binary classifier explains
        its positive class only (one output), a multiclass one every class.

    Raises
    ------
    ModelError
        For an estimator titanicml cannot explain.
    """
    from titanicml.model.ensemble import WeightedEnsemble
    from titanicml.model.log_target import LogTargetRegressor

    if isinstance(estimator, WeightedEnsemble):
        return _ensemble(estimator, matrix, background, n_classes)
    if isinstance(estimator, LogTargetRegressor):
        return _log_target(estimator, matrix, background)
    module = type(estimator).__module__
    if module.startswith("lightgbm"):
        return _lightgbm(estimator, matrix, n_classes)
    if module.startswith("xgboost"):
        return _xgboost(estimator, matrix, n_classes)
    if module.startswith("catboost"):
        return _catboost(estimator, matrix, n_classes)
    if module in _TREE_MODULES or type(estimator).__name__.startswith("HistGradientBoosting"):
        return _shap_trees(estimator, matrix, background, n_classes)
    if hasattr(estimator, "coef_") and hasattr(estimator, "intercept_"):
        return _linear(estimator, matrix, background, n_classes)
    raise ModelError(
        f"titanicml cannot explain a {type(estimator).__name__}: explanations cover LightGBM, "
        "XGBoost, CatBoost, random forests, extra trees, histogram gradient boosting, linear "
        "models and their weighted ensembles; retrain without it (exclude=[...] or "
        "estimators=[...])"
    )


def _outputs(values: np.ndarray, n_classes: int | None) -> np.ndarray:
    """Shape per-class arrays (rows, [features,] k) to the explained outputs."""
    if n_classes == 2 and values.shape[-1] == 2:
        return values[..., 1:]
    return values


def _lightgbm(estimator: Any, matrix: np.ndarray, n_classes: int | None) -> Attribution:
    contributions = np.asarray(estimator.predict(matrix, pred_contrib=True), dtype=float)
    raw = np.asarray(estimator.predict(matrix, raw_score=True), dtype=float)
    n_features = matrix.shape[1]
    blocks = contributions.reshape(len(matrix), -1, n_features + 1)  # (rows, k, features + 1)
    values = np.transpose(blocks[:, :, :-1], (0, 2, 1))
    base = blocks[0, :, -1]
    space = PREDICTION if n_classes is None else MARGIN
    return Attribution(values, base, raw.reshape(len(matrix), -1), space, "LightGBM pred_contrib")


def _xgboost(estimator: Any, matrix: np.ndarray, n_classes: int | None) -> Attribution:
    import xgboost

    booster = estimator.get_booster()
    rounds = getattr(estimator, "best_iteration", None)
    window = (0, int(rounds) + 1) if rounds is not None else (0, 0)
    data = xgboost.DMatrix(matrix, missing=getattr(estimator, "missing", np.nan))
    contributions = np.asarray(
        booster.predict(data, pred_contribs=True, iteration_range=window), dtype=float
    )
    margin = np.asarray(
        booster.predict(data, output_margin=True, iteration_range=window), dtype=float
    )
    return _from_contributions(contributions, margin, n_classes, "XGBoost pred_contribs")


def _catboost(estimator: Any, matrix: np.ndarray, n_classes: int | None) -> Attribution:
    from catboost import Pool

    pool = Pool(matrix)
    contributions = np.asarray(estimator.get_feature_importance(pool, type="ShapValues"))
    margin = np.asarray(estimator.predict(pool, prediction_type="RawFormulaVal"), dtype=float)
    return _from_contributions(contributions, margin, n_classes, "CatBoost ShapValues")


def _from_contributions(
    contributions: np.ndarray, margin: np.ndarray, n_classes: int | None, method: str
) -> Attribution:
    """Build an attribution from a library's (rows, [outputs,] features + 1) contributions."""
    if contributions.ndim == 2:  # one output: (rows, features + 1)
        contributions = contributions[:, None, :]
    values = np.transpose(contributions[:, :, :-1], (0, 2, 1))
    base = contributions[0, :, -1]
    space = PREDICTION if n_classes is None else MARGIN
    return Attribution(values, base, margin.reshape(len(values), -1), space, method)


def _shap_trees(
    estimator: Any, matrix: np.ndarray, background: np.ndarray, n_classes: int | None
) -> Attribution:
    shap = _import_shap()
    if type(estimator).__module__ in _TREE_MODULES:
        # scikit-learn's trees compare float32 values with their thresholds: so does shap.
        matrix = matrix.astype(np.float32).astype(float)
        background = background.astype(np.float32).astype(float)
    if _depth(estimator) <= MAX_PATH_DEPTH:
        explainer, method = shap.TreeExplainer(estimator), "shap TreeExplainer"
    else:  # path-dependent TreeSHAP loses precision on very deep trees
        rows = np.random.default_rng(0).permutation(len(background))[:BACKGROUND_ROWS]
        explainer = shap.TreeExplainer(
            estimator, data=background[np.sort(rows)], feature_perturbation="interventional"
        )
        method = f"shap TreeExplainer, interventional on {len(rows)} background rows"
    values = np.asarray(explainer.shap_values(matrix, check_additivity=False), dtype=float)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))
    if values.ndim == 2:
        values = values[:, :, None]
    margin_model = type(estimator).__name__.startswith("HistGradientBoosting")
    if n_classes is None:
        space, outputs = PREDICTION, estimator.predict(matrix)
    elif margin_model:
        space, outputs = MARGIN, estimator.decision_function(matrix)
    else:
        space, outputs = PROBABILITY, estimator.predict_proba(matrix)
        values, base = _outputs(values, n_classes), _outputs(base, n_classes)
        outputs = _outputs(outputs, n_classes)
    outputs = np.asarray(outputs, dtype=float).reshape(len(matrix), -1)
    attribution = Attribution(values, base, outputs, space, method)
    if attribution.additivity_error > TOLERANCE:
        raise ModelError(
            f"shap's contributions for the {type(estimator).__name__} do not add up to its "
            f"output (off by {attribution.additivity_error:.2g}); titanicml refuses to show "
            "them: report it with the shap version"
        )
    return attribution


def _depth(estimator: Any) -> int:
    trees = getattr(estimator, "estimators_", [estimator])
    depths = [t.get_depth() for t in np.ravel(trees) if hasattr(t, "get_depth")]
    return max(depths, default=0)


def _linear(
    estimator: Any, matrix: np.ndarray, background: np.ndarray, n_classes: int | None
) -> Attribution:
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=float))  # (k, features)
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=float))
    mean = np.asarray(background, dtype=float).mean(axis=0)
    values = (matrix - mean)[:, :, None] * coef.T[None, :, :]
    base = coef @ mean + intercept
    if n_classes is None:
        space, outputs = PREDICTION, estimator.predict(matrix)
    else:
        space, outputs = MARGIN, estimator.decision_function(matrix)
    outputs = np.asarray(outputs, dtype=float).reshape(len(matrix), -1)
    return Attribution(values, base, outputs, space, "linear: coef * (x - mean)")


def _ensemble(
    ensemble: Any, matrix: np.ndarray, background: np.ndarray, n_classes: int | None
) -> Attribution:
    members = [attribute(m, matrix, background, n_classes) for m in ensemble.estimators_]
    if n_classes is not None:
        members = [
            _to_probability(a, m, matrix, n_classes)
            for a, m in zip(members, ensemble.estimators_, strict=True)
        ]
    weights = np.asarray(ensemble.weights, dtype=float)
    weights = weights / weights.sum()
    outputs = ensemble.predict(matrix) if n_classes is None else ensemble.predict_proba(matrix)
    outputs = np.asarray(outputs, dtype=float)
    outputs = (_outputs(outputs, n_classes) if n_classes else outputs).reshape(len(matrix), -1)
    methods = ", ".join(
        f"{name} {w:.0%} ({a.method})"
        for name, w, a in zip(ensemble.names, weights, members, strict=True)
    )
    return Attribution(
        values=np.tensordot(weights, np.stack([a.values for a in members]), axes=1),
        base=np.tensordot(weights, np.stack([a.base for a in members]), axes=1),
        outputs=outputs,
        space=PROBABILITY if n_classes is not None else PREDICTION,
        method=f"weighted sum of members: {methods}",
        exact=all(a.exact for a in members),
    )


def _log_target(estimator: Any, matrix: np.ndarray, background: np.ndarray) -> Attribution:
    """Carry the contributions to ``log1p(y)`` to the prediction, keeping their sum exact.

    Along the straight line from the base to the row's log-scale output, ``expm1`` has
    one direction: each column keeps its share of the step, times the step's change of
    the prediction (the slope ``(expm1(m) - expm1(m0)) / (m - m0)``, ``exp(m)`` at 0).
    """
    inner = attribute(estimator.regressor_, matrix, background, None)
    base, margin = inner.base[0], inner.base[0] + inner.values.sum(axis=1)[:, 0]
    step = margin - base
    small = np.abs(step) < 1e-9
    slope = np.where(
        small, np.exp(margin), (np.expm1(margin) - np.expm1(base)) / np.where(small, 1.0, step)
    )
    outputs = np.asarray(estimator.predict(matrix), dtype=float).reshape(len(matrix), -1)
    return Attribution(
        inner.values * slope[:, None, None],
        np.array([np.expm1(base)]),
        outputs,
        PREDICTION,
        f"{inner.method} of log1p(y), through expm1",
        False,
    )


def _to_probability(
    attribution: Attribution, estimator: Any, matrix: np.ndarray, n_classes: int
) -> Attribution:
    """Carry margin contributions to probabilities, keeping their sum exact."""
    if attribution.space == PROBABILITY:
        return attribution
    values, base = attribution.values, attribution.base
    margin = base[None, :] + values.sum(axis=1)
    if values.shape[2] == 1:  # binary: sigmoid, closed form
        step = margin[:, 0] - base[0]
        p, p0 = _sigmoid(margin[:, 0]), _sigmoid(base[0])
        small = np.abs(step) < 1e-9
        slope = np.where(small, p * (1 - p), (p - p0) / np.where(small, 1.0, step))
        new_values, new_base = values * slope[:, None, None], np.array([p0])
    else:  # softmax: the Jacobian averaged along the straight line in logit space
        nodes, weights = np.polynomial.legendre.leggauss(_QUADRATURE_NODES)
        nodes, weights = (nodes + 1) / 2, weights / 2
        jacobian = np.zeros((len(matrix), values.shape[2], values.shape[2]))
        for t, w in zip(nodes, weights, strict=True):
            p = _softmax(base[None, :] + t * (margin - base[None, :]))
            jacobian += w * (p[:, :, None] * np.eye(p.shape[1]) - p[:, :, None] * p[:, None, :])
        new_values = np.einsum("nkj,nfj->nfk", jacobian, values)
        new_base = _softmax(base[None, :])[0]
    outputs = _outputs(np.asarray(estimator.predict_proba(matrix), dtype=float), n_classes)
    converted = Attribution(
        new_values, new_base, outputs, PROBABILITY, f"{attribution.method}, to probability", False
    )
    if converted.additivity_error > TOLERANCE:
        raise ModelError(
            f"the {type(estimator).__name__} of the ensemble does not turn its margin into "
            "probabilities by a sigmoid or softmax; titanicml cannot explain the ensemble"
        )
    return converted


def _sigmoid(z: Any) -> Any:
    return 1.0 / (1.0 + np.exp(-z))


def _softmax(z: np.ndarray) -> np.ndarray:
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _import_shap() -> Any:
    try:
        import shap
    except ImportError as exc:
        raise ExtraNotInstalledError(
            f"explaining forests needs shap, an optional extra: {INSTALL_SHAP} ({exc})"
        ) from None
    return shap
