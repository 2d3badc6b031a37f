import os
import signal
import threading
import time

import pytest

from titanicml import Trainer
from titanicml.backends import (
    BUILTIN_BACKENDS,
    Backend,
    BackendEntry,
    JobStatus,
    available_backends,
    get_backend,
)
from titanicml.backends.local import LocalBackend
from titanicml.data.resolve import resolve_data
from titanicml.exceptions import BackendNotFoundError, BackendUnavailableError, TrainingError
from titanicml.spec import TrainSpec


def test_local_backend_is_found_by_name_and_follows_the_protocol():
    backend = get_backend("local")
    assert isinstance(backend, LocalBackend)
    assert isinstance(backend, Backend)
    assert get_backend(backend) is backend


def test_local_backend_is_also_registered_as_an_entry_point():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="titanicml.backends")}
    assert "local" in names
    assert "local" in available_backends()


def test_unknown_backend_lists_the_known_ones():
    with pytest.raises(BackendNotFoundError, match=r"unknown backend 'spark'.*local"):
        get_backend("spark")


def test_backend_whose_dependencies_are_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(
        BUILTIN_BACKENDS,
        "mycloud",
        BackendEntry("titanicml_mycloud_not_installed:Backend", 'pip install "titanicml[mycloud]"'),
    )
    with pytest.raises(BackendUnavailableError, match=r'pip install "titanicml\[mycloud\]"'):
        get_backend("mycloud")


def test_trainer_rejects_unknown_backend_before_training(titanic):
    with pytest.raises(BackendNotFoundError):
        Trainer(target="Survived", backend="nope", track=False).fit(titanic)


def test_cancel_stops_the_search_at_the_next_trial(titanic):
    backend = LocalBackend()
    spec = TrainSpec(target="Survived", time_budget=60)
    frame, ref = resolve_data(titanic)
    trials = []

    def on_progress(report):
        trials.append(report)
        if report.trials == 2:
            backend.cancel(job)

    job = backend.submit(spec, ref, frame, on_progress)
    status = backend.wait(job)
    assert status is JobStatus.CANCELED
    assert len(trials) == 2
    with pytest.raises(TrainingError):
        backend.result(job)


