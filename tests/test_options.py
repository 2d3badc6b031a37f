"""One table of training options: every spelling of every option round-trips."""

import shlex
from dataclasses import fields

import pytest
import yaml

from titanicml.cli import build_parser
from titanicml.exceptions import ConfigError
from titanicml.jobs import automl_document, command_document, parse_job
from titanicml.options import (
    OPTIONS,
    automl_settings,
    option,
    options_from_words,
    spec_from_options,
    spec_options,
    spec_to_words,
)
from titanicml.spec import TrainSpec
from titanicml.trainer import Trainer

# Every option away from its default, so a dropped option cannot go unnoticed.
NON_DEFAULT = TrainSpec(
    target="Survived",
    task="binary",
    metric="roc_auc",
    time_budget=1800.0,
    cv=3,
    cv_repeats=3,
    seed=7,
    exclude=("Boat", "Body"),
    estimators=("lgbm", "xgb_limitdepth", "lrl2"),
    max_trials=12,
    n_jobs=2,
    ensemble=False,
    on_leakage="warn",
    on_no_skill="warn",
    holdout=0.2,
)


def test_the_table_covers_every_field_of_the_spec():
    assert [o.name for o in OPTIONS] == [f.name for f in fields(TrainSpec) if f.name != "dropped"]
    assert spec_options(NON_DEFAULT) != spec_options(TrainSpec(target="Survived"))
    changed = {
        name
        for name, value in spec_options(NON_DEFAULT).items()
        if value != spec_options(TrainSpec(target="Survived"))[name]
    }
    assert changed == {o.name for o in OPTIONS} - {"target"}


def test_cli_flags_round_trip():
    args = build_parser().parse_args(["train", "--data", "t.csv", *spec_to_words(NON_DEFAULT)])
    spec = spec_from_options({o.name: getattr(args, o.name) for o in OPTIONS})
    assert spec == NON_DEFAULT


def test_cli_defaults_are_the_spec_defaults():
    args = build_parser().parse_args(["train", "--data", "t.csv", "--target", "Survived"])
    spec = spec_from_options({o.name: getattr(args, o.name) for o in OPTIONS})
    assert spec == TrainSpec(target="Survived")


def test_quickstart_has_every_flag_but_the_target():
    args = build_parser().parse_args(["quickstart", "--no-ensemble", "--n-jobs", "1"])
    assert (args.ensemble, args.n_jobs) == (False, 1)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["quickstart", "--target", "Age"])


def test_command_job_round_trips():
    document = command_document(NON_DEFAULT, "azureml:titanic-dataset@latest")
    assert parse_job(yaml.safe_load(yaml.safe_dump(document))).spec == NON_DEFAULT


def test_automl_job_round_trips():
    document = automl_document(NON_DEFAULT, "azureml:titanic-dataset@latest")
    assert parse_job(yaml.safe_load(yaml.safe_dump(document))).spec == NON_DEFAULT
    # Azure's keys carry what Azure can spell; the titanicml: block only the rest.
    assert document["limits"]["timeout_minutes"] == 30
    assert document["limits"]["max_cores_per_trial"] == 2
    assert document["primary_metric"] == "AUC_weighted"
    assert document["training"]["allowed_training_algorithms"] == [
        "LightGBM",
        "XGBoostClassifier",
        "LogisticRegression",
    ]
    assert set(document["titanicml"]) == {
        "task",
        "cv_repeats",
        "seed",
        "exclude",
        "estimators",
        "on_leakage",
        "on_no_skill",
        "holdout",
    }


def test_azure_command_round_trips():
    from titanicml.backends.azure.jobs import train_command

    command = train_command(NON_DEFAULT)
    words = shlex.split(command.split("&&", 1)[1])
    found, others = options_from_words(words)
    assert spec_from_options(found) == NON_DEFAULT
    assert set(others) == {"--data", "--output"}


def test_azure_automl_entity_carries_every_option_azure_can_spell():
    pytest.importorskip("azure.ai.ml")
    from titanicml.backends.azure.jobs import automl_job

    job = automl_job(NON_DEFAULT, "binary", "azureml:data:1", "cpu-cluster", "exp")
    settings = automl_settings(NON_DEFAULT, "binary")
    assert job.target_column_name == settings["target_column_name"]
    # The SDK stores the metric as its enum (AUCWeighted for "AUC_weighted").
    assert str(job.primary_metric).replace("_", "").lower().endswith("aucweighted")
    assert settings["primary_metric"] == "AUC_weighted"
    assert job.n_cross_validations == settings["n_cross_validations"]
    assert job.limits.max_trials == settings["limits.max_trials"]
    assert job.limits.max_cores_per_trial == settings["limits.max_cores_per_trial"]
    assert job.limits.timeout_minutes == 30
    # The SDK keeps its own enums (ClassificationModels.LIGHT_GBM has the value "LightGBM").
    assert [a.value for a in job.training.allowed_training_algorithms] == settings[
        "training.allowed_training_algorithms"
    ]
    assert job.training.enable_stack_ensemble is False
    assert job.training.enable_vote_ensemble is False


def test_trainer_from_spec_and_back():
    trainer = Trainer.from_spec(NON_DEFAULT, experiment_name="e", track=False)
    assert trainer.spec() == NON_DEFAULT
    assert (trainer.experiment_name, trainer.track) == ("e", False)
    with pytest.raises(ConfigError, match=r"come.s. from the spec"):
        Trainer.from_spec(NON_DEFAULT, seed=1)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--cv", "three"], "--cv must be an integer, got 'three'"),
        (["--time-budget", "soon"], "--time-budget must be a number, got 'soon'"),
        (["--seed"], "--seed needs a value"),
    ],
)
def test_bad_words_name_the_flag(words, message):
    with pytest.raises(ConfigError, match=message):
        options_from_words(words)


def test_unknown_option_is_refused():
    with pytest.raises(ConfigError, match="unknown training option"):
        option("time_budgets")
    with pytest.raises(ConfigError, match=r"unknown training option.*bogus"):
        spec_from_options({"target": "y", "bogus": 1})
