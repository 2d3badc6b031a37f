"""The Backend contract: every backend submits, waits for, and returns a search.

A backend turns a :class:`~titanicml.spec.TrainSpec` and training data into a
:class:`~titanicml.trainer.TrainingResult`. The local backend runs FLAML in
this process; the Azure backend submits an Azure ML job. Both return the same
result type and the same model artifact.
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.data.resolve import DataRef
    from titanicml.result import TrainingResult
    from titanicml.spec import TrainSpec

__all__ = ["Backend", "Job", "JobStatus", "Progress", "ProgressCallback"]


class JobStatus(enum.StrEnum):
    """Life cycle of a job, with Azure ML's status names."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)


@dataclass(frozen=True)
class Progress:
    """One progress report of a running search.

    Attributes
    ----------
    trials : int
        Trials finished so far.
    best_score : float or None
        Best cross-validated score so far, in the metric's own direction.
    elapsed, budget : float
        Seconds spent and allowed.
    estimator : str
        Family of the last trial.
    """

    trials: int
    best_score: float | None
    elapsed: float
    budget: float
    estimator: str = ""

    @property
    def remaining(self) -> float:
        """Seconds left in the budget."""
        return max(0.0, self.budget - self.elapsed)


ProgressCallback = Callable[[Progress], None]


@dataclass
class Job:
    """A submitted search.

    Attributes
    ----------
    id : str
        Backend-specific identifier (an Azure ML job name, or a local uuid).
    backend : str
        Name of the backend that runs it.
    spec : TrainSpec
        What to run.
    data : DataRef
        On what data.
    status : JobStatus
        Last known status.
    frame : DataFrame, optional
        The training table, for backends that run in this process.
    on_progress : callable, optional
        Called with a :class:`Progress` while the job runs.
    state : dict
        Backend-private bookkeeping.
    """

    spec: TrainSpec
    data: DataRef
    backend: str
    frame: pd.DataFrame | None = field(default=None, repr=False)
    on_progress: ProgressCallback | None = field(default=None, repr=False)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    status: JobStatus = JobStatus.QUEUED
    submitted_at: float = field(default_factory=time.time)
    deadline: float | None = None
    state: dict[str, Any] = field(default_factory=dict, repr=False)


@runtime_checkable
class Backend(Protocol):
    """What every training backend implements (local FLAML, Azure ML, plug-ins).

    :mod:`titanicml.backends.testing` checks a backend against this contract. A backend
    that draws its folds ``spec.cv_repeats`` times says so with a class attribute
    ``repeats_folds = True``; for any other the Trainer chooses one draw and refuses
    ``cv_repeats`` above 1.
    """

    name: ClassVar[str]

    def submit(
        self,
        spec: TrainSpec,
        data: DataRef,
        frame: pd.DataFrame | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> Job:
        """Start a search and return its job, ``QUEUED`` or ``RUNNING``, without waiting for it.

        ``deadline`` is the ``time.monotonic()`` instant by which the whole fit,
        final refit included, must be done; backends keep to it as well as they can.
        ``on_progress`` may be called from any thread while the job runs. A backend
        that featurizes as the local one may also take a keyword ``columns`` (the data
        checks' :class:`~titanicml.data.columns.ColumnInfo` by name, to reuse), and
        ``final_seconds`` (what the Trainer will spend after the job and before
        ``deadline``: a tracked run's logging and report): the Trainer passes each only
        to a ``submit`` that names it.
        """
        ...

    def wait(self, job: Job, timeout: float | None = None) -> JobStatus:
        """Block until the job ends, or ``timeout`` seconds pass; return its status.

        A job that failed returns ``FAILED`` (:meth:`result` raises its error);
        ``wait`` raises only what ``on_progress`` raised. After ``timeout`` it
        returns the job's current, non-terminal status, and may be called again.
        On Ctrl-C it cancels the job and propagates ``KeyboardInterrupt``.
        """
        ...

    def result(self, job: Job) -> TrainingResult:
        """Return the leaderboard, metrics and fitted model of a completed job.

        Raises
        ------
        TitanicMLError
            For a ``FAILED`` job: an error whose message says why it failed.
        TrainingError
            For a job that has not completed.
        """
        ...

    def cancel(self, job: Job) -> None:
        """Ask the job to stop, from any thread; :meth:`wait` then soon returns ``CANCELED``.

        Cancelling a job that has ended does nothing.
        """
        ...
