"""Production data: every answer of an endpoint and every batch job, kept as Parquet.

The store lives in the workspace (``<workspace>/production/``) as two append-only
datasets, partitioned the Hive way so that ``pyarrow.dataset`` (or DuckDB, polars)
prunes what a query does not need::

    requests/endpoint=<E>/deployment=<D>/hour=<YYYY-MM-DDTHH>/part-*.parquet
    requests/endpoint=<E>/_settings/<D>.json   retention and sampling rate of <D>
    requests/endpoint=<E>/_schemas/*.arrow     every schema its files were written with
    labels/endpoint=<E>/part-*.parquet         ground truth (titanicml monitor labels)

:mod:`.writer` writes it off the request path (a background thread per process);
:mod:`.layout` names the places and writes files whole; :mod:`.records` turns
answers and batch chunks into rows; :mod:`.retention` removes whole old partitions.
The readers are in :mod:`titanicml.monitor`.
"""

from titanicml.capture.layout import CaptureSettings, production_dir
from titanicml.capture.writer import CaptureWriter

__all__ = ["CaptureSettings", "CaptureWriter", "production_dir"]
