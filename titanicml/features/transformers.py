"""Small scikit-learn transformers for the column kinds scikit-learn has no one-liner for.

They are pickled inside exported models, so they stay tiny and depend only on
numpy, pandas and scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.utils.validation import check_is_fitted

__all__ = ["DatetimeParts", "GroupSize", "TextTokens"]

# Words of two letters or more; numbers and punctuation are not tokens.
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"


class TextTokens(TransformerMixin, BaseEstimator):
    """Binary bag of the most frequent words of one free-text column.

    Parameters
    ----------
    max_tokens : int
        Keep at most this many words, the most frequent first.
    min_rows : int
        Keep a word only if it appears in at least this many rows.
    """

    def __init__(self, max_tokens: int = 40, min_rows: int = 10) -> None:
        self.max_tokens = max_tokens
        self.min_rows = min_rows

    def _texts(self, X: Any) -> list[str]:
        column = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else pd.Series(np.asarray(X)[:, 0])
        return column.fillna("").astype(str).tolist()

    def fit(self, X: Any, y: Any = None) -> TextTokens:
        """Learn the vocabulary."""
        self.vectorizer_ = CountVectorizer(
            binary=True,
            lowercase=True,
            token_pattern=TOKEN_PATTERN,
            max_features=self.max_tokens,
            min_df=1,
            dtype=np.float64,
        )
        texts = self._texts(X)
        counts = self.vectorizer_.fit_transform(texts)
        frequent = np.asarray(counts.sum(axis=0)).ravel() >= min(self.min_rows, len(texts))
        vocabulary = self.vectorizer_.get_feature_names_out()[frequent]
        self.vectorizer_ = CountVectorizer(
            binary=True,
            lowercase=True,
            token_pattern=TOKEN_PATTERN,
            vocabulary=list(vocabulary),
            dtype=np.float64,
        ).fit(texts)
        self.n_features_in_ = 1
        return self

    def transform(self, X: Any) -> np.ndarray:
        """One 0/1 column per kept word."""
        check_is_fitted(self, "vectorizer_")
        if not self.vectorizer_.vocabulary:
            return np.zeros((len(X), 0))
        return self.vectorizer_.transform(self._texts(X)).toarray()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``<column>_<word>``."""
        check_is_fitted(self, "vectorizer_")
        prefix = input_features[0] if input_features is not None else "text"
        words = self.vectorizer_.vocabulary or []
        return np.asarray([f"{prefix}_{w}" for w in words], dtype=object)


DATETIME_PARTS = ("year", "month", "day", "day_of_week", "day_of_year", "hour", "minute")


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Calendar parts of datetime columns (or text that parses as dates), NaN when missing.

    Parts that never vary in the training data (for example the hour of pure
    dates) are left out.
    """

    def fit(self, X: Any, y: Any = None) -> DatetimeParts:
        """Choose the parts that vary in the training data."""
        frame = self._dates(X)
        self.columns_ = list(frame.columns)
        self.parts_ = [
            (column, part)
            for column in self.columns_
            for part in DATETIME_PARTS
            if getattr(frame[column].dt, part).nunique(dropna=True) > 1
        ]
        self.n_features_in_ = len(self.columns_)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """One float column per (column, part)."""
        check_is_fitted(self, "parts_")
        frame = self._dates(X)
        if not self.parts_:
            return np.zeros((len(frame), 0))
        return np.column_stack(
            [
                getattr(frame.iloc[:, self.columns_.index(c)].dt, p).astype(float)
                for c, p in self.parts_
            ]
        )

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``<column>_<part>``."""
        check_is_fitted(self, "parts_")
        return np.asarray([f"{c}_{p}" for c, p in self.parts_], dtype=object)

    @staticmethod
    def _dates(X: Any) -> pd.DataFrame:
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))
        return frame.apply(lambda column: pd.to_datetime(column, errors="coerce", format="mixed"))


class GroupSize(TransformerMixin, BaseEstimator):
    """How many rows share each value of a key column (a ticket, an agent): the group's size.

    ``fit_transform`` gives each training row the number of training rows with its
    value (itself included); ``transform`` gives a new row that number plus one, the
    size of the group it joins. Missing values are a group of one. No target is used.
    """

    def fit(self, X: Any, y: Any = None) -> GroupSize:
        """Count the rows of each value, per column."""
        frame = pd.DataFrame(X)
        self.counts_ = [frame.iloc[:, i].value_counts(dropna=True) for i in range(frame.shape[1])]
        self.n_features_in_ = frame.shape[1]
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """Fit, and give each training row the size of its group (itself included)."""
        return self.fit(X)._sizes(X, joined=0.0)

    def transform(self, X: Any) -> np.ndarray:
        """Give each row the size of the group it joins (the training rows + itself)."""
        check_is_fitted(self, "counts_")
        return self._sizes(X, joined=1.0)

    def _sizes(self, X: Any, joined: float) -> np.ndarray:
        frame = pd.DataFrame(X)
        columns = []
        for i, counts in enumerate(self.counts_):
            values = frame.iloc[:, i]
            size = values.map(counts).astype(float).fillna(0.0).to_numpy() + joined
            columns.append(np.where(values.isna().to_numpy(), 1.0, size))
        return np.column_stack(columns) if columns else np.zeros((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """``<column>_group_size`` for each input column."""
        names = input_features if input_features is not None else range(self.n_features_in_)
        return np.asarray([f"{name}_group_size" for name in names], dtype=object)
