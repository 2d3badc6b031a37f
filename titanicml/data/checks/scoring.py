"""Single-column models, cross-validated: the measurements the leakage check judges.

Numbers (and booleans, datetimes, durations) reach a shallow tree as ranks plus an
is-missing flag; text as its target encoding (scikit-learn's ``TargetEncoder``,
cross-fitted inside each training fold) plus the flag.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from titanicml._utils.sklearn_compat import target_encoder
from titanicml.data.columns import numeric_values

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from titanicml.data.columns import ColumnInfo

__all__ = ["ENCODING_SMOOTHING", "LEAK_FOLDS", "TREE_DEPTH", "ColumnScorer", "model_inputs"]

LEAK_FOLDS = 5
TREE_DEPTH = 4
# Target encoding of text columns: a category's mean is shrunk toward the overall mean as
# if it had this many more rows at the overall mean.
ENCODING_SMOOTHING = 10.0


@dataclass
class ColumnScorer:
    """The target of the leakage check, its folds, and how predictions are scored.

    Attributes
    ----------
    task : str
        ``"binary"``, ``"multiclass"`` or ``"regression"``.
    y : ndarray
        Class codes (``labels[code]`` is the class), or the values.
    labels : list
        The classes (empty for a regression).
    splits : list of (ndarray, ndarray)
        The seeded cross-validation folds: (train, test) row positions.
    seed : int
        Seed of the folds, the trees and the target encoders' inner folds.
    """

    task: str
    y: np.ndarray  # class codes, or float values
    labels: list
    splits: list[tuple[np.ndarray, np.ndarray]]
    seed: int

    @classmethod
    def build(cls, target: pd.Series, task: str, seed: int) -> ColumnScorer | None:
        """Encode the target and draw the folds; None if fewer than two classes."""
        import numpy as np
        import pandas as pd
        from sklearn.model_selection import KFold, StratifiedKFold

        if task == "regression":
            y, labels = target.to_numpy(dtype=float), []
            folds = KFold(LEAK_FOLDS, shuffle=True, random_state=seed)
        else:
            codes, uniques = pd.factorize(target, sort=False)
            if len(uniques) < 2:
                return None
            y, labels = codes.astype(np.int64), list(uniques)
            folds = StratifiedKFold(LEAK_FOLDS, shuffle=True, random_state=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class")
            splits = list(folds.split(np.zeros(len(y)), y))
        return cls(task, y, labels, splits, seed)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for a regression)."""
        return len(self.labels)

    @property
    def metric_name(self) -> str:
        """Name of the score, for messages: ``"CV ROC AUC"`` or ``"CV R²"``."""
        return {"binary": "CV ROC AUC", "multiclass": "CV ROC AUC (one-vs-rest, weighted)"}.get(
            self.task, "CV R²"
        )

    @property
    def chance(self) -> float:
        """The score of a column that knows nothing."""
        return 0.0 if self.task == "regression" else 0.5

    def score(self, predictions: np.ndarray) -> float:
        """CV ROC AUC, or R², of pooled out-of-fold predictions."""
        from sklearn.metrics import r2_score, roc_auc_score

        if self.task == "regression":
            return float(r2_score(self.y, predictions))
        if self.task == "binary":
            return float(roc_auc_score(self.y, predictions[:, 1]))
        return float(
            roc_auc_score(
                self.y,
                predictions,
                multi_class="ovr",
                average="weighted",
                labels=list(range(self.n_classes)),
            )
        )

    def error_reduction(self, predictions: np.ndarray) -> float:
        """Share of the most common class's errors that out-of-fold probabilities remove.

        1 is a perfect column, 0 one no better than always predicting the most common
        class (negative when worse). A row whose probabilities tie goes to the most
        common class, as the baseline does.
        """
        import numpy as np

        counts = np.bincount(self.y)
        majority = int(counts.argmax())
        baseline = 1.0 - counts[majority] / len(self.y)
        tied = predictions[:, majority] >= predictions.max(axis=1)
        predicted = np.where(tied, majority, predictions.argmax(axis=1))
        errors = float(np.mean(predicted != self.y))
        return 1.0 - errors / baseline

    def out_of_fold(self, features: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
        """Out-of-fold predictions of a shallow tree on one column's features."""
        import numpy as np
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        n = len(self.y)
        leaf = max(5, n // 100)
        regression = self.task == "regression"
        out = np.zeros(n) if regression else np.zeros((n, self.n_classes))
        for train, test in self.splits:
            if codes is not None:
                enc_train, enc_test = self.target_encode(codes, train, test)
                x_train = np.column_stack([enc_train, features[train]])
                x_test = np.column_stack([enc_test, features[test]])
            else:
                x_train, x_test = _impute(features, train, test)
            if regression:
                tree = DecisionTreeRegressor(
                    max_depth=TREE_DEPTH, min_samples_leaf=leaf, random_state=self.seed
                )
                out[test] = tree.fit(x_train, self.y[train]).predict(x_test)
            else:
                tree = DecisionTreeClassifier(
                    max_depth=TREE_DEPTH, min_samples_leaf=leaf, random_state=self.seed
                )
                tree.fit(x_train, self.y[train])
                out[np.ix_(test, tree.classes_)] = tree.predict_proba(x_test)
        return out

    def target_encode(
        self, codes: np.ndarray, train: np.ndarray, test: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed per-category target means: cross-fitted on ``train``, fitted on it for ``test``.

        scikit-learn's ``TargetEncoder``; its type follows the classes present in
        ``train`` (a rare class can miss a fold), a single class encodes as a constant.
        """
        import numpy as np

        y = self.y[train]
        task = self.task
        if task != "regression":
            present = len(np.unique(y))
            if present < 2:
                return np.zeros((len(train), 1)), np.zeros((len(test), 1))
            task = "binary" if present == 2 else "multiclass"
        encoder = target_encoder(task, self.seed, smooth=ENCODING_SMOOTHING)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class")
            encoded_train = encoder.fit_transform(codes[train, None], y)
        return encoded_train, encoder.transform(codes[test, None])

    def stacked_score(self, predictions: list[np.ndarray]) -> float:
        """CV score of a linear model on several columns' out-of-fold predictions.

        Classification: one logistic regression per class (one-vs-rest) on the columns'
        logits of that class; fast, and the same in every scikit-learn version.
        """
        import numpy as np
        from sklearn.linear_model import LogisticRegression, Ridge

        n = len(self.y)
        if self.task == "regression":
            x = np.column_stack(predictions)
            out = np.zeros(n)
            for train, test in self.splits:
                out[test] = Ridge(alpha=1.0).fit(x[train], self.y[train]).predict(x[test])
            return self.score(out)
        clipped = [np.clip(p, 1e-3, 1 - 1e-3) for p in predictions]
        logits = [np.log(p) - np.log1p(-p) for p in clipped]
        out = np.zeros((n, self.n_classes))
        for j in range(1 if self.task == "binary" else 0, self.n_classes):
            x = np.column_stack([logit[:, j] for logit in logits])
            y = (self.y == j).astype(int)
            for train, test in self.splits:
                if y[train].min() == y[train].max():
                    out[test, j] = y[train][0]
                    continue
                model = LogisticRegression(solver="newton-cholesky", max_iter=200)
                out[test, j] = model.fit(x[train], y[train]).predict_proba(x[test])[:, 1]
        if self.task == "binary":
            out[:, 0] = 1 - out[:, 1]
        else:
            out /= np.maximum(out.sum(axis=1, keepdims=True), 1e-12)
        return self.score(out)


def model_inputs(column: pd.Series, info: ColumnInfo) -> tuple[np.ndarray, np.ndarray | None]:
    """Turn a column into model inputs: values and a missing indicator, or category codes.

    Returns
    -------
    features : ndarray
        Numbers, booleans, datetimes and durations: (rank of the value, NaN if missing;
        is-missing) per row; text: is-missing per row.
    codes : ndarray or None
        Text: category codes (missing is its own category), for target encoding.
    """
    import numpy as np
    import pandas as pd

    missing = column.isna().to_numpy()
    if info.value_type == "text":
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        codes = np.where(codes < 0, len(uniques), codes)
        return missing[:, None].astype(float), codes
    # A tree only sees the order of the values: ranks keep it, and turn infinities and
    # values beyond float32 (which scikit-learn's trees use) into ordinary numbers.
    values = numeric_values(column)
    finite = np.isfinite(values)
    distinct, ranks = np.unique(values[finite], return_inverse=True)
    ranked = np.full(len(values), np.nan)
    ranked[finite] = ranks
    ranked[values == np.inf] = len(distinct)
    ranked[values == -np.inf] = -1
    return np.column_stack([ranked, missing]), None


def _impute(
    features: np.ndarray, train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing values with the training fold's median."""
    import numpy as np

    values = features[:, 0]
    present = values[train][~np.isnan(values[train])]
    median = float(np.median(present)) if len(present) else 0.0
    filled = np.column_stack([np.where(np.isnan(values), median, values), features[:, 1]])
    return filled[train], filled[test]
