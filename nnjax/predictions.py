"""Networks' predictions as a small JSON file: what a plurality vote needs of a trained
network, about 20 KB where the network is megabytes.

    save("d5.predictions.json", classes, labels, dataset="mnist", split="test")
    record = load("d5.predictions.json")       # record.predictions: int32 (N_networks, n)
    check(record, "mnist", "test", labels, num_classes=10)   # PredictionsError unless they fit

A record names its dataset and split, and keeps a digest of the split's labels, so a vote
refuses predictions of other images.
"""

import dataclasses
import hashlib
import json

import numpy as np

from nnjax import files

FORMAT = "nnjax.predictions/1"
SUFFIX = ".json"


class PredictionsError(ValueError):
    """A file that is not a predictions record, or one that does not fit the images."""


@dataclasses.dataclass(frozen=True)
class Record:
    dataset: str  # e.g. "mnist", "tfds:fashion_mnist"
    split: str  # "test" or "validation"
    labels_digest: str  # labels_digest() of the split's labels
    predictions: np.ndarray  # int32 (N_networks, n): each network's class per image
    names: tuple  # a name per network (where it came from)


def labels_digest(labels) -> str:
    """A 16-hex-digit digest of the labels (n,), the same for the same classes in the same
    order whatever their integer dtype."""
    text = ",".join(map(str, np.asarray(labels).astype(np.int64).tolist()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save(path, predictions, labels, dataset: str, split: str, names=None) -> None:
    """Writes ``predictions`` (int array (N_networks, n), each network's class per image of
    ``split`` of ``dataset``, whose labels are ``labels`` (n,)) to the JSON file ``path``,
    whole or not at all; ``names`` (N_networks strings) say where each network came from."""
    predictions = np.asarray(predictions)
    if not np.issubdtype(predictions.dtype, np.integer):
        raise ValueError(f"predictions must be integer classes, got dtype {predictions.dtype}")
    if predictions.size and predictions.min() < 0:
        raise ValueError(f"predictions must be classes from 0, got {predictions.min()}")
    if predictions.ndim != 2 or predictions.shape[1] != len(labels):
        raise ValueError(
            f"predictions must have shape (N_networks, {len(labels)}), got {predictions.shape}"
        )
    names = list(names) if names is not None else [f"network {i}" for i in range(len(predictions))]
    if len(names) != len(predictions):
        raise ValueError(f"{len(names)} names for {len(predictions)} networks")
    record = {
        "format": FORMAT,
        "dataset": dataset,
        "split": split,
        "labels_digest": labels_digest(labels),
        "networks": [
            {"name": str(name), "predictions": p.tolist()} for name, p in zip(names, predictions)
        ],
    }
    text = json.dumps(record, separators=(",", ":")) + "\n"
    files.write_atomically(path, lambda f: f.write(text.encode()))


def _classes(values) -> list:
    """``values`` if it is a list of ints (not bools), else PredictionsError."""
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise PredictionsError('a network\'s "predictions" is not a list of integer classes')
    return values


def load(path) -> Record:
    """The record in the JSON file ``path``; PredictionsError (naming no path: the caller
    knows it) if it is not one that ``save`` wrote; OSError if it cannot be read."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise PredictionsError(f"not a JSON file ({type(e).__name__})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise PredictionsError(f'not a predictions file (no "format": "{FORMAT}")')
    try:
        networks = record["networks"]
        classes = [_classes(n["predictions"]) for n in networks]
        names = tuple(str(n["name"]) for n in networks)
        fields = str(record["dataset"]), str(record["split"]), str(record["labels_digest"])
    except (KeyError, TypeError) as e:
        raise PredictionsError(
            f"a predictions file with a missing or bad field ({type(e).__name__}: {e})"
        ) from None
    if not classes or len({len(c) for c in classes}) != 1:
        raise PredictionsError(
            "its networks' predictions are missing or of unequal lengths "
            f"({', '.join(str(len(c)) for c in classes) or 'no networks'})"
        )
    if any(v < 0 or v >= 2**31 for c in classes for v in c):
        raise PredictionsError("a class is negative or too large")
    return Record(*fields, np.array(classes, dtype=np.int32), names)


def check(record: Record, dataset: str, split: str, labels, num_classes: int) -> None:
    """PredictionsError unless ``record`` holds predictions of ``split`` of ``dataset``,
    whose labels are ``labels`` (n,), every one a class in [0, num_classes)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(f"num_classes must be an integer, got {num_classes!r}")
    if (record.dataset, record.split) != (dataset, split):
        raise PredictionsError(
            f"predictions of {record.dataset}'s {record.split} images, "
            f"not of {dataset}'s {split} images"
        )
    if record.predictions.shape[1] != len(labels) or record.labels_digest != labels_digest(labels):
        raise PredictionsError(
            f"predictions of {record.predictions.shape[1]} {split} images "
            f"whose labels differ from {dataset}'s {len(labels)} here"
        )
    if record.predictions.max() >= num_classes:
        raise PredictionsError(
            f"a class {record.predictions.max()}, but {dataset} has {num_classes} classes"
        )
