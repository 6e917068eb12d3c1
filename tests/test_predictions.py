"""nnjax.predictions: a vote's record of networks' classes round-trips, and refuses files
that are not records or that belong to other images."""

import json
import os
import stat

import numpy as np
import pytest

from nnjax import predictions

LABELS = np.array([3, 1, 4, 1, 5, 9, 2, 6])


def test_round_trip_keeps_classes_order_and_names(tmp_path):
    classes = np.array([[3, 1, 4, 1, 5, 9, 2, 6], [3, 7, 4, 1, 5, 9, 2, 0]], np.int64)
    path = tmp_path / "p.json"
    predictions.save(path, classes, LABELS, "mnist", "test", names=["a", "b"])
    record = predictions.load(path)
    assert (record.dataset, record.split, record.names) == ("mnist", "test", ("a", "b"))
    assert record.predictions.dtype == np.int32
    np.testing.assert_array_equal(record.predictions, classes)
    predictions.check(record, "mnist", "test", LABELS.astype(np.uint8), 10)  # any int dtype
    assert path.stat().st_size < 200 + 3 * classes.size  # about 2 bytes a class
    mask = os.umask(0o022)
    try:
        predictions.save(path, classes, LABELS, "mnist", "test")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the umask's, not mkstemp's


def test_digest_depends_on_the_labels_and_their_order():
    assert predictions.labels_digest(LABELS) == predictions.labels_digest(list(LABELS))
    assert predictions.labels_digest(LABELS) != predictions.labels_digest(LABELS[::-1])
    assert predictions.labels_digest(LABELS) != predictions.labels_digest(LABELS[:-1])


@pytest.mark.parametrize(
    "dataset, split, labels, num_classes, says",
    [
        ("tfds:kmnist", "test", LABELS, 10, "not of tfds:kmnist's test images"),
        ("mnist", "validation", LABELS, 10, "not of mnist's validation images"),
        ("mnist", "test", LABELS[:-1], 10, "labels differ"),
        ("mnist", "test", np.roll(LABELS, 1), 10, "labels differ"),
        ("mnist", "test", LABELS, 9, "a class 9, but mnist has 9 classes"),
    ],
)
def test_check_refuses_predictions_of_other_images(
    tmp_path, dataset, split, labels, num_classes, says
):
    predictions.save(tmp_path / "p.json", LABELS[None], LABELS, "mnist", "test")
    record = predictions.load(tmp_path / "p.json")
    predictions.check(record, "mnist", "test", LABELS, 10)
    with pytest.raises(predictions.PredictionsError, match=says):
        predictions.check(record, dataset, split, labels, num_classes)


def _record(*classes) -> str:
    return json.dumps(
        {
            "format": predictions.FORMAT,
            "dataset": "mnist",
            "split": "test",
            "labels_digest": "x",
            "networks": [{"name": f"n{i}", "predictions": c} for i, c in enumerate(classes)],
        }
    )


@pytest.mark.parametrize(
    "text, says",
    [
        ("not json", "not a JSON file"),
        (b"PK\x03\x04\xff\xfe binary", "not a JSON file"),
        ("[" * 100000 + "]" * 100000, "not a JSON file"),
        ("[1, 2]", "not a predictions file"),
        (json.dumps({"format": "other"}), "not a predictions file"),
        (json.dumps({"format": predictions.FORMAT, "dataset": "mnist"}), "missing or bad field"),
        (_record(), r"missing or of unequal lengths \(no networks\)"),
        (_record([1, 2], [1]), r"missing or of unequal lengths \(2, 1\)"),
        (_record([1, 2.0]), "not a list of integer classes"),
        (_record([1, True]), "not a list of integer classes"),
        (_record("12"), "not a list of integer classes"),
        (_record([1, -1]), "negative or too large"),
        (_record([1, 99999999999]), "negative or too large"),
    ],
)
def test_load_refuses_what_is_not_a_record(tmp_path, text, says):
    (tmp_path / "p.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(predictions.PredictionsError, match=says):
        predictions.load(tmp_path / "p.json")


def test_save_refuses_predictions_that_do_not_fit_the_labels(tmp_path):
    with pytest.raises(ValueError, match="integer classes"):
        predictions.save(tmp_path / "p.json", LABELS[None] + 0.5, LABELS, "mnist", "test")
    with pytest.raises(ValueError, match="shape"):
        predictions.save(tmp_path / "p.json", LABELS[None, :-1], LABELS, "mnist", "test")
    with pytest.raises(ValueError, match="classes from 0, got -1"):  # load would refuse it
        predictions.save(tmp_path / "p.json", LABELS[None] - 2, LABELS, "mnist", "test")
    with pytest.raises(ValueError, match="names"):
        predictions.save(
            tmp_path / "p.json", LABELS[None], LABELS, "mnist", "test", names=["a", "b"]
        )
    assert not list(tmp_path.iterdir())  # nothing written, not even half a file
