"""The conformance suite of the :class:`~titanicml.backends.Backend` contract.

Shipped with the package for the authors of backends, as scikit-learn ships
``parametrize_with_checks``: describe the backend in a :class:`BackendHarness`
(how to make it, and the jobs to run), then let pytest run every check::

    from titanicml.backends.testing import BackendHarness, parametrize_with_checks

    HARNESS = BackendHarness(name="mycloud", make_backend=MyCloudBackend)

    @parametrize_with_checks([HARNESS])
    def test_backend_conformance(harness, check):
        check(harness)

Each check is a plain function of a harness that raises ``AssertionError`` when
the backend breaks the contract (and ``unittest.SkipTest`` when the harness says
a check does not apply); :func:`check_backend` runs them all without pytest. The
checks train for real on small data with budgets of a few seconds.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import threading
import time
import unittest
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from titanicml.backends.base import Backend, Job, JobStatus, Progress
from titanicml.exceptions import TitanicMLError, TrainingError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.data.resolve import DataRef
    from titanicml.result import TrainingResult
    from titanicml.spec import TrainSpec

__all__ = [
    "LONG_JOB",
    "SHORT_JOB",
    "BackendHarness",
    "backend_checks",
    "check_backend",
    "check_cancel_before_wait",
    "check_cancel_during_wait",
    "check_deadline",
    "check_failing_job",
    "check_protocol",
    "check_saved_artifact",
    "check_submit_wait_result",
    "check_wait_timeout",
    "parametrize_with_checks",
    "target_only",
    "titanic_frame",
]

#: Options of the short job: a few seconds on the Titanic data, without leaking columns.
SHORT_JOB: Mapping[str, Any] = MappingProxyType(
    {
        "target": "Survived",
        "time_budget": 3.0,
        "cv": 3,
        "exclude": ("Boat", "Body"),
        "ensemble": False,
    }
)
#: Changes to the short job that make it run far longer than the checks wait for it.
LONG_JOB: Mapping[str, Any] = MappingProxyType({"time_budget": 60.0})

_KINDS = ("short", "long", "failing")
_LEADERBOARD_START = ("estimator", "family", "selected")
_LEADERBOARD_COLUMNS = {"n_trials", "fit_time", "trial", "config"}
_FEATURE_COLUMNS = ["name", "kind", "dtype", "reason"]
_ARTIFACT_FILES = {
    "MLmodel",
    "MANIFEST.json",
    "score.py",
    "titanicml/metadata.json",
    "titanicml/leaderboard.csv",
    "titanicml/features.csv",
}


def titanic_frame() -> pd.DataFrame:
    """Return the Titanic data shipped with titanicml (the default training table)."""
    from titanicml.datasets import load_titanic

    return load_titanic()


def target_only(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Keep only the target column: a table no search can learn from (the failing job)."""
    return frame[[target]]


