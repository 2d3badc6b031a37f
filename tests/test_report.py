"""The model report: targets and verdicts, sections, size, the training's MLflow artifacts."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
from test_oof import fixture_holdout_result  # noqa: F401 (fixture)

from titanicml.exceptions import ConfigError
from titanicml.report import build_report, parse_target
from titanicml.report.targets import FAIL, NOT_MEASURED, PASS, Target, judge

ONE_MB = 1_000_000
SECTIONS = ["scorecard", "checks", "leaderboard", "performance", "explanations", "fairness",
            "cohorts"]  # fmt: skip


# -- targets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accuracy>=0.8", Target("accuracy", ">=", 0.8)),
        (" dp_difference <= 0.1 ", Target("dp_difference", "<=", 0.1)),
        ("log_loss<0.45", Target("log_loss", "<", 0.45)),
        ("ROC_AUC>.85", Target("roc_auc", ">", 0.85)),
        ("rmse<=1e3", Target("rmse", "<=", 1000.0)),
    ],
)
def test_targets_parse(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["accuracy", "accuracy=>0.8", "accuracy>=high", ">=0.8", "a==1"])
def test_a_misspelled_target_is_refused_with_the_form_to_use(text):
    with pytest.raises(ConfigError, match=r"accuracy>=0\.8"):
        parse_target(text)


def test_verdicts_against_hand_figures():
    targets = [parse_target(t) for t in (
        "accuracy>=0.8", "accuracy>0.8", "f1>=0.8", "dp_difference<=0.1", "eo_ratio>=0.8",
        "log_loss<0.5",
    )]  # fmt: skip
    figures = {"accuracy": 0.8, "f1": 0.79, "dp_difference": 0.12, "log_loss": 0.4,
               "eo_ratio": float("nan")}  # fmt: skip
    verdicts = judge(targets, figures, {"accuracy": 0.01})
    assert [v.status for v in verdicts] == [PASS, FAIL, FAIL, FAIL, NOT_MEASURED, PASS]
    assert verdicts[0].value == 0.8 and verdicts[0].spread == 0.01
    assert verdicts[4].value is None


def test_lift_of_a_perfect_ranking_is_the_inverse_base_rate():
    from titanicml.report.curves import lift_curve

    truth = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    score = np.linspace(1, 0, 10)
    shares, lift = lift_curve(truth, score)
    assert shares[0] == pytest.approx(0.1) and lift[0] == pytest.approx(5.0)  # 1/1 over 0.2
    assert lift[1] == pytest.approx(5.0) and lift[-1] == pytest.approx(1.0)
    assert lift[4] == pytest.approx(2.0)  # top half: 2 of 5 rows positive, 0.4 / 0.2


# -- the page --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def titanic_result(titanic, tmp_path_factory):
    """A tracked training whose model has out-of-fold predictions.

    Six trials in a long budget leave the time to fit them on a loaded machine (the
    session's shared result, with less room, may have none there).
    """
    from titanicml import Trainer

    store = f"sqlite:///{tmp_path_factory.mktemp('report-store') / 'mlflow.db'}"
    result = Trainer(
        target="Survived", time_budget=90, max_trials=6, exclude=["Boat", "Body"],
        experiment_name="report-tests", tracking_uri=store,
    ).fit(titanic)  # fmt: skip
    assert result.oof is not None, result.extras.get("oof")
    return result


@pytest.fixture(scope="module")
def saved_model(titanic_result, tmp_path_factory):
    return titanic_result.save(tmp_path_factory.mktemp("report-models") / "titanic-model")


@pytest.fixture(scope="module")
def titanic_report(titanic_result, titanic):
    return build_report(
        titanic_result, rows=titanic, targets=["accuracy>=0.8", "accuracy>=0.99",
                                               "dp_difference<=0.1"],
    )  # fmt: skip


def _section_ids(html: str) -> list[str]:
    return re.findall(r'<section id="([a-z_]+)">', html)


def test_the_report_has_every_section_the_scorecard_first(titanic_report):
    assert _section_ids(titanic_report.html) == SECTIONS
    assert [s.anchor for s in titanic_report.sections] == SECTIONS
    names = {p.name for p in titanic_report.plots}
    assert {"roc", "precision_recall", "confusion_matrix", "calibration", "lift",
            "importance", "beeswarm"} <= names  # fmt: skip


def test_the_scorecard_judges_the_cross_validated_metric(titanic_report, titanic_result):
    accuracy = titanic_result.metrics["accuracy"]
    statuses = [v.status for v in titanic_report.verdicts]
    assert statuses[0] == (PASS if accuracy >= 0.8 else FAIL)
    assert statuses[1] == FAIL  # nothing reaches 0.99 on Titanic out of fold
    assert titanic_report.verdicts[0].value == accuracy
    assert titanic_report.verdicts[0].spread == titanic_result.metrics["accuracy_std"]
    assert not titanic_report.passed
    scorecard = titanic_report.html.split('<section id="checks">')[0]
    assert f"{accuracy:.3f} ± {titanic_result.metrics['accuracy_std']:.3f}" in scorecard
    assert '<tr class="fail">' in scorecard


def test_the_plots_are_drawn_from_the_out_of_fold_predictions(titanic_report, titanic_result):
    performance = titanic_report.sections[3]
    assert f"out-of-fold predictions on the training rows ({len(titanic_result.oof)} rows)" in (
        performance.lead
    )


def test_the_page_is_self_contained_and_small(titanic_report):
    html = titanic_report.html
    assert len(html.encode()) < ONE_MB
    assert "<script" not in html.lower()
    assert not re.findall(r'(?:src|href)\s*=\s*["\']?\s*(?:https?:)?//', html, re.IGNORECASE)
    assert "<svg" in html and "data:image/png;base64," in html


def test_the_page_escapes_text_from_the_data(titanic_result, titanic):
    rows = titanic.assign(Name="<b>x</b>")
    html = build_report(titanic_result, rows=rows, title="<i>title</i>").html
    assert "<i>title</i>" not in html and "&lt;i&gt;title&lt;/i&gt;" in html


def test_write_is_whole_and_reports_its_size(titanic_report, tmp_path):
    path = titanic_report.write(tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == titanic_report.html
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_a_model_directory_reports_from_its_saved_predictions(saved_model, tmp_path):
    report = build_report(saved_model, targets=["accuracy>=0.5"])
    assert _section_ids(report.html) == SECTIONS
    assert report.verdicts[0].status == PASS
    # No rows given: the sections that need them say so instead of failing.
    assert "needs the input rows" in report.sections[4].body


def test_labelled_rows_that_are_not_the_training_data_are_predicted(saved_model, titanic):
    rows = titanic.sample(300, random_state=1)
    report = build_report(saved_model, rows)
    assert "the model's predictions on" in report.sections[3].lead
    assert "(300 labelled rows)" in report.sections[3].lead


def test_a_holdout_models_report_on_the_training_table(holdout_result, titanic, caplog):
    with caplog.at_level(logging.WARNING, logger="titanicml"):
        report = build_report(holdout_result, rows=titanic, sensitive=["Sex"])
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    sections = {s.anchor: s for s in report.sections}
    assert (
        "out-of-fold predictions on the training rows (1047 rows)" in sections["performance"].lead
    )
    assert "out-of-fold predictions on 1047 rows" in sections["fairness"].lead
    assert "1047 rows" in sections["cohorts"].lead
    assert "could not" not in sections["fairness"].body + sections["cohorts"].body


def test_without_oof_the_report_draws_the_holdout_and_warns_of_in_sample_rows(
    holdout_result, titanic
):
    import dataclasses

    without = dataclasses.replace(holdout_result, oof=None)
    report = build_report(without, rows=titanic, sensitive=["Sex"])
    sections = {s.anchor: s for s in report.sections}
    assert "its holdout" in sections["performance"].lead
    assert "(262 rows)" in sections["performance"].lead
    assert "262 rows" in sections["fairness"].lead and "in-sample" not in sections["fairness"].body
    # The training table given as data: the model's own predictions, said to be in-sample.
    given = build_report(without, titanic, sensitive=["Sex"])
    parts = {s.anchor: s for s in given.sections}
    assert "in-sample" in parts["performance"].lead
    assert "in-sample" in parts["fairness"].body and "in-sample" in parts["cohorts"].body


def test_rows_without_the_target_are_refused(saved_model, titanic):
    with pytest.raises(ConfigError, match="no column 'Survived'"):
        build_report(saved_model, titanic.drop(columns=["Survived"]))


# -- monitoring ------------------------------------------------------------------------


def test_monitoring_runs_are_drawn_over_time(saved_model, store):
    from mlflow.entities import Metric

    from titanicml.store import ensure_experiment, get_client

    client = get_client(store)
    experiment = ensure_experiment(client, "monitor-titanic-endpoint", store)
    # As the monitor logs them: stamped with the window's end, intervals beside the value;
    # the runs are made in another order than their windows.
    for day, drift in ((1, 0.05), (0, 0.02), (2, 0.31)):
        stamp = 1_700_000_000_000 + day * 86_400_000
        run = client.create_run(experiment)
        client.log_batch(run.info.run_id, metrics=[
            Metric("data_drift.Age.jensen_shannon", drift, stamp, 0),
            Metric("data_drift.Age.jensen_shannon_lower", drift - 0.01, stamp, 0),
            Metric("data_drift.Age.jensen_shannon_upper", drift + 0.01, stamp, 0),
            Metric("data_drift.Fare.jensen_shannon", 0.01, stamp, 0),
            Metric("prediction_drift.prediction.psi", drift / 2, stamp, 0),
            Metric("alerts", float(drift > 0.1), stamp, 0),
            Metric("rows", 500.0, stamp, 0),
        ])  # fmt: skip
        client.set_terminated(run.info.run_id)
    report = build_report(saved_model, endpoint="titanic-endpoint", tracking_uri=store)
    section = report.sections[-1]
    assert section.anchor == "monitoring"
    assert "3 monitoring run(s)" in section.lead
    assert sorted(p.name for p in section.plots) == [
        "monitoring_data_drift_jensen_shannon", "monitoring_prediction_drift_psi"]  # fmt: skip
    assert "2023-11-14 22:13 to 2023-11-16 22:13 UTC" in section.lead  # the windows' ends
    latest = section.body.split("Latest run")[1]  # the last window, not the last run made
    assert latest.index("Age") < latest.index("Fare")  # the largest drift first
    assert "0.31" in latest and "0.32" in latest  # its value and its interval's upper bound

    never = build_report(saved_model, endpoint="other", tracking_uri=store)
    assert "No monitoring run of other" in never.sections[-1].body


# -- every training logs it ------------------------------------------------------------


def test_the_training_logged_its_report_and_plots(titanic_result):
    from titanicml.store import get_client

    client = get_client(titanic_result.tracking_uri)
    logged = {f.path for f in client.list_artifacts(titanic_result.run_id, "report")}
    expected = {"report.html", "roc.png", "precision_recall.png", "confusion_matrix.png",
                "calibration.png", "lift.png", "importance.png", "beeswarm.png"}  # fmt: skip
    assert {f"report/{name}" for name in expected} <= logged


def test_a_failing_report_never_fails_the_training(titanic, store, monkeypatch, caplog):
    from conftest import FAST_BUDGET

    import titanicml.report.build as build
    from titanicml import Trainer
    from titanicml.store import get_client

    def broken(*args, **kwargs):
        raise RuntimeError("no disk left")

    monkeypatch.setattr(build, "build_report", broken)
    with caplog.at_level(logging.WARNING, logger="titanicml"):
        result = Trainer(target="Survived", time_budget=FAST_BUDGET, tracking_uri=store).fit(
            titanic
        )
    run = get_client(store).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert any("report was not logged (RuntimeError: no disk left)" in r.message
               for r in caplog.records)  # fmt: skip
    assert get_client(store).list_artifacts(result.run_id, "report") == []


# -- the command line ------------------------------------------------------------------


def test_cli_writes_the_page_and_exits_1_when_a_target_fails(cli, saved_model, tmp_path):
    out = tmp_path / "report.html"
    done = cli("report", "--model", saved_model, "--target", "accuracy>=0.5",
               "--output", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "pass  accuracy >= 0.5" in done.stdout and "wrote" in done.stdout
    assert _section_ids(out.read_text(encoding="utf-8")) == SECTIONS
    failed = cli("report", "--model", saved_model, "--target", "accuracy>=0.999", "--output", out)
    assert failed.returncode == 1
    assert "fail  accuracy >= 0.999" in failed.stdout
    unmeasured = cli("report", "--model", saved_model, "--target", "dp_difference<=0.1",
                     "--output", out)  # fmt: skip
    assert "dp_difference <= 0.1: not measured (give --sensitive COL" in unmeasured.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "accuracy=>0.8", "--output", "x.html"], "is not <metric><op><number>"),
        ([], "--output report.html"),
        (["--dry-run", "--output", "x.html"], "--dry-run is for --target azure"),
        (["--target", "azure", "accuracy>=0.8", "--dry-run"], "takes no metric target"),
    ],
)
def test_cli_mistakes_are_one_line_and_exit_2(cli, saved_model, tmp_path, args, message):
    done = cli("report", "--model", saved_model, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_data_without_the_target(cli, saved_model, titanic, tmp_path):
    data = tmp_path / "unlabelled.csv"
    titanic.drop(columns=["Survived"]).to_csv(data, index=False)
    done = cli("report", "--model", saved_model, "--data", data, "--output", tmp_path / "r.html")
    assert done.returncode == 2
    assert "no column 'Survived'" in done.stderr
    assert not (tmp_path / "r.html").exists()


def test_the_training_file_keeps_the_out_of_fold_predictions(cli, tmp_path, titanic, store):
    from titanicml import Trainer

    data = tmp_path / "titanic.csv"
    titanic.to_csv(data, index=False)
    # A few trials leave the time to fit the out-of-fold predictions.
    result = Trainer(target="Survived", time_budget=60, max_trials=6, track=False).fit(data)
    assert result.oof is not None, result.extras.get("oof")
    model = result.save(tmp_path / "model")
    out = tmp_path / "report.html"
    done = cli("report", "--model", model, "--data", data, "--output", out)
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert "Drawn from out-of-fold predictions on the training rows" in page
    assert "Contributions of 400 rows" in page  # the file's rows are explained


def test_pandas_is_not_needed_to_parse_targets():
    assert isinstance(parse_target("r2>=0.5").threshold, float)
    assert pd.isna(float("nan"))


# -- fairness and cohorts ----------------------------------------------------------------


def test_dp_difference_is_the_gap_in_selection_rates_out_of_fold(titanic_result, titanic):
    report = build_report(
        titanic_result, rows=titanic, sensitive=["Sex"], targets=["dp_difference<=0.1"]
    )
    oof = titanic_result.oof
    positive = oof["prediction"].astype(str) == str(titanic_result.model.labels[-1])
    sex = titanic.loc[titanic["Survived"].notna(), "Sex"].reset_index(drop=True)
    rates = positive.groupby(sex.to_numpy()).mean()
    by_hand = float(rates.max() - rates.min())
    verdict = report.verdicts[0]
    assert verdict.value == pytest.approx(by_hand)
    assert verdict.status == (PASS if by_hand <= 0.1 else FAIL)
    fairness = report.sections[SECTIONS.index("fairness")]
    assert "out-of-fold predictions" in fairness.lead
    assert "female" in fairness.body and "[" in fairness.body  # groups with intervals
    assert [p.name for p in fairness.plots] == ["fairness_by_group"]


def test_without_sensitive_columns_fairness_proposes_them(titanic_result, titanic):
    report = build_report(titanic_result, rows=titanic, targets=["dp_difference<=0.1"])
    assert report.verdicts[0].status == NOT_MEASURED
    body = report.sections[SECTIONS.index("fairness")].body
    assert "No sensitive column given" in body and "Sex" in body


def test_error_cohorts_name_the_worst_rows(titanic_result, titanic):
    report = build_report(titanic_result, rows=titanic)
    cohorts = report.sections[SECTIONS.index("cohorts")]
    assert "Worst:" in cohorts.lead and "<table>" in cohorts.body
    errors = titanic_result.oof["label"].astype(str) != titanic_result.oof["prediction"].astype(str)
    assert f"is {errors.mean():.3g}." in cohorts.lead  # the overall error rate, out of fold


def test_report_false_logs_no_report(titanic, store):
    from conftest import FAST_BUDGET

    from titanicml import Trainer
    from titanicml.store import get_client

    trainer = Trainer(target="Survived", time_budget=FAST_BUDGET, tracking_uri=store, report=False)
    result = trainer.fit(titanic)
    client = get_client(store)
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert client.list_artifacts(result.run_id, "report") == []
    assert client.list_artifacts(result.run_id, "model")  # the rest of the run is there


@pytest.mark.parametrize("flags, expected", [((), True), (("--no-report",), False)])
def test_train_and_quickstart_take_no_report(flags, expected):
    from titanicml.cli import build_parser
    from titanicml.cli.train import trainer_from_args

    for argv in (["quickstart", *flags], ["train", "--data", "t.csv", "--target", "y", *flags]):
        args = build_parser().parse_args(argv)
        assert trainer_from_args(args, "x", **{"target": "y"}).report is expected
