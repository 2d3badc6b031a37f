import subprocess
import sys

import pytest

HEAVY = ("flaml", "mlflow", "sklearn", "azure", "lightgbm", "xgboost", "pandas")
ARRAYS = ("pandas", "numpy", "sklearn")


# What each statement must not import.
IMPORTS = {
    "import titanicml": HEAVY,
    "from titanicml.cli import build_parser; build_parser()": HEAVY,
    "import titanicml.batch": ("pandas", "pyarrow", "mlflow", "sklearn"),
    "import titanicml.data.checks": ARRAYS,
    "import titanicml.data.checks.leakage": ARRAYS,
    "import titanicml.data.columns": ARRAYS,
    "import titanicml.findings": ARRAYS,
    "import titanicml._utils.sklearn_compat": ARRAYS,
    "import titanicml.backends": ("azure",),
}


@pytest.mark.parametrize(
    ("statement", "forbidden"),
    IMPORTS.items(),
    ids=[statement.split(";")[0].split()[1] for statement in IMPORTS],
)
def test_import_loads_no_heavy_package(statement, forbidden):
    # A forbidden name is a prefix: "azure" covers azure.ai.ml, azure.core, azureml, ...
    code = (
        f"import sys; {statement}; "
        f"print(' '.join(p for p in {forbidden!r} if any(m.startswith(p) for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_lazy_exports_resolve():
    import titanicml

    assert titanicml.Trainer.__name__ == "Trainer"
    assert callable(titanicml.load_model)
    assert titanicml.datasets.load_titanic().shape == (1309, 14)
    assert "Trainer" in dir(titanicml)


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    import titanicml

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        titanicml.Nope  # noqa: B018
