"""Explanations: additivity per estimator kind, contributions in the user's columns, plots, CLI."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from catboost import CatBoostClassifier, CatBoostRegressor
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LassoLars, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier, XGBRegressor

from titanicml.exceptions import ExtraNotInstalledError, ModelError
from titanicml.explain import (
    beeswarm_plot,
    dependence_plots,
    explain_model,
    importance_plot,
)
from titanicml.features import plan_features
from titanicml.model.ensemble import WeightedEnsemble
from titanicml.model.log_target import LogTargetRegressor
from titanicml.model.predictor import TabularModel, prepare_rows

# The exact paths add up to the model's output in float64 arithmetic. XGBoost computes
# its contributions and its margin in float32 (a margin of 5 has a float32 step of
# 5e-7), so its sum is exact to float32 precision only.
EXACT = 1e-6
FLOAT32 = 1e-5
# Exactness does not need converged linear models; the data are not scaled.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def synthetic(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers with gaps, a category, free text, dates and a high-cardinality code."""
    rng = np.random.default_rng(seed)
    words = ["red apple", "green pear", "ripe banana", "sour lemon", "sweet cherry", "old plum"]
    age = rng.normal(40, 12, n)
    age[rng.random(n) < 0.15] = np.nan
    city = rng.choice(["Paris", "Oslo", "Rome", "Lima"], n)
    note = [" ".join(rng.choice(words, 2)) for _ in range(n)]
    when = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D")
    code = [f"C{rng.integers(0, 120)}" for _ in range(n)]
    score = (
        np.nan_to_num(age - 40) / 10
        + (city == "Oslo")
        + np.array(["apple" in t for t in note])
        + (when.month.to_numpy() > 6)
        + rng.normal(0, 1, n)
    )
    frame = pd.DataFrame({"age": age, "city": city, "note": note, "when": when, "code": code})
    return frame, np.digitize(score, [0.0, 1.0])


def build(frame: pd.DataFrame, y: np.ndarray, estimator, task: str) -> TabularModel:
    plan = plan_features(frame, exclude=["Boat", "Body"], task=task)
    inputs, _ = prepare_rows(plan, frame)
    pipeline = Pipeline([("features", plan.build()), ("estimator", estimator)]).fit(inputs, y)
    classes = None if task == "regression" else sorted(set(y.tolist()))
    return TabularModel.from_fitted(pipeline, plan, task, classes)


@pytest.fixture(scope="module")
def titanic_xy(titanic):
    frame = titanic.drop(columns=["Survived"])
    return frame, titanic["Survived"].to_numpy()


@pytest.fixture(scope="module")
def synthetic_xy():
    return synthetic()


def estimator_margin(model: TabularModel, rows: pd.DataFrame) -> np.ndarray:
    """The estimator's own raw margin through its scikit-learn API (not explain's code)."""
    frame, _ = model.prepare(rows)
    matrix = model.pipeline_[:-1].transform(frame)
    estimator = model.pipeline_[-1]
    if isinstance(estimator, LGBMClassifier):
        return estimator.predict(matrix, raw_score=True)
    if isinstance(estimator, XGBClassifier):
        return estimator.predict(matrix, output_margin=True)
    if isinstance(estimator, CatBoostClassifier):
        return estimator.predict(matrix, prediction_type="RawFormulaVal")
    return estimator.decision_function(matrix)


def check_sums(explanation) -> None:
    """User-column contributions sum to the feature-level ones, row by row."""
    columns = explanation.contributions.sum(axis=1).to_numpy()
    features = explanation.feature_contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(columns, features, rtol=0, atol=1e-10)


MARGIN_MODELS = {
    "lightgbm": (lambda: LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1), EXACT),
    "xgboost": (lambda: XGBClassifier(n_estimators=40, random_state=0, n_jobs=1), FLOAT32),
    "linear": (lambda: LogisticRegression(max_iter=300), EXACT),
    "catboost": (
        lambda: CatBoostClassifier(
            n_estimators=40, thread_count=1, verbose=0, allow_writing_files=False
        ),
        EXACT,
    ),
}