def test_ctrl_c_swallowed_inside_the_search_still_stops_the_training(titanic):
    """Python ignores a KeyboardInterrupt raised in a finalizer; the cancel still lands."""
    import contextlib
    import os
    import signal

    class SwallowingBackend(LocalBackend):
        def wait(self, job, timeout=None):
            # Swallow the interrupt, as Python does in a garbage-collection callback.
            with contextlib.suppress(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
            assert job.state["cancel"].is_set(), "the interrupt did not cancel the job"
            job.status = JobStatus.CANCELED
            return job.status

    with pytest.raises(KeyboardInterrupt):
        Trainer(target="Survived", backend=SwallowingBackend(), track=False).fit(titanic)


def test_ctrl_c_while_the_search_starts_still_cancels_it(titanic):
    """A Ctrl-C between the search thread's start and the trainer watching it."""
    import os
    import signal

    submitted = []

    class InterruptedSubmit(LocalBackend):
        def submit(self, *args, **kwargs):
            job = super().submit(*args, **kwargs)
            submitted.append(job)
            os.kill(os.getpid(), signal.SIGINT)  # the search thread runs already
            return job

    trainer = Trainer(target="Survived", time_budget=60, backend=InterruptedSubmit(), track=False)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(titanic)
    (job,) = submitted
    assert job.state["cancel"].is_set(), "the search was left running"
    job.state["thread"].join(10)
    assert not job.state["thread"].is_alive(), "the search went on after Ctrl-C"


def test_a_second_ctrl_c_stops_a_long_submit_at_once(titanic):
    """An Azure submit uploads the data first: the first Ctrl-C is held, the second is not."""
    import os
    import signal

    reached = []

    class SlowSubmit(LocalBackend):
        def submit(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)  # held
            os.kill(os.getpid(), signal.SIGINT)  # goes through
            reached.append("after")  # the upload would go on here
            return super().submit(*args, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        Trainer(target="Survived", time_budget=30, backend=SlowSubmit(), track=False).fit(titanic)
    assert reached == []


def test_a_ctrl_c_held_during_a_failing_submit_still_interrupts(titanic):
    import os
    import signal

    class FailingSubmit(LocalBackend):
        def submit(self, *args, **kwargs):
            os.kill(os.getpid(), signal.SIGINT)
            raise TrainingError("the upload was cut")

    with pytest.raises(KeyboardInterrupt):
        Trainer(target="Survived", time_budget=30, backend=FailingSubmit(), track=False).fit(
            titanic
        )


def _long_job(backend, titanic, **kwargs):
    started = threading.Event()
    spec = TrainSpec(target="Survived", time_budget=60, exclude=("Boat", "Body"), ensemble=False)
    frame, ref = resolve_data(titanic)
    job = backend.submit(spec, ref, frame, lambda report: started.set(), **kwargs)
    assert started.wait(30), "the search reported no trial"
    return job


def test_ctrl_c_during_wait_cancels_the_search_and_propagates(titanic):
    backend = LocalBackend()
    job = _long_job(backend, titanic)
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        backend.wait(job)
    assert time.monotonic() - started < 5
    assert job.status is JobStatus.CANCELED and job.state["cancel"].is_set()
    job.state["thread"].join(10)
    assert not job.state["thread"].is_alive(), "the search went on after Ctrl-C"
    assert job.status is JobStatus.CANCELED


def test_an_error_of_the_progress_callback_is_raised_by_wait(titanic):
    backend = LocalBackend()
    spec = TrainSpec(target="Survived", time_budget=30, exclude=("Boat", "Body"))
    frame, ref = resolve_data(titanic)

    def explode(report):
        raise RuntimeError("display broken")

    job = backend.submit(spec, ref, frame, explode)
    with pytest.raises(RuntimeError, match="display broken"):
        backend.wait(job)
    assert job.status is JobStatus.FAILED
    assert backend.wait(job) is JobStatus.FAILED  # raised once
    with pytest.raises(TrainingError, match="RuntimeError: display broken"):
        backend.result(job)


def test_a_second_search_waits_for_flaml_and_fails_at_its_deadline(titanic):
    """FLAML keeps its running search in module globals: one search at a time per process."""
    backend = LocalBackend()
    first = _long_job(backend, titanic)
    try:
        frame, ref = resolve_data(titanic)
        spec = TrainSpec(target="Survived", time_budget=60, exclude=("Boat", "Body"))
        second = backend.submit(spec, ref, frame, deadline=time.monotonic() + 1)
        assert backend.wait(second, timeout=10) is JobStatus.FAILED
        with pytest.raises(TrainingError, match="one search at a time"):
            backend.result(second)
        assert first.status is JobStatus.RUNNING
    finally:
        backend.cancel(first)
    assert backend.wait(first, timeout=10) is JobStatus.CANCELED


@pytest.mark.parametrize(
    ("final_seconds", "expected"),
    [
        # 8 % of the 10 s (0.8 s) plus 2 us a row: the reserve's own share wins
        (0.0, lambda rows: 0.08 * 10 + 2e-6 * rows),
        (0.5, lambda rows: 0.08 * 10 + 2e-6 * rows),
        # the caller's 3 s after the job take its place, plus the rows' share
        (3.0, lambda rows: 3.0 + 2e-6 * rows),
        # at most 40 % of the budget: a small tracked budget still searches
        (30.0, lambda rows: 0.4 * 10),
    ],
)
def test_the_search_keeps_the_callers_final_seconds_for_the_last_steps(
    titanic, final_seconds, expected
):
    import time

    backend = LocalBackend()
    spec = TrainSpec(target="Survived", time_budget=10, max_trials=2, estimators=("lgbm",))
    frame, ref = resolve_data(titanic)
    # a deadline far enough that the 10 s budget is the search's whole budget
    job = backend.submit(
        spec, ref, frame, deadline=time.monotonic() + 60, final_seconds=final_seconds
    )
    assert backend.wait(job) is JobStatus.COMPLETED
    reserve = backend.result(job).extras["search"]["reserve_seconds"]
    assert reserve == pytest.approx(expected(len(titanic)), abs=1e-9)