@dataclass(frozen=True)
class BackendHarness:
    """How the checks make a backend and the jobs they run on it.

    Three jobs are run. The *short* job completes in a few seconds, and takes
    longer than ``wait_timeout``. The *long* job would run far longer than the
    checks wait (they cancel it, or give it a near deadline). The *failing* job
    fails while it runs (its ``submit`` succeeds).

    Parameters
    ----------
    name : str
        The backend's name: ``Backend.name``, ``Job.backend`` and ``TrainingResult.backend``.
    make_backend : callable
        Returns a new backend, which runs the short job.
    options : mapping
        :class:`~titanicml.spec.TrainSpec` options of the short job (``target`` included).
    long_options : mapping
        Options changed from ``options`` for the long job.
    make_long_backend, make_failing_backend : callable, optional
        The backends that run the long and the failing job (default ``make_backend``);
        a fake cloud client can be scripted to run long, or to fail.
    make_frame : callable
        Returns the training table.
    failing_frame : callable, optional
        Turns the table and the target into the failing job's table (default: the
        target column alone); ``None`` trains it on the table as it is.
    failure_match : str
        Regular expression that the failing job's error message must match.
    wait_timeout : float
        The timeout of the ``wait(timeout)`` check, in seconds.
    slack : float
        Seconds allowed after a timeout, a cancel or a deadline before the job ends.
    deadline_in : float or None
        Seconds ahead of the deadline check's deadline; ``None`` skips that check,
        for a backend that cannot end a job so soon (give the reason in ``skip_deadline``).
    skip_deadline : str
        Why the deadline check is skipped.
    job_timeout : float
        Seconds after which a check gives up on a job that should have ended.
    """

    name: str
    make_backend: Callable[[], Backend]
    options: Mapping[str, Any] = field(default_factory=lambda: SHORT_JOB)
    long_options: Mapping[str, Any] = field(default_factory=lambda: LONG_JOB)
    make_long_backend: Callable[[], Backend] | None = None
    make_failing_backend: Callable[[], Backend] | None = None
    make_frame: Callable[[], pd.DataFrame] = titanic_frame
    failing_frame: Callable[[pd.DataFrame, str], pd.DataFrame] | None = target_only
    failure_match: str = r"column|feature"
    wait_timeout: float = 0.5
    slack: float = 5.0
    deadline_in: float | None = 3.0
    skip_deadline: str = ""
    job_timeout: float = 120.0

    def backend(self, kind: str = "short") -> Backend:
        """Return a new backend for the ``"short"``, ``"long"`` or ``"failing"`` job."""
        make = {
            "short": self.make_backend,
            "long": self.make_long_backend or self.make_backend,
            "failing": self.make_failing_backend or self.make_backend,
        }[_kind(kind)]
        return make()

    def spec(self, kind: str = "short") -> TrainSpec:
        """Return the spec of a job."""
        from titanicml.spec import TrainSpec

        options = dict(self.options)
        if _kind(kind) == "long":
            options.update(self.long_options)
        return TrainSpec(**options)

    def data(self, kind: str = "short") -> tuple[pd.DataFrame, DataRef]:
        """Return the training table of a job and its reference."""
        from titanicml.data.resolve import resolve_data

        frame = self.make_frame()
        if _kind(kind) == "failing" and self.failing_frame is not None:
            frame = self.failing_frame(frame, self.options["target"])
        return resolve_data(frame)

    def submit(
        self,
        kind: str = "short",
        on_progress: Callable[[Progress], None] | None = None,
        deadline: float | None = None,
    ) -> tuple[Backend, Job]:
        """Make the backend of a job and submit the job to it."""
        backend = self.backend(kind)
        frame, ref = self.data(kind)
        job = backend.submit(
            self.spec(kind), ref, frame, on_progress=on_progress, deadline=deadline
        )
        return backend, job


#: A check of the suite: a function of a harness that raises AssertionError.
Check = Callable[[BackendHarness], None]


def _kind(kind: str) -> str:
    if kind not in _KINDS:
        raise ValueError(f"unknown job kind {kind!r}; choose one of: {', '.join(_KINDS)}")
    return kind


# -- the checks ---------------------------------------------------------------------------


def check_protocol(harness: BackendHarness) -> None:
    """Check that the backend has the protocol's name, methods and signatures."""
    backend = harness.make_backend()
    assert isinstance(backend, Backend), (
        f"{type(backend).__name__} lacks one of name, submit, wait, result, cancel"
    )
    assert backend.name == harness.name, f"backend.name is {backend.name!r}, not {harness.name!r}"
    calls = {
        "submit": ((None, None), {"frame": None, "on_progress": None, "deadline": None}),
        "wait": ((None,), {"timeout": None}),
        "result": ((None,), {}),
        "cancel": ((None,), {}),
    }
    for method, (args, kwargs) in calls.items():
        try:
            inspect.signature(getattr(backend, method)).bind(*args, **kwargs)
        except TypeError as exc:
            raise AssertionError(
                f"{method}() does not take the protocol's arguments: {exc}"
            ) from None


def check_submit_wait_result(harness: BackendHarness) -> None:
    """Check that a short job reports progress, ends ``COMPLETED`` and gives a full result."""
    reports: list[Progress] = []
    backend, job = harness.submit("short", on_progress=reports.append)
    assert job.backend == harness.name, f"job.backend is {job.backend!r}"
    assert job.status in (JobStatus.QUEUED, JobStatus.RUNNING), (
        f"a job just submitted is {job.status.value}, not Queued or Running"
    )
    if not job.status.is_terminal:
        _assert_raises(TrainingError, backend.result, job, what="result() of a job not completed")
    status, _ = _wait(harness, backend, job)
    assert status is JobStatus.COMPLETED, f"the short job ended {status.value}"
    assert backend.wait(job) is JobStatus.COMPLETED, "wait() on an ended job changed its status"
    assert reports, "no progress was reported while the job ran"
    assert all(isinstance(r, Progress) for r in reports), "on_progress got something not a Progress"
    frame, ref = harness.data("short")
    _check_result(harness, backend.result(job), frame, ref, harness.spec("short"))