@pytest.mark.parametrize("data", ["titanic", "synthetic"])
@pytest.mark.parametrize("kind", list(MARGIN_MODELS))
def test_binary_margin_adds_up_to_the_model_output(kind, data, titanic_xy, synthetic_xy):
    frame, y = titanic_xy if data == "titanic" else synthetic_xy
    y = (y == y.max()).astype(int)
    make, tolerance = MARGIN_MODELS[kind]
    model = build(frame, y, make(), "binary")
    explanation = explain_model(model, frame)
    assert explanation.output == "margin" and explanation.exact
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, estimator_margin(model, frame), rtol=0, atol=tolerance)
    # ... which is the log-odds of the probability the model predicts.
    probability = model.predict_proba(frame)[:, 1]
    np.testing.assert_allclose(1 / (1 + np.exp(-total)), probability, rtol=0, atol=1e-5)
    assert explanation.additivity_error <= tolerance
    check_sums(explanation)
    assert list(explanation.contributions.columns) == model.input_columns


@pytest.mark.parametrize("kind", list(MARGIN_MODELS))
def test_multiclass_margins_add_up_per_class(kind, synthetic_xy):
    frame, y = synthetic_xy
    make, tolerance = MARGIN_MODELS[kind]
    model = build(frame, y, make(), "multiclass")
    explanation = explain_model(model, frame)
    assert explanation.multiclass and explanation.labels == [0, 1, 2]
    assert explanation.contributions.columns.names == ["class", "column"]
    margins = np.column_stack(
        [
            explanation.base_value[k] + explanation.contributions[k].sum(axis=1).to_numpy()
            for k in explanation.labels
        ]
    )
    np.testing.assert_allclose(margins, estimator_margin(model, frame), rtol=0, atol=tolerance)
    softmax = np.exp(margins - margins.max(axis=1, keepdims=True))
    softmax /= softmax.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax, model.predict_proba(frame), rtol=0, atol=1e-5)
    one = explanation.for_class(1)
    np.testing.assert_allclose(
        one.contributions.to_numpy(), explanation.contributions[1].to_numpy()
    )
    check_sums(explanation)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RandomForestClassifier(20, max_leaf_nodes=32, random_state=0),
        lambda: ExtraTreesClassifier(20, max_leaf_nodes=32, random_state=0),
    ],
    ids=["random_forest", "extra_trees"],
)
def test_forests_explain_the_probability_exactly(make, titanic_xy):
    frame, y = titanic_xy
    model = build(frame, y, make(), "binary")
    frame = frame.sample(400, random_state=0)
    explanation = explain_model(model, frame)
    assert explanation.output == "probability" and explanation.method == "shap TreeExplainer"
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, model.predict_proba(frame)[:, 1], rtol=0, atol=EXACT)
    check_sums(explanation)


def test_deep_trees_are_explained_against_background_rows(synthetic_xy, monkeypatch):
    from titanicml.explain import paths

    monkeypatch.setattr(paths, "MAX_PATH_DEPTH", 0)
    frame, y = synthetic_xy
    forest = RandomForestClassifier(10, max_leaf_nodes=64, random_state=0)
    model = build(frame, y, forest, "multiclass")
    frame = frame.head(100)
    explanation = explain_model(model, frame)
    assert "interventional" in explanation.method
    for k in explanation.labels:
        total = explanation.base_value[k] + explanation.contributions[k].sum(axis=1).to_numpy()
        np.testing.assert_allclose(total, model.predict_proba(frame)[:, k], rtol=0, atol=EXACT)


