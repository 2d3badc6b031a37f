"""Group sizes of target-encoded key columns (a ticket's passengers, an agent's bookings)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from titanicml.features import plan_features
from titanicml.features.transformers import GroupSize


def test_group_sizes_against_a_hand_count():
    train = pd.DataFrame(
        {"ticket": ["a", "a", "b", None, "a"], "agent": ["x", "y", "y", "y", None]}
    )
    sizes = GroupSize()
    # ticket: a three times, b once, missing is a group of one; agent: x once, y three times
    np.testing.assert_array_equal(
        sizes.fit_transform(train), [[3, 1], [3, 3], [1, 3], [1, 3], [3, 1]]
    )
    # a new row joins its group: the training rows with its value, plus itself
    new = pd.DataFrame({"ticket": ["a", "c", None], "agent": ["y", "x", "z"]})
    np.testing.assert_array_equal(sizes.transform(new), [[4, 4], [1, 2], [1, 1]])
    assert list(sizes.get_feature_names_out(["ticket", "agent"])) == [
        "ticket_group_size",
        "agent_group_size",
    ]


def test_the_plan_gives_each_encoded_column_its_group_size_traced_to_it():
    from titanicml.explain.columns import feature_map
    from titanicml.model.predictor import prepare_rows

    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "ticket": [f"T{i}" for i in rng.integers(0, 60, n)],
            "fare": rng.normal(size=n),
        }
    )
    y = rng.integers(0, 2, n)
    plan = plan_features(frame)
    assert plan.names("encoded") == ["ticket"]
    assert "group size" in plan.to_frame().set_index("name").loc["ticket", "reason"]
    inputs, _ = prepare_rows(plan, frame)
    featurizer = plan.build()
    matrix = featurizer.fit_transform(inputs, y)
    names = list(featurizer.get_feature_names_out())
    column = names.index("group_size__ticket_group_size")
    counts = frame["ticket"].map(frame["ticket"].value_counts()).to_numpy()
    np.testing.assert_array_equal(matrix[:, column], counts)
    mapping = feature_map(featurizer, list(inputs.columns))
    assert mapping.sources[column] == "ticket"