def check_saved_artifact(harness: BackendHarness) -> None:
    """Check that the result saves a model directory that reloads and serves alike."""
    import tempfile
    from pathlib import Path

    import mlflow.pyfunc

    from titanicml.registry import load_model

    backend, job = harness.submit("short")
    status, _ = _wait(harness, backend, job)
    assert status is JobStatus.COMPLETED, f"the short job ended {status.value}"
    result = backend.result(job)
    frame, _ = harness.data("short")
    rows = _probe_rows(frame, harness.options["target"])
    with tempfile.TemporaryDirectory(prefix="titanicml-conformance-") as tmp:
        saved = result.save(Path(tmp) / "model")
        files = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()}
        missing = _ARTIFACT_FILES - files
        assert not missing, f"the saved model lacks {sorted(missing)}"
        meta = json.loads((saved / "titanicml" / "metadata.json").read_text())
        assert meta["target"] == harness.options["target"], f"metadata target is {meta['target']!r}"
        assert meta["metric"] == result.metric and meta["best_estimator"] == result.best_estimator
        reloaded = load_model(saved)
        served = mlflow.pyfunc.load_model(str(saved)).predict(rows)
    expected = result.predict(rows)
    assert list(reloaded.predict(rows)) == list(expected), "the reloaded model predicts otherwise"
    assert list(served["prediction"]) == list(expected), "the MLflow pyfunc predicts otherwise"
    if result.model.is_classifier:
        _assert_close(reloaded.predict_proba(rows), result.predict_proba(rows), "probabilities")


def check_cancel_before_wait(harness: BackendHarness) -> None:
    """Check that a job cancelled right after ``submit`` ends ``CANCELED``, with no result."""
    backend, job = harness.submit("short")
    backend.cancel(job)
    status, _ = _wait(harness, backend, job)
    assert status is JobStatus.CANCELED, f"a job cancelled before wait() ended {status.value}"
    _assert_raises(TrainingError, backend.result, job, match=r"(?i)cancel", what="result()")


def check_cancel_during_wait(harness: BackendHarness) -> None:
    """Check that ``cancel`` from another thread makes a running ``wait`` return ``CANCELED``."""
    running = threading.Event()
    backend, job = harness.submit("long", on_progress=lambda report: running.set())
    waiter = _Waiter(backend, job)
    assert running.wait(harness.job_timeout), (
        f"the long job reported no progress within {harness.job_timeout:g} s"
    )
    assert waiter.is_waiting(), (
        f"wait() returned {waiter.status} before the long job was cancelled; make it longer"
    )
    cancelled_at = time.monotonic()
    backend.cancel(job)
    status, returned_at = waiter.join(harness.slack, after="cancel()")
    assert status is JobStatus.CANCELED, f"wait() returned {status.value} after cancel()"
    assert returned_at >= cancelled_at, "wait() returned before cancel() was called"
    _assert_raises(TrainingError, backend.result, job, match=r"(?i)cancel", what="result()")


def check_wait_timeout(harness: BackendHarness) -> None:
    """Check that ``wait(timeout)`` returns in time, the job running; a later ``wait`` ends it."""
    backend, job = harness.submit("short")
    timeout = harness.wait_timeout
    started = time.monotonic()
    status, returned_at = _wait(
        harness, backend, job, timeout=timeout, within=timeout + harness.slack
    )
    waited = returned_at - started
    assert not status.is_terminal, (
        f"the short job ended {status.value} within wait(timeout={timeout:g}); "
        "it must take longer than wait_timeout"
    )
    assert waited >= 0.8 * timeout, f"wait(timeout={timeout:g}) returned after {waited:.2f} s"
    status, _ = _wait(harness, backend, job)
    assert status is JobStatus.COMPLETED, f"the job ended {status.value} after wait(timeout)"
    assert backend.result(job).backend == harness.name