@pytest.mark.parametrize(
    "make, tolerance",
    [
        (lambda: LGBMRegressor(n_estimators=40, verbose=-1, n_jobs=1), EXACT),
        (lambda: XGBRegressor(n_estimators=40, n_jobs=1), FLOAT32),
        (lambda: LassoLars(alpha=0.01), EXACT),
        (lambda: RandomForestRegressor(20, max_leaf_nodes=32, random_state=0), EXACT),
        (
            lambda: CatBoostRegressor(
                n_estimators=40, thread_count=1, verbose=0, allow_writing_files=False
            ),
            EXACT,
        ),
    ],
    ids=["lightgbm", "xgboost", "linear", "random_forest", "catboost"],
)
def test_regressors_explain_their_prediction(make, tolerance, synthetic_xy):
    frame, y = synthetic_xy
    target = y + np.random.default_rng(1).normal(0, 0.3, len(y))
    model = build(frame, target, make(), "regression")
    explanation = explain_model(model, frame)
    assert explanation.output == "prediction" and explanation.labels == [None]
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, model.predict(frame), rtol=0, atol=tolerance)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_ensemble_adds_up_to_its_probabilities(task, synthetic_xy):
    frame, y = synthetic_xy
    y = (y == 2).astype(int) if task == "binary" else y
    members = [
        LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1),
        RandomForestClassifier(20, max_leaf_nodes=32, random_state=0),
        LogisticRegression(max_iter=300),
        XGBClassifier(n_estimators=30, n_jobs=1),
    ]
    plan = plan_features(frame, task=task)
    inputs, _ = prepare_rows(plan, frame)
    featurizer = plan.build().fit(inputs, y)
    matrix = featurizer.transform(inputs)
    fitted = [m.fit(matrix, y) for m in members]
    ensemble = WeightedEnsemble.from_fitted(fitted, [4, 3, 2, 1], ["lgbm", "rf", "lrl1", "xgb"])
    pipeline = Pipeline([("features", featurizer), ("estimator", ensemble)])
    model = TabularModel.from_fitted(pipeline, plan, task, sorted(set(y.tolist())))
    explanation = explain_model(model, frame)
    assert explanation.output == "probability" and not explanation.exact
    proba = model.predict_proba(frame)
    for index, label in enumerate(model.labels):
        if label not in explanation.labels:
            continue
        one = explanation.for_class(label) if explanation.multiclass else explanation
        total = one.base_value + one.contributions.sum(axis=1).to_numpy()
        np.testing.assert_allclose(total, proba[:, index], rtol=0, atol=EXACT)
    check_sums(explanation)


def test_featurized_columns_are_traced_to_their_input_column(synthetic_xy, titanic_xy):
    frame, y = synthetic_xy
    model = build(frame, y, LGBMClassifier(n_estimators=5, verbose=-1, n_jobs=1), "multiclass")
    explanation = explain_model(model, frame)
    source = dict(zip(explanation.features.names, explanation.features.sources, strict=True))
    kinds = {
        "numeric__missingindicator_age": "age",
        "categorical__city_Oslo": "city",
        "text_note__note_apple": "note",
        "datetime__when_month": "when",
        "encoded__code_1": "code",  # one target-encoded column per class
    }
    for feature, column in kinds.items():
        assert source[feature] == column
    # Titanic: Sex's two one-hot columns are summed into "Sex", Name's words into "Name".
    frame, y = titanic_xy
    model = build(frame, y, LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1), "binary")
    explanation = explain_model(model, frame.head(50))
    features = explanation.feature_contributions
    for column, prefix in (("Sex", "categorical__Sex_"), ("Name", "text_Name__")):
        parts = [c for c in features.columns if c.startswith(prefix)]
        assert len(parts) >= 2
        np.testing.assert_allclose(
            explanation.contributions[column], features[parts].sum(axis=1), atol=1e-12
        )
    assert {"Boat", "Body"}.isdisjoint(explanation.contributions.columns)


def test_importance_and_plots(titanic_xy, tmp_path):
    frame, y = titanic_xy
    model = build(frame, y, LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1), "binary")
    explanation = explain_model(model, frame.head(500))
    importance = explanation.importance()
    expected = explanation.contributions.abs().mean().sort_values(ascending=False)
    pd.testing.assert_series_equal(importance, expected.rename("importance"))
    assert importance.index[0] == "Sex"
    figures = {"importance": importance_plot(explanation), "beeswarm": beeswarm_plot(explanation)}
    dependence = dependence_plots(explanation, top=3)
    assert list(dependence) == list(importance.index[:3])
    figures.update({f"dependence_{c}": f for c, f in dependence.items()})
    for name, figure in figures.items():
        path = tmp_path / f"{name}.png"
        figure.savefig(path)
        assert path.stat().st_size > 5_000, name
    assert explanation.top(0, 3)[0][0] in importance.index


def test_errors_name_the_problem(synthetic_xy, monkeypatch):
    frame, y = synthetic_xy
    model = build(frame, y, KNeighborsClassifier(), "multiclass")
    with pytest.raises(ModelError, match="cannot explain a KNeighborsClassifier"):
        explain_model(model, frame)
    forest = build(frame, y, RandomForestClassifier(5, max_leaf_nodes=8), "multiclass")
    with pytest.raises(ModelError, match="for_class"):
        beeswarm_plot(explain_model(forest, frame.head(20)))
    monkeypatch.setitem(sys.modules, "shap", None)  # as if the explain extra were missing
    with pytest.raises(ExtraNotInstalledError, match=r'pip install "titanicml\[explain\]"'):
        explain_model(forest, frame.head(5))


