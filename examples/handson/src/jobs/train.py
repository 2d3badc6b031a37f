"""Train a Titanic survival classifier (the hands-on's train.py)."""

import argparse
import os

import joblib
import mlflow
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

parser = argparse.ArgumentParser()
parser.add_argument("--input_data", type=str, required=True)
args = parser.parse_args()

mlflow.autolog()

df = pd.read_csv(args.input_data)
features = ["Age", "Pclass", "Sex"]
X = df[features]
y = df["Survived"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)

preprocess = ColumnTransformer(
    [
        ("age", SimpleImputer(strategy="median"), ["Age"]),
        ("pclass", "passthrough", ["Pclass"]),
        ("sex", OneHotEncoder(handle_unknown="ignore"), ["Sex"]),
    ]
)
model = Pipeline(
    [
        ("preprocess", preprocess),
        ("classifier", RandomForestClassifier(n_estimators=100, max_depth=5, random_state=42)),
    ]
)
model.fit(X_train, y_train)

accuracy = accuracy_score(y_test, model.predict(X_test))
mlflow.log_metric("test_accuracy", accuracy)
print(f"Accuracy: {accuracy:.3f}")

os.makedirs("outputs", exist_ok=True)
joblib.dump(model, "outputs/model.pkl")
print("Model saved to outputs/model.pkl")
