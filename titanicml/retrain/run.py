"""``retrain``: the next training data, a challenger, the gate, and the rollout.

:func:`retrain` finds the endpoint's champion (the model of the deployment that takes
most of its traffic), builds the next version of its training data asset
(:mod:`.data`), trains a challenger with the champion's own settings and frozen
holdout, registers it with the alias ``challenger``, gates it (:mod:`.gate`) on rows
neither trained on, logs the decision to an MLflow run (experiment
``retrain-<endpoint>``), and on promotion rolls it out (:mod:`.rollout`) and moves the
``champion`` alias.

With ``if_alert`` it runs the monitor first and retrains only when a drift or
performance signal alerts (:data:`RETRAIN_SIGNALS`); a data quality alert alone (an
out-of-bounds rate, a null rate) is reported but retrains nothing: new values outside
the training range are not evidence that a model trained on them would do better.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from titanicml.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

    from titanicml.retrain.gate import GateDecision

__all__ = [
    "EXIT_PROMOTED",
    "EXIT_REJECTED",
    "EXIT_ROLLOUT_FAILED",
    "RETRAIN_SIGNALS",
    "RetrainResult",
    "champion_spec",
    "retrain",
    "retrain_triggers",
]

#: Exit status: promoted, or nothing to do (no alert, no new labelled rows).
EXIT_PROMOTED = 0
#: Exit status: the gate kept the champion (``--dry-run``: would keep it).
EXIT_REJECTED = 1
#: Exit status: the gate promoted the challenger but its rollout failed (the canary, or
#: its deployment did not start): the traffic is back on the champion. (2 is a user's
#: error, as for every titanicml command.)
EXIT_ROLLOUT_FAILED = 3
#: The monitoring signals whose alert triggers ``if_alert``; data quality does not.
RETRAIN_SIGNALS = (
    "data_drift",
    "prediction_drift",
    "multivariate_drift",
    "model_performance",
    "estimated_performance",
)


@dataclass
class RetrainResult:
    """What one retrain did.

    Attributes
    ----------
    status : str
        ``promoted``, ``rejected``, ``no_alert`` (``if_alert`` and the monitor was
        quiet, or only data quality alerted), ``no_new_rows`` (no labelled production
        row the champion has not seen), ``dry_run`` (the decision is in ``decision``;
        nothing was written), ``rollout_failed`` (promoted by the gate, but the canary
        failed: the traffic is back on the champion, ``error`` says why).
    champion, challenger : str
        ``name:version`` (the challenger's is ``None`` when none was registered).
    decision : GateDecision, optional
        The gate's.
    asset : str, optional
        The training data asset version made (``name@version``).
    lineage : dict
        Row counts and sources of the challenger's data.
    deployment : str, optional
        The deployment that serves the challenger after a promotion.
    run_id : str, optional
        The MLflow run of the gate.
    monitor_run_id : str, optional
        The monitoring run that raised the alert (``if_alert``; none with ``dry_run``).
    triggers : list of str
        ``signal.feature.metric`` of the alerts that triggered the retrain (``if_alert``).
    ignored_alerts : list of str
        Alerts of signals that do not trigger a retrain (data quality).
    error : str, optional
        Why the rollout failed.
    """

    endpoint: str
    status: str
    champion: str | None = None
    challenger: str | None = None
    decision: GateDecision | None = None
    asset: str | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    deployment: str | None = None
    run_id: str | None = None
    monitor_run_id: str | None = None
    triggers: list[str] = field(default_factory=list)
    ignored_alerts: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        """0 promoted or nothing to do; 1 kept (dry run: would keep); 3 rollout failed."""
        if self.status == "rollout_failed":
            return EXIT_ROLLOUT_FAILED
        if self.decision is not None and not self.decision.promote:
            return EXIT_REJECTED
        return EXIT_PROMOTED

    def summary(self) -> str:
        """One line: what happened."""
        if self.status == "no_alert" and self.ignored_alerts:
            return (
                f"{self.endpoint}: only data quality alerted ({len(self.ignored_alerts)} "
                "figure(s), see monitor run); no drift or performance alert, nothing retrained"
            )
        if self.status == "no_alert":
            return f"{self.endpoint}: the monitor did not alert; nothing retrained"
        if self.status == "no_new_rows":
            return (
                f"{self.endpoint}: no labelled production row the champion {self.champion} "
                "has not seen; nothing retrained (join labels: titanicml monitor labels)"
            )
        verdict = "promote" if self.decision and self.decision.promote else "keep the champion"
        if self.status == "promoted":
            return (
                f"promoted {self.challenger} on {self.endpoint} (deployment "
                f"{self.deployment}); champion alias moved from {self.champion}"
            )
        if self.status == "dry_run":
            return f"dry run: the gate would {verdict}; nothing was written"
        if self.status == "rollout_failed":
            return (
                f"the gate promoted {self.challenger} but its rollout failed: {self.error}; "
                f"the champion {self.champion} keeps the traffic and the alias"
            )
        return f"kept the champion {self.champion}; {self.challenger} stays 'challenger'"


def champion_spec(metadata: dict[str, Any], champion: str) -> Any:
    """Return the champion's training settings, or say why it has none to follow."""
    from titanicml.options import OPTIONS, spec_from_options

    stored = metadata.get("spec") or {}
    if not stored.get("target"):
        raise ConfigError(
            f"{champion} was not trained by titanicml (a registered pickle, or a model "
            "saved before its settings were kept), so a challenger has no settings to "
            "follow; train the champion with titanicml (titanicml train --data ASSET "
            "--target COLUMN), register it and deploy it, then retrain"
        )
    options = {o.name: stored[o.name] for o in OPTIONS if o.name in stored}
    folds = metadata.get("folds") or {}
    if folds.get("chosen"):
        options["cv"] = None  # chosen by the champion's rows: the challenger chooses by its own
    if folds.get("repeats_chosen"):
        options["cv_repeats"] = None
    return spec_from_options(options)


def _gate_rows(
    holdout: pd.DataFrame | None, recent: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame, list[str]]:
    """Return the gate rows (holdout first, then recent) and the source of each."""
    import pandas as pd

    parts = [recent[[c for c in columns if c in recent.columns]]]
    sources = ["recent"] * len(recent)
    if holdout is not None:
        parts.insert(0, holdout)
        sources = ["holdout"] * len(holdout) + sources
    return pd.concat(parts, ignore_index=True), sources


def retrain_triggers(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Split a monitoring run's alerts into retrain triggers and the others.

    ``table`` is :attr:`titanicml.monitor.signals.SignalResult.table`. Returns the
    ``signal.feature.metric`` names of the alerting rows of :data:`RETRAIN_SIGNALS`,
    and of the other alerting rows (data quality).
    """
    from titanicml.monitor.runs import metric_name

    alerting = table[table["alert"].astype(bool)]
    names = [metric_name(r.signal, r.feature, r.metric) for r in alerting.itertuples()]
    triggers = alerting["signal"].isin(RETRAIN_SIGNALS).to_numpy()
    return (
        [n for n, t in zip(names, triggers, strict=True) if t],
        [n for n, t in zip(names, triggers, strict=True) if not t],
    )


def _monitor(endpoint: str, workspace: Any, tracking_uri: Any, options: dict, log_run: bool) -> Any:
    from titanicml.monitor.run import run_monitor

    options = {"log_run": log_run, **options}
    return run_monitor(endpoint, workspace=workspace, tracking_uri=tracking_uri, **options)


def retrain(
    endpoint: str = "titanic-endpoint",
    *,
    if_alert: bool = False,
    dry_run: bool = False,
    min_improvement: float = 0.0,
    canary: int = 10,
    canary_seconds: float | None = None,
    keep_old: bool = False,
    backend: str = "local",
    data: str | None = None,
    metric: str | None = None,
    min_gate_rows: int = 30,
    recent_share: float | None = None,
    min_recent: int | None = None,
    seed: int = 0,
    report: bool = True,
    workspace: str | Path | None = None,
    tracking_uri: str | None = None,
    monitor_options: dict[str, Any] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> RetrainResult:
    """Retrain the endpoint's champion on its data plus the labelled production rows.

    Parameters
    ----------
    endpoint : str
        The local online endpoint.
    if_alert : bool
        Run the monitor first (:func:`titanicml.monitor.run.run_monitor`) and retrain
        only when it alerts.
    dry_run : bool
        Train and gate in memory, print the decision, write nothing (no asset version,
        no run, no registration, no rollout).
    min_improvement : float
        The challenger must be better by at least this much on the metric.
    canary : int
        Percent of the champion deployment's traffic the challenger takes first.
    canary_seconds : float, optional
        How long (default :data:`~titanicml.retrain.rollout.CANARY_SECONDS`).
    keep_old : bool
        Keep the champion's deployment with 0 % traffic instead of deleting it.
    backend : {"local", "azure"}
        Where the challenger trains.
    data : str, optional
        The champion's training table, when its metadata cannot find it.
    metric : str, optional
        The gate's metric (default: the champion's optimized metric).
    min_gate_rows : int
        Fewer gate rows are refused.
    recent_share, min_recent : optional
        Share (and least count) of the new labelled rows kept for the gate
        (:data:`~titanicml.retrain.data.RECENT_SHARE`, ``MIN_RECENT_ROWS``).
    seed : int
        Seed of the gate's bootstrap.
    report : bool
        Log the challenger's HTML report with its training run (as every training does;
        it takes most of a small training's time).
    monitor_options : dict, optional
        Passed to ``run_monitor`` (``window``, ``reference``, ``spec``...); with
        ``dry_run`` it logs no monitoring run.
    on_step : callable, optional
        Called with a line of progress.

    Raises
    ------
    TitanicMLError
        For a missing endpoint, champion data or labels, a gate too small (each message
        says what to do). A failed rollout is not raised: the result's status is
        ``rollout_failed``.
    """
    from titanicml.data.lineage import training_table
    from titanicml.data.resolve import resolve_data
    from titanicml.model.layout import read_holdout, read_metadata
    from titanicml.registry import load_model, local_model_dir
    from titanicml.retrain import data as retrain_data_module
    from titanicml.retrain.gate import gate_models
    from titanicml.retrain.rollout import CANARY_SECONDS, champion_deployment

    step = on_step or (lambda _line: None)
    result = RetrainResult(endpoint, "no_alert")
    if if_alert:
        monitored = _monitor(endpoint, workspace, tracking_uri, monitor_options or {}, not dry_run)
        result.monitor_run_id = getattr(monitored, "run_id", None)
        result.triggers, result.ignored_alerts = retrain_triggers(monitored.signals.table)
        if result.ignored_alerts:
            step(
                f"data quality alerted ({', '.join(result.ignored_alerts[:5])}"
                f"{', ...' if len(result.ignored_alerts) > 5 else ''}); it does not retrain"
            )
        if not result.triggers:
            return result
        shown = ", ".join(result.triggers[:5]) + (", ..." if len(result.triggers) > 5 else "")
        run = f" (run {result.monitor_run_id})" if result.monitor_run_id else ""
        step(f"the monitor alerted{run}: {shown}; retraining")
    deployed = champion_deployment(endpoint, workspace)
    if not str(deployed.model_version).isdigit():
        raise ConfigError(
            f"deployment {deployed.name} of {endpoint} serves {deployed.model_reference}, not "
            "a registered model version, so a challenger has no version to follow; deploy a "
            "registered model (model: azureml:NAME:VERSION in deployment.yml)"
        )
    name, version = deployed.model_name, int(deployed.model_version)
    result.champion = f"{name}:{version}"
    champion_dir = local_model_dir(result.champion, tracking_uri)
    metadata = read_metadata(champion_dir) or {}
    champion = load_model(result.champion, tracking_uri, workspace)
    spec = champion_spec(metadata, result.champion)
    holdout = read_holdout(champion_dir)
    if data is not None:
        parent, parent_ref = resolve_data(data, workspace)
        parent_name, parent_sha = parent_ref.asset or parent_ref.source, parent_ref.sha256
    else:
        parent, parent_name, parent_sha = training_table(metadata, workspace)
    built = retrain_data_module.retrain_data(
        endpoint,
        parent,
        parent_name,
        parent_sha,
        spec.target,
        workspace,
        retrain_data_module.RECENT_SHARE if recent_share is None else recent_share,
        retrain_data_module.MIN_RECENT_ROWS if min_recent is None else min_recent,
    )
    result.lineage = built.lineage
    if built.new_rows == 0:
        result.status = "no_new_rows"
        return result
    gate_rows, sources = _gate_rows(holdout, built.recent, list(parent.columns))
    if len(gate_rows) < min_gate_rows:
        raise DataError(
            f"the gate would have {len(gate_rows)} row(s) ({len(gate_rows) - len(built.recent)} "
            f"of the champion's holdout, {len(built.recent)} recent labelled); it needs at "
            f"least {min_gate_rows}: train the champion with --holdout 0.2, join more labels "
            "(titanicml monitor labels), or lower --min-gate-rows"
        )
    step(
        f"champion {result.champion}; training data: {parent_name} + "
        f"{built.lineage['production_rows_trained']} labelled production row(s); gate: "
        f"{len(gate_rows)} row(s)"
    )
    training = built.training
    if not dry_run:
        result.asset = _register_asset(built, parent_name, name, workspace)
        training = result.asset
        step(f"training data asset {result.asset}")
    trained = _train_challenger(
        spec, training, holdout, backend, tracking_uri, dry_run, workspace, report
    )
    if not dry_run:
        result.challenger = _register_challenger(name, trained, result, tracking_uri)
        step(f"registered challenger {result.challenger}")
    decision = gate_models(
        champion,
        trained.model,
        gate_rows,
        spec.target,
        metric or metadata.get("metric") or trained.metric,
        min_improvement,
        min_gate_rows,
        seed,
        sources=sources,
    )
    result.decision = decision
    if dry_run:
        result.status = "dry_run"
        return result
    result.run_id = _log_gate(result, tracking_uri)
    if not decision.promote:
        result.status = "rejected"
        return result
    from titanicml.exceptions import EndpointError
    from titanicml.registry import delete_alias, set_alias
    from titanicml.retrain.rollout import roll_out

    new_version = int(str(result.challenger).rpartition(":")[2])
    try:
        result.deployment = roll_out(
            endpoint,
            name,
            new_version,
            canary,
            CANARY_SECONDS if canary_seconds is None else canary_seconds,
            keep_old,
            workspace,
            tracking_uri,
            step,
        )
    except EndpointError as exc:
        result.status, result.error = "rollout_failed", str(exc)
        _tag_rollout(result.run_id, tracking_uri, "failed", str(exc))
        return result
    _tag_rollout(result.run_id, tracking_uri, "done", str(result.deployment))
    set_alias(name, "champion", new_version, tracking_uri)
    delete_alias(name, "challenger", tracking_uri)
    result.status = "promoted"
    return result


def _register_asset(built: Any, parent_name: str, model_name: str, workspace: Any) -> str:
    """Register the next version of the training data asset; return its reference."""
    import tempfile

    from titanicml.data.assets import is_reference, parse_reference, register_asset

    if is_reference(parent_name) and not Path(parent_name).exists():
        asset_name = parse_reference(parent_name)[0]
    else:  # a file, not an asset: the model's own asset name
        asset_name = f"{model_name}-training"
    with tempfile.TemporaryDirectory(prefix="titanicml-retrain-") as folder:
        path = Path(folder) / "training.parquet"
        built.training.to_parquet(path, index=False)
        asset = register_asset(
            asset_name, path, description=built.description(), workspace=workspace
        )
    built.lineage["asset"] = asset.reference
    return asset.reference


def _train_challenger(
    spec: Any,
    training: Any,
    holdout: Any,
    backend: str,
    tracking_uri: Any,
    dry_run: bool,
    workspace: Any,
    report: bool,
) -> Any:
    from titanicml.data.resolve import resolve_data
    from titanicml.trainer import Trainer

    trainer = Trainer.from_spec(
        spec, backend=backend, tracking_uri=tracking_uri, track=not dry_run, report=report
    )
    if isinstance(training, str) and workspace is not None:  # the Trainer reads the default
        training = resolve_data(training, workspace)[0]
    return trainer.fit(training, holdout_rows=holdout)


def _register_challenger(name: str, trained: Any, result: RetrainResult, tracking_uri: Any) -> str:
    from titanicml.registry import register_model, set_alias

    lineage = result.lineage
    tags = {
        "titanicml.retrain.champion": str(result.champion),
        "titanicml.retrain.endpoint": result.endpoint,
        "titanicml.retrain.data": str(result.asset),
        "titanicml.retrain.parent_data": str(lineage.get("parent")),
        "titanicml.retrain.production_rows": str(lineage.get("production_rows_trained")),
    }
    description = f"challenger of {result.champion}, trained on {result.asset}"
    registered = register_model(
        name, run_id=trained.run_id, tracking_uri=tracking_uri, description=description, tags=tags
    )
    set_alias(name, "challenger", registered.version, tracking_uri)
    return f"{name}:{registered.version}"


def _log_gate(result: RetrainResult, tracking_uri: Any) -> str:
    """Log the gate's decision to a run of the experiment ``retrain-<endpoint>``."""
    from mlflow.entities import Metric, Param, RunTag

    from titanicml.store import ensure_experiment, get_client, owner_tags, resolve_tracking_uri

    decision = result.decision
    assert decision is not None
    store = resolve_tracking_uri(tracking_uri)
    client = get_client(store)
    experiment = ensure_experiment(client, f"retrain-{result.endpoint}", store)
    run = client.create_run(experiment, tags={"mlflow.source.name": "titanicml", **owner_tags()})
    now = int(time.time() * 1000)
    per_source = {
        f"{s['source']}_{key}": s[key]
        for s in decision.sources
        for key in ("n_rows", "champion", "challenger", "difference", "lower", "upper", "p_worse")
    }
    figures = {
        **per_source,
        "champion_score": decision.champion,
        "challenger_score": decision.challenger,
        "difference": decision.difference,
        "ci_lower": decision.lower,
        "ci_upper": decision.upper,
        "statistic": decision.statistic,
        "p_value": decision.p_value,
        "gate_rows": float(decision.n_rows),
        **{k: float(v) for k, v in decision.details.items() if isinstance(v, int | float)},
    }
    params = {
        "endpoint": result.endpoint,
        "champion": result.champion,
        "challenger": result.challenger,
        "metric": decision.metric,
        "test": decision.test,
        "data_asset": result.asset,
        **{f"lineage.{k}": v for k, v in result.lineage.items()},
    }
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in figures.items() if v == v],
        params=[Param(k, str(v)[:500]) for k, v in params.items()],
        tags=[
            RunTag("titanicml.retrain.decision", "promote" if decision.promote else "reject"),
            RunTag("titanicml.retrain.reason", decision.reason),
            RunTag("titanicml.retrain.rule", decision.rule),
        ],
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def _tag_rollout(run_id: str | None, tracking_uri: Any, outcome: str, detail: str) -> None:
    """Tag the gate's run with the rollout's outcome (``done`` or ``failed``)."""
    from titanicml.store import get_client, resolve_tracking_uri

    if run_id is None:
        return
    client = get_client(resolve_tracking_uri(tracking_uri))
    client.set_tag(run_id, "titanicml.retrain.rollout", outcome)
    client.set_tag(run_id, "titanicml.retrain.rollout_detail", detail[:5000])