@pytest.fixture(scope="module")
def trained(titanic, tmp_path_factory):
    from titanicml import Trainer

    trainer = Trainer(
        target="Survived",
        time_budget=4,
        max_trials=4,
        estimators=["lgbm"],
        exclude=["Boat", "Body"],
        track=False,
    )
    result = trainer.fit(titanic)
    return result, result.save(tmp_path_factory.mktemp("explain") / "model")


def test_result_explain_and_the_loaded_model_agree(trained, titanic):
    from titanicml import load_model

    result, path = trained
    rows = titanic.head(30)
    explanation = result.explain(rows)
    loaded = explain_model(load_model(path), rows)
    pd.testing.assert_frame_equal(explanation.contributions, loaded.contributions)
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    probability = result.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(1 / (1 + np.exp(-total)), probability, atol=1e-9)


@pytest.fixture(scope="module")
def saved_model_dir(titanic_xy, tmp_path_factory):
    """A Titanic LightGBM model saved as titanicml saves every model (signed directory)."""
    from titanicml.model.artifact import save_model
    from titanicml.model.predictor import example_rows

    frame, y = titanic_xy
    model = build(frame, y, LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1), "binary")
    model.info = {"input_example": example_rows(frame[model.input_columns])}
    target = tmp_path_factory.mktemp("explain-cli") / "model"
    return save_model(model, target, metadata={"target": "Survived"})


def test_cli_prints_importance_and_writes_files(saved_model_dir, titanic, tmp_path, cli):
    path = saved_model_dir
    data = tmp_path / "rows.csv"
    titanic.to_csv(data, index=False)
    out = tmp_path / "explained"
    run = cli("explain", "--model", path, "--data", data, "--rows", "40", "--output", out)
    assert run.returncode == 0, run.stderr
    assert "Importance" in run.stdout and "Sex" in run.stdout
    table = pd.read_csv(out / "contributions.csv")
    assert len(table) == 40 and {"row", "base_value", "Sex", "Age", "output"} <= set(table)
    columns = [c for c in table.columns if c not in ("row", "base_value", "output")]
    margin = table["base_value"] + table[columns].sum(axis=1)
    np.testing.assert_allclose(margin, table["output"], atol=1e-6)
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "beeswarm.png" in pngs and "importance.png" in pngs
    assert sum(name.startswith("dependence_") for name in pngs) == 3
    assert all((out / name).stat().st_size > 5_000 for name in pngs)
    # Without --output: contributions.csv in the current folder, no plots.
    here = tmp_path / "here"
    here.mkdir()
    run = cli("explain", "--model", path, "--data", data, "--rows", "5", cwd=here)
    assert run.returncode == 0, run.stderr
    assert [p.name for p in here.iterdir() if not p.name.startswith(".")] == ["contributions.csv"]


def test_cli_bad_input_exits_2(saved_model_dir, tmp_path, cli):
    path = saved_model_dir
    missing = cli("explain", "--model", path, "--data", tmp_path / "nope.csv")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr
    data = tmp_path / "rows.csv"
    pd.DataFrame({"Age": ["old"]}).to_csv(data, index=False)
    typed = cli("explain", "--model", path, "--data", data)
    assert typed.returncode == 2 and "Age" in typed.stderr
    rows = cli("explain", "--model", path, "--data", data, "--rows", "0")
    assert rows.returncode == 2 and "positive number of rows" in rows.stderr
    model = cli("explain", "--model", tmp_path / "no-model", "--data", data)
    assert model.returncode == 2 and "Traceback" not in model.stderr


def test_a_wrapped_pickle_is_explained_in_its_own_columns(titanic_xy, tmp_path):
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from titanicml.model.pickled import build_pickled_model, read_pickle

    frame, y = titanic_xy
    columns = ["Pclass", "Sex", "Age", "Fare", "Embarked"]
    numbers = make_pipeline(SimpleImputer(), StandardScaler())
    categories = make_pipeline(
        SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
    )
    featurizer = ColumnTransformer(
        [("num", numbers, ["Age", "Fare", "Pclass"]), ("cat", categories, ["Sex", "Embarked"])]
    )
    pipeline = make_pipeline(featurizer, LogisticRegression(max_iter=300)).fit(frame[columns], y)
    joblib.dump(pipeline, tmp_path / "model.pkl")
    model = build_pickled_model(read_pickle(tmp_path / "model.pkl"))
    explanation = explain_model(model, frame)
    assert list(explanation.contributions.columns) == columns
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    probability = model.predict_proba(frame)[:, 1]
    np.testing.assert_allclose(total, np.log(probability / (1 - probability)), atol=EXACT)


