"""``titanicml monitor run``: the signals of an endpoint's production window, and their outputs.

:func:`run_monitor` reads a window of the production data store (bounded memory:
:mod:`titanicml.monitor.window`), joins its labels, finds the model that answered
(its name and version are logged with every row), and compares the window with a
reference:

``"training"`` (default)
    the training profile that ships in the model (``titanicml/profile.json``), with the
    model's out-of-fold predictions as the reference of prediction drift;
``"previous"``
    the window of the same length just before this one;
an asset or a file
    a registered data asset (``titanic-dataset@latest``) or a CSV/Parquet table.

It ranks features by the model's importance (its exact contributions on the window,
:func:`titanicml.explain.explain_model`), calibrates the estimated performance (CBPE)
on the model's out-of-fold predictions, adds the refused (4xx) requests by cause to
data quality, and writes the outputs (:mod:`titanicml.monitor.outputs`): the
``monitor.json`` and ``monitor.html`` files, one MLflow run in the experiment
``monitor-<endpoint>``, and the ``on_alert`` command.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import DataError, TitanicMLError
from titanicml.monitor.runs import MonitorRun
from titanicml.monitor.window import DEFAULT_SAMPLE_ROWS, Window, parse_window, read_window

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.monitor.signals import SignalResult
    from titanicml.monitor.spec import MonitorSpec, SignalSpec

__all__ = ["DEFAULT_ENDPOINT", "HTTP_4XX_THRESHOLD", "MonitorRun", "run_monitor"]

DEFAULT_ENDPOINT = "titanic-endpoint"
#: Share of a window's requests refused for one cause (status and error code) whose
#: interval's lower bound above it alerts.
HTTP_4XX_THRESHOLD = 0.05
#: Window rows whose contributions rank the features.
IMPORTANCE_ROWS = 1000
#: Training rows at most that the domain classifier (multivariate drift) compares with.
REFERENCE_ROWS = 5000


def run_monitor(
    endpoint: str | None = DEFAULT_ENDPOINT,
    *,
    deployment: str | None = None,
    window: str | float = "1d",
    reference: str = "training",
    workspace: str | Path | None = None,
    tracking_uri: str | None = None,
    spec: MonitorSpec | str | Path | None = None,
    output: str | Path | None = None,
    on_alert: str | None = None,
    model: str | Path | None = None,
    end: float | None = None,
    max_rows: int = DEFAULT_SAMPLE_ROWS,
    n_boot: int = 200,
    seed: int = 0,
    log_run: bool = True,
) -> MonitorRun:
    """Compute the monitoring signals of an endpoint's latest window and write the outputs.

    Parameters
    ----------
    endpoint : str, optional
        The endpoint (default ``titanic-endpoint``; ``None``: the schedule file's).
    deployment : str, optional
        One deployment's rows only (default: every deployment, mirror copies left out).
    window : str or float
        The window's length, ending at ``end``: ``1d``, ``12h``, ``P7D``, or seconds.
    reference : str
        ``"training"`` (the model's training profile), ``"previous"`` (the window
        before), or a data asset reference or file.
    workspace : str or Path, optional
        The titanicml workspace (production data, data assets, keys).
    tracking_uri : str, optional
        The MLflow store of the model registry and of the monitoring runs.
    spec : MonitorSpec, str or Path, optional
        An Azure ML monitor schedule file (or what :func:`read_monitor_spec` read):
        its signals and thresholds.
    output : str or Path, optional
        Folder for ``monitor.json`` and ``monitor.html``.
    on_alert : str, optional
        A shell command run when a figure alerts (see :mod:`titanicml.monitor.outputs`).
    model : str or Path, optional
        The model (default: the one that answered the window's latest row).
    end : float, optional
        Unix time the window ends at (default: now).
    max_rows : int
        Answered rows kept for the signals; a larger window is sampled uniformly.
    n_boot, seed
        Bootstrap replicates and random seed.
    log_run : bool
        Log an MLflow run (default true).

    Raises
    ------
    ConfigError
        No production data for the endpoint, a bad window, reference or schedule file.
    DataError
        A window without answered rows, or too small to judge.
    ModelError
        If the model cannot be found or loaded.
    """
    from titanicml.monitor.outputs import write_outputs
    from titanicml.monitor.spec import read_monitor_spec

    if spec is not None and not hasattr(spec, "signals"):
        spec = read_monitor_spec(spec)
    endpoint = endpoint or (spec.endpoint if spec else None) or DEFAULT_ENDPOINT
    deployment = deployment or (spec.deployment if spec and spec.endpoint == endpoint else None)
    seconds = parse_window(window)
    end = time.time() if end is None else float(end)
    start = end - seconds
    rows = read_window(endpoint, start, end, workspace, deployment, max_rows, seed)
    if rows.answered == 0:
        refused = sum(rows.refused.values())
        raise DataError(
            f"endpoint {endpoint!r} answered no request in the {window} window ending "
            f"{_iso(end)} ({rows.rows} row(s) recorded, {refused} refused); choose a longer "
            "--window, or send traffic"
        )
    model_ref = str(
        model or (spec.model if spec else None) or _answering_model(rows, endpoint, workspace)
    )
    fitted, model_dir = _load(model_ref, tracking_uri, workspace)
    notes: list[str] = []
    ref, ref_predictions, ref_name = _reference(
        reference,
        rows,
        seconds,
        model_dir,
        endpoint,
        workspace,
        deployment,
        max_rows,
        seed,
        tracking_uri,
        notes,
    )
    importance = _importance(fitted, rows.frame, notes)
    calibration = _calibration(fitted, model_dir, notes)
    labels = rows.frame["label"] if rows.labelled else None
    if labels is None:
        notes.append("model performance: no labelled rows in the window (monitor labels)")
    production = rows.frame.drop(columns=["label"])
    common = {
        "labels": labels,
        "importance": importance,
        "reference_predictions": ref_predictions,
        # Only the default signal set holds multivariate drift (Azure's files have none).
        "reference_rows": _reference_rows(model_dir, workspace, seed, notes)
        if isinstance(ref, Mapping) and spec is None
        else None,
        "calibration": calibration,
        "n_boot": n_boot,
        "seed": seed,
        "target": _target(model_dir),
    }
    result = _compute(production, ref, fitted, spec, common, importance)
    _add_refusals(result, rows, spec)
    _add_missing_estimate(result, fitted, calibration, notes, spec)
    result.settings.update(
        endpoint=endpoint,
        deployment=deployment,
        window=str(window),
        start=_iso(start),
        end=_iso(end),
        model=model_ref,
        reference=ref_name,
        rows=rows.rows,
        answered=rows.answered,
        requests=rows.requests,
        sampled_rows=len(production),
        labelled_rows=rows.labelled,
        notes=notes,
        models={f"{n}:{v}": c for (n, v), c in rows.models.most_common()},
    )
    run = MonitorRun(
        result,
        endpoint,
        deployment,
        model_ref,
        ref_name,
        start,
        end,
        rows,
        notes=notes,
        reference_predictions=ref_predictions,
    )
    write_outputs(run, ref, output, tracking_uri, on_alert, log_run)
    return run


def _answering_model(rows: Window, endpoint: str, workspace: str | Path | None) -> str:
    """Return the reference of the model that answered the latest row.

    A registered version is ``name:version``; a run's model ``runs:/<id>/model``; a
    model folder (version ``local``) is found in the local deployment's record.
    """
    from titanicml.exceptions import ConfigError

    name, version = rows.latest_model or ("", "")
    if version.isdigit():
        return f"{name}:{version}"
    if name.startswith("run-"):
        return f"runs:/{version}/model"
    folder = _deployed_folder(endpoint, rows.latest_deployment, workspace, name, version)
    if folder is not None:
        return folder
    raise ConfigError(
        f"the window was answered by model {name} (version {version}: a model folder, not "
        "a registered version); name it with --model PATH"
    )


def _deployed_folder(
    endpoint: str, deployment: str | None, workspace: str | Path | None, name: str, version: str
) -> str | None:
    """Return the model folder a local deployment serves, if it served ``name:version``."""
    from titanicml.deploy.local.endpoints import endpoint_paths
    from titanicml.deploy.local.state import read_deployment

    if deployment is None:
        return None
    try:
        record = read_deployment(endpoint_paths(endpoint, workspace), deployment)
    except TitanicMLError:
        return None
    if record is None or (record.model_name, record.model_version) != (name, version):
        return None
    return record.model_reference


def _load(reference: str, tracking_uri: str | None, workspace: str | Path | None) -> tuple:
    from titanicml.registry import load_model, local_model_dir

    fitted = load_model(reference, tracking_uri=tracking_uri, workspace=workspace)
    return fitted, local_model_dir(reference, tracking_uri)


def _target(model_dir: Path) -> str | None:
    from titanicml.model.layout import read_metadata

    return (read_metadata(model_dir) or {}).get("target")


def _reference(
    reference: str,
    rows: Window,
    seconds: float,
    model_dir: Path,
    endpoint: str,
    workspace: str | Path | None,
    deployment: str | None,
    max_rows: int,
    seed: int,
    tracking_uri: str | None,
    notes: list[str],
) -> tuple[Any, pd.DataFrame | None, str]:
    """Return the reference (profile or table), its predictions, and its name."""
    from titanicml.model.layout import read_oof
    from titanicml.monitor.signals import training_profile

    if reference == "training":
        profile = training_profile(model_dir, tracking_uri)
        oof = read_oof(model_dir)
        if oof is None:
            notes.append(f"prediction drift: {_no_oof(model_dir)}")
            return profile, None, "training"
        columns = [c for c in oof.columns if c == "prediction" or c.startswith("probability_")]
        return profile, oof[columns].reset_index(drop=True), "training"
    if reference == "previous":
        before = read_window(
            endpoint, rows.start - seconds, rows.start, workspace, deployment, max_rows, seed + 1
        )
        if before.answered == 0:
            raise DataError(
                f"the previous window ({_iso(rows.start - seconds)} to {_iso(rows.start)}) "
                "has no answered rows to compare with; use --reference training"
            )
        frame = before.frame.drop(columns=["label"])
        predicted = [c for c in frame.columns if c == "prediction" or c.startswith("probability_")]
        return frame, frame[predicted].reset_index(drop=True), "previous"
    from titanicml.data.resolve import resolve_data

    table, _ = resolve_data(reference, workspace)
    return table, None, reference


def _reference_rows(
    model_dir: Path, workspace: str | Path | None, seed: int, notes: list[str]
) -> pd.DataFrame | None:
    """Return rows of the training population for multivariate drift (a profile has none).

    The table the model trained on when it can be read again unchanged, else the rows it
    set apart (``holdout``); at most :data:`REFERENCE_ROWS` of them.
    """
    from titanicml.data.lineage import training_table
    from titanicml.model.layout import read_holdout, read_metadata

    try:
        table, _, _ = training_table(read_metadata(model_dir) or {}, workspace)
    except TitanicMLError as exc:
        table = read_holdout(model_dir)
        if table is None:
            notes.append(f"multivariate drift: {exc}")
            return None
    return table.sample(n=min(len(table), REFERENCE_ROWS), random_state=seed)


def _no_oof(model_dir: Path) -> str:
    """Say why a model has no out-of-fold predictions (its metadata's reason, if any)."""
    from titanicml.model.layout import read_metadata

    why = ((read_metadata(model_dir) or {}).get("oof") or {}).get("reason")
    if why:
        return f"the model has no out-of-fold predictions ({why})"
    return (
        "the model has no out-of-fold predictions (not trained by titanicml's search, or "
        "saved before titanicml shipped them)"
    )


def _importance(fitted: Any, frame: pd.DataFrame, notes: list[str]) -> dict[str, float]:
    """Return the model's mean absolute contribution per input column on the window."""
    try:
        from titanicml.explain import explain_model

        explained = explain_model(fitted, frame[fitted.input_columns].head(IMPORTANCE_ROWS))
        return {str(k): float(v) for k, v in explained.importance().items()}
    except (TitanicMLError, ImportError, KeyError) as exc:
        notes.append(f"feature importance: not computed ({exc})")
        return {}


def _calibration(fitted: Any, model_dir: Path, notes: list[str]) -> tuple | None:
    """Return (out-of-fold probabilities, labels) for CBPE, or None with the reason noted."""
    from titanicml.model.layout import read_oof

    if not fitted.is_classifier:
        return None
    oof = read_oof(model_dir)
    columns = [f"probability_{c}" for c in fitted.labels or []]
    if oof is None or not all(c in oof.columns for c in columns):
        notes.append(f"estimated performance: {_no_oof(model_dir)}")
        return None
    return oof[columns].to_numpy(dtype="float64"), oof["label"].to_numpy()


def _compute(
    production: pd.DataFrame,
    reference: Any,
    fitted: Any,
    spec: MonitorSpec | None,
    common: dict[str, Any],
    importance: dict[str, float],
) -> SignalResult:
    """Compute every signal at once, or each signal of the schedule file with its thresholds."""
    import pandas as pd

    from titanicml.monitor.signals import SignalResult, compute_signals

    if spec is None:
        return compute_signals(production, reference, fitted, **common)
    parts = [
        compute_signals(production, reference, fitted, **common, **options)
        for signal in spec.signals
        for options in _signal_options(signal, fitted, reference, importance)
    ]
    if not parts:
        from titanicml.exceptions import ConfigError

        raise ConfigError(
            f"{spec.path}: no signal to compute locally; add data_drift, prediction_drift, "
            "data_quality or model_performance to monitoring_signals"
        )
    table = pd.concat([p.table for p in parts], ignore_index=True)
    settings = {**parts[0].settings, "signals": [s.name for s in spec.signals]}
    return SignalResult(table, parts[0].n_production, parts[0].reference, settings)


def _signal_options(
    signal: SignalSpec, fitted: Any, reference: Any, importance: dict[str, float]
) -> list[dict[str, Any]]:
    """Return the ``compute_signals`` options of one signal of a schedule file.

    Two calls when a metric has a numerical and a categorical threshold that differ.
    """
    features = signal.features
    if signal.top_n is not None:
        ranked = sorted(fitted.input_columns, key=lambda c: -importance.get(c, 0.0))
        features = ranked[: signal.top_n]
    if signal.type == "model_performance":
        return [
            {
                "signals": ["model_performance", "estimated_performance"],
                "min_performance": signal.min_performance,
            }
        ]
    base: dict[str, Any] = {"signals": [signal.type], "features": features}
    if signal.type == "data_quality":
        thresholds = {**signal.categorical, **signal.numerical}
        return [{**base, "thresholds": thresholds}]
    numeric = list(signal.numerical) or ["normalized_wasserstein_distance"]
    categorical = list(signal.categorical) or ["jensen_shannon_distance"]
    both = set(signal.numerical) & set(signal.categorical)
    if signal.type == "prediction_drift" or not any(
        signal.numerical[m] != signal.categorical[m] for m in both
    ):
        thresholds = {**signal.categorical, **signal.numerical}
        return [
            {
                **base,
                "numeric_metrics": numeric,
                "categorical_metrics": categorical,
                "thresholds": thresholds,
            }
        ]
    from titanicml.monitor.stats.table import feature_set

    names = features or list(fitted.input_columns)
    kinds = feature_set(reference, names).features
    split = []
    for kind, metrics in (("numeric", signal.numerical), ("categorical", signal.categorical)):
        chosen = [n for n in names if kinds[n].kind == kind]
        if chosen:
            split.append(
                {
                    **base,
                    "features": chosen,
                    "numeric_metrics": numeric,
                    "categorical_metrics": categorical,
                    "thresholds": dict(metrics),
                }
            )
    return split


def _add_refusals(result: SignalResult, rows: Window, spec: MonitorSpec | None) -> None:
    """Add data quality rows: the share of the window's requests refused, per cause."""
    import pandas as pd

    from titanicml.monitor.stats.quality import rate
    from titanicml.monitor.stats.table import make_row

    if spec is not None and not any(s.type == "data_quality" for s in spec.signals):
        return
    added = []
    for (status, code), count in sorted(rows.refused.items()):
        if not 400 <= status < 500:
            continue
        share = rate("http_4xx_rate", count, max(rows.requests, count), HTTP_4XX_THRESHOLD)
        alert = share.lower > HTTP_4XX_THRESHOLD
        example = rows.examples.get((status, code), "")
        added.append(
            make_row(
                "data_quality",
                f"{status} {code}",
                "http_4xx_rate",
                share.value,
                share.lower,
                share.upper,
                HTTP_4XX_THRESHOLD,
                alert,
                n_production=share.n,
                message=f"{count} of {share.n} request(s) refused with {status} {code}"
                + (f", e.g. {example[:160]}" if example else ""),
            )
        )
    if added:
        table = pd.concat([result.table, pd.DataFrame(added)], ignore_index=True)
        order = {name: i for i, name in enumerate(dict.fromkeys(table["signal"]))}
        result.table = table.sort_values("signal", key=lambda s: s.map(order), kind="stable")
        result.table = result.table.reset_index(drop=True)


def _add_missing_estimate(
    result: SignalResult,
    fitted: Any,
    calibration: tuple | None,
    notes: list[str],
    spec: MonitorSpec | None,
) -> None:
    """Say in the table why a classifier has no estimated performance."""
    import pandas as pd

    from titanicml.monitor.stats.table import skipped_row

    wanted = spec is None or any(s.type == "model_performance" for s in spec.signals)
    if calibration is not None or not fitted.is_classifier or not wanted:
        return
    why = next((n for n in notes if n.startswith("estimated performance")), "")
    row = skipped_row("estimated_performance", None, "not computed: " + why.split(": ", 1)[-1])
    result.table = pd.concat([result.table, pd.DataFrame([row])], ignore_index=True)


def _iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
