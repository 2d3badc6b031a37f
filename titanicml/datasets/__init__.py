"""Data sets shipped inside the package, usable without a network.

``load_titanic()`` returns the 1,309-passenger Titanic list (see
``titanicml/datasets/README.md`` for its provenance). Its ``Boat`` and ``Body``
columns leak the target on purpose, for the data checks to find.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TITANIC_TARGET", "load_titanic", "titanic_path"]

TITANIC_TARGET = "Survived"


def titanic_path() -> Path:
    """Return the path of the embedded ``titanic.csv``."""
    return Path(str(resources.files(__package__) / "titanic.csv"))


def load_titanic() -> pd.DataFrame:
    """Load the embedded Titanic data.

    Returns
    -------
    pandas.DataFrame
        1,309 rows; the target is ``Survived`` (1 survived, 0 died).
    """
    import pandas as pd

    return pd.read_csv(titanic_path())
