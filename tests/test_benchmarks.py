"""The benchmarks' bad input: one line naming the flag, before any timing starts."""

import subprocess
import sys

import pytest

from tests.helpers import assert_failed_with_one_error
from tests.test_conv_cli import ROOT


@pytest.mark.parametrize(
    "module, flags, names",
    [
        ("conv_speed", ["--images=0"], "--images"),
        ("conv_speed", ["--repeats=0"], "--repeats"),
        ("conv_speed", ["--nets=nosuch"], "--nets: unknown preset 'nosuch'"),
        ("epoch_speed", ["--epochs=0"], "--epochs"),
        ("epoch_speed", ["--seed=-1"], "--seed"),
        ("epoch_speed", ["--data_dir=/proc/nonexistent"], "/proc/nonexistent"),
        ("expand_speed", ["--repeats=0"], "--repeats"),
        ("data_parallel", ["--mini_batch_sizes=abc"], "--mini_batch_sizes"),
        ("data_parallel", ["--device_counts=2,0"], "--device_counts"),
        ("sweep_speed", ["--k=a,2"], "--k must be comma-separated integers, got 'a,2'"),
        ("sweep_speed", ["--strategies=foo"], "--strategies"),
        ("sweep_speed", ["--hidden=30,0"], "--hidden"),
        ("expand_speed", ["--book_images=60000"], "--book_images"),
        ("conv_speed", ["stray"], "stray"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(module, flags, names):
    result = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_failed_with_one_error(result, names)
    assert len((result.stdout + result.stderr).strip().splitlines()) <= 2  # no docstring dump
