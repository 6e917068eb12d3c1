"""Flags refused by every runner before any work, leaving the files it would have written as
they were: a float flag of inf or nan (absl's float flags accept them, and a network trained
with them is NaN at chance), and two output flags that name one file. And a network that
diverges in training: one line naming the epoch, a non-zero exit, no output written."""

import os
import pathlib
import subprocess
import sys

import pytest

from tests.helpers import assert_failed_with_one_error

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(runner, *flags):
    return subprocess.run(
        [sys.executable, "-m", runner, *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


CASES = [
    ("experiments.mnist", "eta", "inf"),
    ("experiments.mnist", "l2", "inf"),
    ("experiments.mnist", "l1", "-inf"),
    ("experiments.mnist", "momentum", "nan"),
    ("experiments.conv", "eta", "inf"),
    ("experiments.conv", "l2", "inf"),
    ("experiments.conv", "dropout", "nan"),
    ("experiments.conv", "momentum", "-inf"),
]


@pytest.mark.parametrize("runner, flag, value", CASES)
def test_a_non_finite_float_flag_is_refused_and_writes_nothing(tmp_path, runner, flag, value):
    saved = tmp_path / ("net.json" if runner == "experiments.mnist" else "net.npz")
    saved.write_bytes(b"an earlier run's network")
    result = run(runner, f"--{flag}={value}", f"--save={saved}", "--epochs=1")
    assert_failed_with_one_error(result, f"--{flag} must be a finite number, got {value}")
    assert "Epoch" not in result.stdout  # refused before any training
    assert saved.read_bytes() == b"an earlier run's network"


COLLISIONS = [
    ("experiments.mnist", "net.json", ["--save={f}", "--metrics_out={f}"], "--save"),
    ("experiments.mnist", "checkpoint.npz", ["--checkpoint_dir={d}", "--save={f}"], "--save"),
    ("experiments.mnist", "w.png", ["--save={f}", "--misclassified_png={f}"], "--save"),
    ("experiments.conv", "out.json", ["--metrics_out={f}", "--predictions_out={f}"], "--metrics"),
    ("experiments.conv", "f.png", ["--filters_png={f}", "--misclassified_png={f}"], "--misclass"),
    ("experiments.conv", "net.npz", ["--save={f}", "--metrics_out={d}/./net.npz"], "--save"),
    ("experiments.sweep", "s.png", ["--jsonl={f}", "--png={f}"], "--jsonl"),
]


@pytest.mark.parametrize("runner, name, flags, first", COLLISIONS)
def test_two_outputs_naming_one_file_are_refused(tmp_path, runner, name, flags, first):
    path = tmp_path / name
    path.write_bytes(b"an earlier run's output")
    result = run(runner, *(f.format(f=path, d=tmp_path) for f in flags), "--epochs=1")
    assert_failed_with_one_error(result, f"name the same file {tmp_path}")
    assert first in result.stderr
    assert "Epoch" not in result.stdout
    assert path.read_bytes() == b"an earlier run's output"


DIVERGING = [
    ("experiments.mnist", ["net.json", "m.jsonl"], ["--l2=1e30", "--train_size=1000"]),
    (
        "experiments.conv",
        ["net.npz", "m.jsonl"],
        ["--eta=1e30", "--train_size=300", "--expand=none", "--layers=conv:4:5x5,fc:20,softmax"],
    ),
    ("experiments.sweep", [None, "s.jsonl"], ["--train_size=1000", "--seeds=0:2", "--l2=1e30"]),
]


@pytest.mark.parametrize("runner, names, flags", DIVERGING, ids=["mnist", "conv", "sweep"])
def test_a_diverged_network_stops_with_one_line_and_writes_nothing(tmp_path, runner, names, flags):
    save, lines = names
    flag = "jsonl" if runner == "experiments.sweep" else "metrics_out"
    outputs = [f"--{flag}={tmp_path / lines}"]
    if save:
        outputs += [f"--save={tmp_path / save}", f"--checkpoint_dir={tmp_path / 'run'}"]
    for name in filter(None, names):
        (tmp_path / name).write_bytes(b"an earlier run's output")
    result = run(runner, *flags, *outputs, "--epochs=2")
    assert_failed_with_one_error(result, "training diverged in epoch 0:")
    assert "try a smaller η (or λ) (--eta=" in result.stderr
    for name in filter(None, names):
        assert (tmp_path / name).read_bytes() == b"an earlier run's output"
    assert not (tmp_path / "run" / "checkpoint.npz").exists()  # the NaN network is not kept


LIBRARY_ERRORS = [
    (
        "experiments.chapter6",
        ["--table_only", "--dir={d}/missing"],
        "--dir={d}/missing: no such directory",
    ),
    (
        "experiments.baselines",
        ["--svm", "--svm_train_size=1"],
        "--svm_train_size=1: the first 1 training images are all of one class",
    ),
    (
        "experiments.baselines",
        ["--svm", "--svm_train_size=50001"],
        "--svm_train_size=50001 exceeds the 50000 training images",
    ),
    ("experiments.mnist", ["--hidden=30,,30"], "--hidden='30,,30' has an empty item"),
    ("experiments.sweep", ["--hidden=30,"], "--hidden='30,' has an empty item"),
    ("experiments.sweep", ["--eta=0.5,,"], "--eta"),
    ("experiments.slowdown", ["--softmax", "--z=1,,2"], "--z='1,,2' has an empty item"),
    ("experiments.slowdown", ["--starts=2:,1:1"], "--starts: '2:' is not w:b"),
    ("experiments.vanishing", ["--w=1,2,,4"], "--w='1,2,,4' has an empty item"),
    ("experiments.vanishing", ["--b=1,x,3,4"], "--b must be comma-separated numbers"),
    ("experiments.universality", ["--bumps=5,,10"], "--bumps='5,,10' has an empty item"),
    ("benchmarks.backprop_speed", ["--sizes=784,,10"], "--sizes='784,,10' has an empty item"),
]


@pytest.mark.parametrize("runner, flags, message", LIBRARY_ERRORS)
def test_input_a_library_would_fail_on_is_refused_first(tmp_path, runner, flags, message):
    result = run(runner, *(f.format(d=tmp_path) for f in flags))
    assert_failed_with_one_error(result, message.format(d=tmp_path))
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize(
    "runner, flag",
    [("experiments.mnist", "metrics_out"), ("experiments.sweep", "jsonl")],
)
def test_a_full_disk_names_the_flag_and_the_file(runner, flag):
    result = run(runner, "--train_size=1000", "--epochs=1", f"--{flag}=/dev/full")
    assert_failed_with_one_error(result, f"--{flag}=/dev/full: No space left on device")


TOO_LARGE = [
    ("experiments.mnist", ["--hidden=100000000"], "--hidden=100000000: training needs at least"),
    (
        "experiments.conv",
        ["--layers=fc:100000000,softmax", "--epochs=1"],
        "--layers=fc:100000000,softmax: training needs at least",
    ),
    (
        "experiments.sweep",
        ["--hidden=1000", "--seeds=0:1000000", "--epochs=1"],
        "for each of 1,000,000 networks",
    ),
    ("experiments.sweep", ["--seeds=0:2000000000"], "more than 1,048,576 seeds"),
    ("experiments.sweep", ["--seeds=5:3000000000"], "seed 2999999999 is outside"),
]


@pytest.mark.parametrize("runner, flags, message", TOO_LARGE)
def test_what_cannot_fit_is_refused_with_what_it_needs(runner, flags, message):
    """Refused before anything is allocated (the OS killed --hidden=100000000; XLA gave a
    24-line out-of-memory traceback for fc:100000000), naming what it needs and what there
    is."""
    result = run(runner, *flags)
    assert_failed_with_one_error(result, message)
    if "needs" in message:
        assert "GB" in result.stderr and "memory is" in result.stderr