def test_cli_multiclass_writes_a_row_per_class(synthetic_xy, tmp_path, cli):
    from titanicml.model.artifact import save_model
    from titanicml.model.predictor import example_rows

    frame, y = synthetic_xy
    model = build(frame, y, LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1), "multiclass")
    model.info = {"input_example": example_rows(frame[model.input_columns])}
    path = save_model(model, tmp_path / "model", metadata={"target": "y"})
    data = tmp_path / "rows.csv"
    frame.to_csv(data, index=False)  # dates and text as CSV text
    out = tmp_path / "out"
    bad = cli("explain", "--model", path, "--data", data, "--output", out, "--class", "7")
    assert bad.returncode == 2 and "classes are 0, 1, 2" in bad.stderr
    assert not out.exists()  # nothing written for a mistake
    run = cli("explain", "--model", path, "--data", data, "--rows", "20", "--output", out,
              "--class", "2")  # fmt: skip
    assert run.returncode == 0, run.stderr
    table = pd.read_csv(out / "contributions.csv")
    assert len(table) == 60 and sorted(set(table["class"])) == [0, 1, 2]
    columns = ["age", "city", "note", "when", "code"]
    margin = table["base_value"] + table[columns].sum(axis=1)
    np.testing.assert_allclose(margin, table["output"], atol=1e-6)
    assert (out / "beeswarm.png").stat().st_size > 5_000


def test_regression_ensemble_adds_up_to_its_prediction(synthetic_xy):
    frame, y = synthetic_xy
    target = y + np.random.default_rng(2).normal(0, 0.3, len(y))
    plan = plan_features(frame, task="regression")
    inputs, _ = prepare_rows(plan, frame)
    featurizer = plan.build().fit(inputs, target)
    matrix = featurizer.transform(inputs)
    members = [
        LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1),
        RandomForestRegressor(10, max_leaf_nodes=32, random_state=0),
        LassoLars(alpha=0.01),
    ]
    ensemble = WeightedEnsemble.from_fitted(
        [m.fit(matrix, target) for m in members], [3, 2, 1], ["lgbm", "rf", "lassolars"]
    )
    pipeline = Pipeline([("features", featurizer), ("estimator", ensemble)])
    model = TabularModel.from_fitted(pipeline, plan, "regression")
    explanation = explain_model(model, frame)
    assert explanation.output == "prediction" and explanation.exact
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, model.predict(frame), rtol=0, atol=EXACT)


def test_log_target_model_explains_its_prediction(synthetic_xy):
    frame, y = synthetic_xy
    price = np.exp(1.0 + y + np.random.default_rng(3).normal(0, 0.3, len(y)))
    log_model = LogTargetRegressor(LGBMRegressor(n_estimators=30, verbose=-1, n_jobs=1))
    model = build(frame, price, log_model, "regression")
    explanation = explain_model(model, frame)
    assert explanation.output == "prediction" and not explanation.exact
    total = explanation.base_value + explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, model.predict(frame), rtol=1e-9, atol=1e-6)
    # the base is the log-scale base carried back: expm1 of the mean log-scale output
    inner = model.pipeline.named_steps["estimator"].regressor_
    matrix = model.pipeline.named_steps["features"].transform(prepare_rows(model.plan, frame)[0])
    log_base = inner.predict(matrix, pred_contrib=True)[:, -1][0]
    assert explanation.base_value == pytest.approx(np.expm1(log_base))
    # in an ensemble with a raw-scale member the sum stays the ensemble's prediction
    plain = build(
        frame, price, RandomForestRegressor(10, max_leaf_nodes=32, random_state=0), "regression"
    )
    ensemble = WeightedEnsemble.from_fitted(
        [model.pipeline.named_steps["estimator"], plain.pipeline.named_steps["estimator"]],
        [3, 1],
        ["lgbm_log1p", "rf"],
    )
    pipeline = Pipeline(
        [("features", model.pipeline.named_steps["features"]), ("estimator", ensemble)]
    )
    mixed = TabularModel.from_fitted(pipeline, model.plan, "regression")
    mixed_explanation = explain_model(mixed, frame)
    total = mixed_explanation.base_value + mixed_explanation.contributions.sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, mixed.predict(frame), rtol=1e-9, atol=1e-6)