def check_deadline(harness: BackendHarness) -> None:
    """Check that a long job given a near ``deadline`` ends by it, plus ``slack``."""
    reason = _skip_reason(harness, check_deadline)
    if reason:
        raise unittest.SkipTest(reason)
    deadline = time.monotonic() + harness.deadline_in
    backend, job = harness.submit("long", deadline=deadline)
    status, returned_at = _wait(harness, backend, job, within=harness.deadline_in + harness.slack)
    late = returned_at - deadline
    assert late <= harness.slack, f"the job ended {late:.1f} s after its deadline"
    assert status in (JobStatus.COMPLETED, JobStatus.CANCELED), f"the job ended {status.value}"
    if status is JobStatus.COMPLETED:
        assert backend.result(job).backend == harness.name


def check_failing_job(harness: BackendHarness) -> None:
    """Check that a failing job ends ``FAILED`` and ``result`` raises an error saying why."""
    backend, job = harness.submit("failing")
    waiter = _Waiter(backend, job)
    status, _ = waiter.join(harness.job_timeout, reraise=False)
    assert waiter.error is None, f"wait() raised {waiter.error!r} instead of returning Failed"
    assert status is JobStatus.FAILED, f"the failing job ended {status.value}"
    assert backend.wait(job) is JobStatus.FAILED, "wait() on a failed job changed its status"
    for _ in range(2):  # and again: the error is kept
        _assert_raises(
            TitanicMLError, backend.result, job, match=harness.failure_match, what="result()"
        )


_CHECKS: tuple[Check, ...] = (
    check_protocol,
    check_submit_wait_result,
    check_saved_artifact,
    check_cancel_before_wait,
    check_cancel_during_wait,
    check_wait_timeout,
    check_deadline,
    check_failing_job,
)


def backend_checks() -> list[Check]:
    """Return every check of the suite, each a function of a :class:`BackendHarness`."""
    return list(_CHECKS)


def parametrize_with_checks(harnesses: Sequence[BackendHarness]) -> Any:
    """Return a ``pytest.mark.parametrize`` of ``(harness, check)`` over every check.

    The test ids read ``<harness name>-<check name>``.
    """
    import pytest

    params = []
    for harness in harnesses:
        for check in backend_checks():
            reason = _skip_reason(harness, check)
            params.append(
                pytest.param(
                    harness,
                    check,
                    id=f"{harness.name}-{check.__name__.removeprefix('check_')}",
                    marks=[pytest.mark.skip(reason=reason)] if reason else [],
                )
            )
    return pytest.mark.parametrize(("harness", "check"), params)


def check_backend(harness: BackendHarness) -> list[str]:
    """Run every check; return the names of those skipped (the first failure raises)."""
    skipped = []
    for check in backend_checks():
        try:
            check(harness)
        except unittest.SkipTest:
            skipped.append(check.__name__)
    return skipped


# -- helpers ------------------------------------------------------------------------------


def _skip_reason(harness: BackendHarness, check: Check) -> str | None:
    """Why the harness says ``check`` does not apply, or None."""
    if check is check_deadline and harness.deadline_in is None:
        return harness.skip_deadline or f"the {harness.name} backend keeps no short deadline"
    return None


class _Waiter:
    """``backend.wait(job, timeout)`` in a thread of its own, so a hung wait fails a check."""

    def __init__(self, backend: Backend, job: Job, timeout: float | None = None) -> None:
        self.status: JobStatus | None = None
        self.returned_at = math.inf
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(backend, job, timeout), name="conformance-wait", daemon=True
        )
        self._thread.start()

    def _run(self, backend: Backend, job: Job, timeout: float | None) -> None:
        try:
            self.status = backend.wait(job, timeout=timeout)
        except BaseException as exc:  # handed to the check's thread
            self.error = exc
        self.returned_at = time.monotonic()

    def is_waiting(self) -> bool:
        """Whether ``wait`` has not returned yet."""
        return self._thread.is_alive()

    def join(
        self, within: float, after: str = "it was called", reraise: bool = True
    ) -> tuple[JobStatus | None, float]:
        """Return the status and the instant ``wait`` returned; fail if it takes over ``within`` s.

        What ``wait`` raised is raised again, unless not ``reraise`` (then the status is None).
        """
        self._thread.join(within)
        if self._thread.is_alive():
            raise AssertionError(f"wait() did not return within {within:.1f} s after {after}")
        if self.error is not None:
            if reraise:
                raise self.error
            return None, self.returned_at
        assert isinstance(self.status, JobStatus), f"wait() returned {self.status!r}"
        return self.status, self.returned_at


