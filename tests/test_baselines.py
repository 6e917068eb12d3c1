"""Chapter 1's baselines: nearest mean darkness and the SVM."""

import importlib.util
import pathlib

import numpy as np
import pytest

from nnjax import baselines, data
from tests.helpers import assert_failed_with_one_error, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_darkness_classifies_by_the_nearest_mean():
    x = np.array([[0.25, 0.25], [0.5, 0.0], [0.5, 0.5], [0.75, 0.25], [1.0, 1.0]])
    y = np.array([0, 0, 1, 1, 2])
    means = baselines.darkness_fit(x, y, 3)
    np.testing.assert_array_equal(means, [0.5, 1.0, 2.0])
    queries = np.array([[0.0, 0.0], [0.5, 0.375], [1.0, 0.75], [0.75, 0.75]])
    # darkness 0, 0.875, 1.75, and 1.5: equally far from 1.0 and 2.0, so the smaller digit
    assert list(baselines.darkness_predict(means, queries)) == [0, 1, 2, 1]


def test_darkness_on_the_books_mnist_is_the_books_22_25_percent():
    mnist = data.load("mnist", progress=None)
    means = baselines.darkness_fit(mnist.train.x, mnist.train.y)
    assert int((baselines.darkness_predict(means, mnist.test.x) == mnist.test.y).sum()) == 2225


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn absent")
def test_svm_runner_on_a_subset():
    result = run_module("experiments.baselines", "--svm", "--svm_train_size=1000")
    assert result.returncode == 0, result.stderr
    line = [l for l in result.stdout.splitlines() if l.startswith("SVC()")][0]
    assert int(line.split()[1]) > 8500  # 1,000 training images already give ~90%


@pytest.mark.parametrize("flag", ["--svm_2015_defaults", "--svm_train_size=1000"])
def test_svm_flags_without_svm_are_a_one_line_error(flag):
    result = run_module("experiments.baselines", flag, timeout=120)
    assert_failed_with_one_error(result, f"{flag.split('=')[0]} is for the SVM: add --svm")
    assert "Nearest mean darkness" not in result.stdout  # it stopped before any work


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn absent")
def test_an_svm_training_set_larger_than_the_data_is_refused_before_any_baseline():
    result = run_module("experiments.baselines", "--svm", "--svm_train_size=60000", timeout=120)
    assert_failed_with_one_error(result, "--svm_train_size=60000 exceeds the 50000 training")
    assert "Nearest mean darkness" not in result.stdout
