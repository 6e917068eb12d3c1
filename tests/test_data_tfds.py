"""Tests for nnjax.data.tfds_source, TFDS datasets (mocked; no network, no TensorFlow)."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from nnjax import data
from nnjax.data import DataError, tfds_source
from tests.helpers import assert_one_line


@pytest.fixture
def tfds(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.testing import mocking

    # TFDS 4.9.10 bug: mock_data() assigns __getitems__ to a MagicMock
    # *instance* (it is not a magic method MagicMock binds), so the partial is
    # called without `self` and fails.  Accept both call shapes.
    orig = mocking._getitems

    def _getitems(*args, generator, serialized=False):
        self, keys = args if len(args) == 2 else (None, args[0])
        return orig(self, keys, generator, serialized=serialized)

    monkeypatch.setattr(mocking, "_getitems", _getitems)
    return tfds


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_tfds_mock(tfds, monkeypatch, tmp_path, name):
    # mock_data makes download_and_prepare a no-op, but the builder still
    # reports "not prepared": let the pre-download checks pass.
    monkeypatch.setattr(tfds_source, "_network_available", lambda: True)
    monkeypatch.setattr(tfds_source, "_tensorflow_available", lambda: True)
    with tfds.testing.mock_data(num_examples=50, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = data.load(f"tfds:{name}", tmp_path, validation_size=20, progress=None)
        builder = tfds.builder(name, data_dir=str(tmp_path / "tfds"))
        raw = builder.as_data_source(split="train").__getitems__(list(range(50)))
        raw_test = builder.as_data_source(split="test").__getitems__(list(range(50)))
    assert ds.name == f"tfds:{name}"
    assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (30, 20, 50)
    for split in (ds.train, ds.validation, ds.test):
        assert split.x.dtype == np.float32 and split.x.shape[1] == 784
        assert split.y.dtype == np.int32
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
        assert split.y.min() >= 0 and split.y.max() < 10
    assert ds.train.x.max() > 0.5  # random mock pixels, really scaled by 1/255
    images = np.stack([r["image"] for r in raw]).reshape(50, -1).astype(np.float32) / 255
    labels = np.array([r["label"] for r in raw])
    np.testing.assert_array_equal(ds.train.x, images[:30])
    np.testing.assert_array_equal(ds.validation.x, images[30:])  # the tail of train
    np.testing.assert_array_equal(ds.train.y, labels[:30])
    np.testing.assert_array_equal(ds.validation.y, labels[30:])
    np.testing.assert_array_equal(
        ds.test.x, np.stack([r["image"] for r in raw_test]).reshape(50, -1).astype(np.float32) / 255
    )
    np.testing.assert_array_equal(ds.test.y, [r["label"] for r in raw_test])


def test_tfds_offline_fails_fast(tfds, monkeypatch, tmp_path):
    monkeypatch.setattr(tfds_source, "_network_available", lambda: False)
    start = time.monotonic()
    with pytest.raises(DataError) as e:
        data.load("tfds:mnist", tmp_path, progress=None)
    assert time.monotonic() - start < 5
    msg = assert_one_line(e)
    assert "network is unreachable" in msg and str(tmp_path / "tfds") in msg
    assert "tfds build mnist" in msg and "idx:" in msg


def test_tfds_warnings_kept_quiet(tfds, monkeypatch, tmp_path, caplog):
    # A dataset not downloaded makes TFDS warn "Variant folder … has no
    # dataset_info.json"; our one-line error says it all.
    monkeypatch.setattr(tfds_source, "_network_available", lambda: False)

    def tfds_records():
        return [r for r in caplog.records if "tensorflow_datasets" in r.pathname]

    with caplog.at_level("INFO", logger="absl"):  # a runner's default verbosity
        with pytest.raises(DataError, match="network is unreachable"):
            data.load("tfds:mnist", tmp_path, progress=None)
        assert not tfds_records()
        # Only while loading: afterwards TFDS's warnings reach the log again.
        tfds.builder(
            "mnist", data_dir=str(tmp_path / "tfds"), file_format="array_record"
        ).is_prepared()
        assert "WARNING" in [r.levelname for r in tfds_records()]


def test_tfds_without_tensorflow_fails_fast(tfds, monkeypatch, tmp_path):
    monkeypatch.setattr(tfds_source, "_network_available", lambda: True)
    monkeypatch.setattr(tfds_source, "_tensorflow_available", lambda: False)
    with pytest.raises(DataError) as e:
        data.load("tfds:fashion_mnist", tmp_path, progress=None)
    assert "TensorFlow" in assert_one_line(e)


def test_tfds_unknown_and_unsuitable_names(tfds, tmp_path):
    with pytest.raises(DataError) as e:
        data.load("tfds:no_such_dataset_xyz", tmp_path, progress=None)
    assert "no_such_dataset_xyz" in assert_one_line(e)
    with pytest.raises(DataError) as e:
        data.load("tfds:imdb_reviews", tmp_path, progress=None)  # text, not images
    assert "image" in assert_one_line(e)


def test_tfds_missing_image_decoder_reported(tfds, monkeypatch, tmp_path):
    monkeypatch.setattr(tfds_source, "_network_available", lambda: True)
    monkeypatch.setattr(tfds_source, "_tensorflow_available", lambda: True)

    class NoDecoder:
        def __len__(self):
            return 3

        def __getitems__(self, keys):
            raise ImportError("Decoding images with NumPy requires either OpenCV or PIL.\nmore")

    with tfds.testing.mock_data(as_data_source_fn=lambda self, split, **kw: NoDecoder()):
        with pytest.raises(DataError) as e:
            data.load("tfds:mnist", tmp_path, validation_size=1, progress=None)
    assert "pip install pillow" in assert_one_line(e)


def test_tfds_import_errors(monkeypatch, tmp_path):
    def missing(mod):
        def fail(name):
            raise ModuleNotFoundError(f"No module named {mod!r}", name=mod)

        return fail

    monkeypatch.setattr(tfds_source, "_import_module", missing("importlib_resources"))
    with pytest.raises(DataError) as e:
        data.load("tfds:mnist", tmp_path)
    assert "pip install importlib_resources" in assert_one_line(e)
    monkeypatch.setattr(tfds_source, "_import_module", missing("tensorflow_datasets"))
    with pytest.raises(DataError) as e:
        data.load("tfds:mnist", tmp_path)
    assert "pip install tensorflow-datasets" in assert_one_line(e)


def test_network_probe_is_local_and_bounded(monkeypatch):
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        monkeypatch.setattr(tfds_source, "_PROBE_HOST", listener.getsockname())
        assert tfds_source._network_available()
    # The port is closed now: connection refused.
    monkeypatch.setattr(tfds_source, "_PROBE_TIMEOUT_S", 0.5)
    start = time.monotonic()
    assert not tfds_source._network_available()
    assert time.monotonic() - start < 2
