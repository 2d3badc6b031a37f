from titanicml.datasets import TITANIC_TARGET, load_titanic, titanic_path


def test_embedded_titanic_has_the_documented_shape_and_target():
    frame = load_titanic()
    assert frame.shape == (1309, 14)
    assert set(frame[TITANIC_TARGET].unique()) == {0, 1}
    assert {"Boat", "Body", "Sex", "Pclass", "Age"} <= set(frame.columns)


def test_provenance_note_ships_beside_the_data():
    note = titanic_path().with_name("README.md").read_text()
    assert "Vanderbilt" in note and "leaks the target" in note
