"""Train on the embedded Titanic data, save the model, and score the hands-on's passenger.

Run: python examples/quickstart.py
"""

from titanicml import Trainer, datasets, load_model


def main() -> None:
    trainer = Trainer(
        target="Survived",
        time_budget=30,
        experiment_name="titanic-demo",
    )
    result = trainer.fit(datasets.load_titanic())
    print(result.data_checks[result.data_checks["status"] != "passed"])
    print(result.leaderboard[["family", "cv_accuracy", "cv_accuracy_std", "n_trials"]])
    print(f"best CV accuracy {result.metrics['accuracy']:.3f}, MLflow run {result.run_id}")

    path = result.save("outputs/titanic-model", overwrite=True)
    model = load_model(path)
    passenger = {"Age": 22, "Pclass": 3, "Sex": "male"}
    print("survives?", model.predict(passenger)[0], "p =", model.predict_proba(passenger)[0, 1])


if __name__ == "__main__":
    main()
