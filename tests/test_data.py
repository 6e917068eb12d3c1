"""Tests for nnjax.data itself: its public API, default_data_dir and load's dispatch."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from nnjax import data
from nnjax.data import DataError
from tests.helpers import assert_one_line

# ---------------------------------------------------------------------------
# public API / default_data_dir / dispatch
# ---------------------------------------------------------------------------


def test_public_api():
    for name in data.__all__:
        assert getattr(data, name).__module__.startswith("nnjax.data"), name
    for cls in (data.DataError, data.Split, data.Dataset):
        assert cls.__module__ == "nnjax.data"


def test_import_does_not_import_tensorflow_datasets():
    code = (
        "import sys, nnjax.data; print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('tensorflow_datasets', 'tensorflow')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=pathlib.Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NNJAX_DATA_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_data_dir() == tmp_path / "explicit"
    monkeypatch.delenv("NNJAX_DATA_DIR")
    assert data.default_data_dir() == tmp_path / "xdg" / "nnjax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.default_data_dir() == pathlib.Path.home() / ".cache" / "nnjax"


@pytest.mark.parametrize("name", ["cifar", "tfds:", "idx:", "Mnist2", ""])
def test_unknown_dataset(name, tmp_path):
    with pytest.raises(DataError) as e:
        data.load(name, tmp_path)
    msg = assert_one_line(e)
    assert "tfds:" in msg and "idx:" in msg


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(name=None), "a dataset is named by a string"),
        (dict(name="idx:/nonexistent", validation_size=1.5), "validation_size must be a whole"),
        (dict(name="idx:/nonexistent", validation_size="10"), "got '10'"),
    ],
)
def test_a_dataset_name_or_validation_size_of_the_wrong_kind_is_named(kwargs, words):
    with pytest.raises(DataError) as e:
        data.load(**kwargs)
    assert words in assert_one_line(e)