def _wait(
    harness: BackendHarness,
    backend: Backend,
    job: Job,
    timeout: float | None = None,
    within: float | None = None,
) -> tuple[JobStatus, float]:
    status, returned_at = _Waiter(backend, job, timeout).join(
        harness.job_timeout if within is None else within
    )
    assert status is not None
    return status, returned_at


def _assert_raises(
    expected: type[BaseException],
    call: Callable[..., Any],
    *args: Any,
    match: str | None = None,
    what: str = "the call",
) -> BaseException:
    try:
        call(*args)
    except expected as exc:
        if match is not None and not re.search(match, str(exc)):
            raise AssertionError(f"{what} raised {exc!r}, which does not match {match!r}") from exc
        return exc
    except BaseException as exc:
        raise AssertionError(f"{what} raised {exc!r}, not a {expected.__name__}") from exc
    raise AssertionError(f"{what} did not raise {expected.__name__}")


def _assert_close(actual: Any, expected: Any, what: str) -> None:
    import numpy as np

    assert np.allclose(np.asarray(actual), np.asarray(expected)), f"the {what} differ"


def _probe_rows(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Return a few raw rows, as a caller would send them to the model."""
    return frame.drop(columns=[target]).head(5).reset_index(drop=True)


def _check_result(
    harness: BackendHarness,
    result: TrainingResult,
    frame: pd.DataFrame,
    ref: DataRef,
    spec: TrainSpec,
) -> None:
    """Everything the Trainer, MLflow tracking and the model registry read from a result."""
    import numpy as np

    from titanicml.data.target import prepare_target
    from titanicml.metrics import METRICS, metric_for_task

    target = prepare_target(frame, spec.target, spec.task)
    metric = metric_for_task(spec.metric, target.task).name
    assert result.backend == harness.name, f"result.backend is {result.backend!r}"
    assert result.data.sha256 == ref.sha256, "result.data is not the data submitted"
    assert result.task == target.task and result.metric == metric, (
        f"task/metric are {result.task}/{result.metric}, not {target.task}/{metric}"
    )
    if target.task != "regression":
        assert list(result.classes) == list(target.classes), f"classes are {result.classes}"

    board = result.leaderboard
    start = [*_LEADERBOARD_START, f"cv_{metric}", f"cv_{metric}_std"]
    assert list(board.columns[:5]) == start, f"the leaderboard starts {list(board.columns[:5])}"
    missing = _LEADERBOARD_COLUMNS - set(board.columns)
    assert not missing, f"the leaderboard lacks {sorted(missing)}"
    assert len(board) >= 1 and bool(board["selected"].iloc[0]), "the first row is not selected"
    assert int(board["selected"].sum()) == 1, "more than one leaderboard row is selected"
    for config in board["config"]:
        assert isinstance(json.loads(config), dict), f"config {config!r} is not a JSON object"

    names = {name for name, m in METRICS.items() if target.task in m.tasks}
    assert names <= set(result.metrics), f"metrics lack {sorted(names - set(result.metrics))}"
    best = float(board[f"cv_{metric}"].iloc[0])
    assert math.isclose(result.best_score, best) and result.best_score == result.metrics[metric]
    assert result.best_estimator == str(board["estimator"].iloc[0])

    features = result.features
    assert list(features.columns) == _FEATURE_COLUMNS, f"features are {list(features.columns)}"
    dropped = set(features.loc[features["kind"] == "dropped", "name"])
    assert set(spec.exclude) <= dropped, (
        f"excluded columns not dropped: {set(spec.exclude) - dropped}"
    )

    rows = _probe_rows(frame, spec.target)
    predicted = np.asarray(result.predict(rows))
    assert predicted.shape == (len(rows),), f"predict() returned shape {predicted.shape}"
    if target.task == "regression":
        assert np.isfinite(predicted.astype(float)).all(), "predict() returned non-finite values"
        return
    assert set(predicted.tolist()) <= set(target.classes), f"predicted labels {set(predicted)}"
    proba = np.asarray(result.predict_proba(rows))
    assert proba.shape == (len(rows), len(target.classes)), f"predict_proba shape {proba.shape}"
    assert np.allclose(proba.sum(axis=1), 1.0), "probabilities do not sum to one"
