"""TFDS datasets via ``tfds.data_source`` (array_record; no TensorFlow needed).

``tensorflow_datasets`` is imported only when a ``tfds:`` dataset is loaded.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import pathlib
import socket
import threading
import urllib.parse

import numpy as np

from nnjax.data.common import (
    DataError,
    Dataset,
    Progress,
    Split,
    _one_line,
    _split_train,
    _to_unit_float,
)

_PROBE_HOST = ("storage.googleapis.com", 443)
_PROBE_TIMEOUT_S = 3.0
_TFDS_READ_CHUNK = 4096


def _import_module(name: str):
    return importlib.import_module(name)


def _import_tfds():
    try:
        return _import_module("tensorflow_datasets")
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing == "importlib_resources":
            raise DataError(
                "tensorflow_datasets needs the module importlib_resources: "
                "pip install importlib_resources"
            ) from e
        if missing.split(".")[0] == "tensorflow_datasets":
            raise DataError(
                "tfds: datasets need tensorflow-datasets: pip install tensorflow-datasets"
            ) from e
        raise DataError(
            f"importing tensorflow_datasets failed: no module named {missing!r}; pip install it"
        ) from e
    except ImportError as e:
        raise DataError(
            f"importing tensorflow_datasets failed ({_one_line(e)}); reinstall tensorflow-datasets"
        ) from e


def _network_available() -> bool:
    """Whether a TCP connection to the TFDS download host (or the HTTPS proxy)
    opens within a few seconds.  Runs in a thread so a hanging DNS lookup
    cannot block us for longer than the timeout."""
    host, port = _PROBE_HOST
    proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if proxy:
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            host, port = parsed.hostname, parsed.port or 80
    result: list[bool] = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="nnjax-net-probe", daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S + 0.5)
    return bool(result and result[0])


def _tensorflow_available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


class _DropTfdsChatter(logging.Filter):
    """Drops TFDS's warnings and info (e.g. "Variant folder … has no dataset_info.json" for
    a dataset not downloaded yet): our own errors say what matters, in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "tensorflow_datasets" not in record.pathname


@contextlib.contextmanager
def _quiet_tfds():
    """While open, TFDS logs (through absl's logger) only its errors, whatever the
    verbosity: its warnings while nnjax looks for and reads a dataset repeat, less clearly,
    what nnjax's own errors say (``tfds.builder`` directly shows them all)."""
    logger, chatter = logging.getLogger("absl"), _DropTfdsChatter()
    logger.addFilter(chatter)
    try:
        yield
    finally:
        logger.removeFilter(chatter)


def _read_source(src, image_key: str, label_key: str, image_shape, n: int):
    """Reads all ``n`` records of a TFDS data source into uint8/int32 arrays."""
    images = np.empty((n, *image_shape), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int32)
    for start in range(0, n, _TFDS_READ_CHUNK):
        keys = list(range(start, min(n, start + _TFDS_READ_CHUNK)))
        records = src.__getitems__(keys)  # batched: faster than src[i] one at a time
        for i, rec in zip(keys, records):
            images[i] = rec[image_key]
            labels[i] = rec[label_key]
    return images, labels


def load_tfds(
    name: str, tfds_dir: pathlib.Path, progress: Progress, validation_size: int | None
) -> Dataset:
    """The TFDS dataset ``name`` from ``tfds_dir`` (downloaded and prepared there first
    where the network and TensorFlow allow) as a ``Dataset``: x float32 (N, H·W·C) in
    [0, 1], y int32 (N,), the last ``validation_size`` training images held out for
    validation. Raises DataError saying what to do."""
    label = f"tfds:{name}"
    tfds = _import_tfds()
    with _quiet_tfds():
        try:
            builder = tfds.builder(name, data_dir=os.fspath(tfds_dir), file_format="array_record")
        except Exception as e:
            raise DataError(
                f"{label}: TFDS has no such dataset ({_one_line(e)}); see https://www.tensorflow.org/datasets/catalog"
            ) from e
        prepared = builder.is_prepared()

    features = builder.info.features
    image_key, label_key = tuple(builder.info.supervised_keys or ("image", "label"))[:2]
    try:
        image_feature, label_feature = features[image_key], features[label_key]
        image_shape = tuple(int(s) for s in image_feature.shape)
        num_classes = int(label_feature.num_classes)
        if np.dtype(image_feature.np_dtype) != np.uint8 or len(image_shape) != 3:
            raise TypeError(f"image is {image_feature.np_dtype} {image_feature.shape}")
    except Exception as e:
        raise DataError(
            f"{label} is not a fixed-size uint8 image classification dataset ({_one_line(e)}); "
            "use an MNIST-like dataset such as tfds:mnist or tfds:fashion_mnist"
        ) from e

    if not prepared:
        build_cmd = f"tfds build {name} --file_format=array_record --data_dir={tfds_dir}"
        if not _network_available():
            raise DataError(
                f"{label} is not downloaded in {tfds_dir} and the network is unreachable; "
                f"download it on a machine with internet ({build_cmd}) and copy it, "
                "or use another dataset (idx:DIR, mnist)"
            )
        if not _tensorflow_available():
            raise DataError(
                f"{label} is not prepared in {tfds_dir}, and preparing it needs TensorFlow "
                f"(not installed); run `{build_cmd}` where TensorFlow is installed and copy it, "
                "or use another dataset (idx:DIR, mnist)"
            )
        progress(f"Downloading and preparing {label} into {tfds_dir} …")
        try:
            builder.download_and_prepare(file_format="array_record")
        except Exception as e:
            raise DataError(
                f"{label}: download/prepare into {tfds_dir} failed ({_one_line(e)}); "
                f"run `{build_cmd}` by hand, or use another dataset (idx:DIR, mnist)"
            ) from e

    try:
        with _quiet_tfds():
            train_src = builder.as_data_source(split="train")
            test_src = builder.as_data_source(split="test")
            x_train, y_train = _read_source(
                train_src, image_key, label_key, image_shape, len(train_src)
            )
            x_test, y_test = _read_source(
                test_src, image_key, label_key, image_shape, len(test_src)
            )
    except DataError:
        raise
    except ImportError as e:
        # Decoding images without TensorFlow needs Pillow (or OpenCV).
        raise DataError(
            f"{label}: reading images failed ({_one_line(e)}); pip install pillow"
        ) from e
    except Exception as e:
        raise DataError(
            f"{label}: reading the train/test splits from {tfds_dir} failed ({_one_line(e)}); "
            f"rebuild it with `tfds build {name} --file_format=array_record --data_dir={tfds_dir}`"
        ) from e

    train, validation = _split_train(label, _to_unit_float(x_train), y_train, validation_size)
    test = Split(_to_unit_float(x_test), y_test)
    return Dataset(label, train, validation, test, image_shape=image_shape, num_classes=num_classes)
