"""Plurality vote of an ensemble of networks."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import ensemble
from tests.helpers import assert_one_line


def brute_force(predictions):
    """Most votes; among tied classes, the one the earliest network voted for."""
    out = []
    for column in np.asarray(predictions).T:
        counts = collections.Counter(column.tolist())
        best = max(counts.values())
        out.append(next(c for c in column.tolist() if counts[c] == best))
    return np.array(out)


def vote(rows, num_classes=10):
    return np.asarray(ensemble.plurality_vote(np.array(rows, np.int32), num_classes))


def test_majority_wins():
    assert vote([[1, 2, 3], [4, 2, 3], [4, 5, 3]]).tolist() == [4, 2, 3]
    assert vote([[0], [7], [7], [7], [0]]).tolist() == [7]


def test_ties_go_to_the_earliest_networks_class():
    assert vote([[3], [8]]).tolist() == [3]  # two networks disagree: first
    assert vote([[8], [3]]).tolist() == [8]
    assert vote([[5], [5], [2], [2]]).tolist() == [5]  # 2–2
    assert vote([[2], [5], [5], [2]]).tolist() == [2]
    assert vote([[9], [1], [4]]).tolist() == [9]  # 1–1–1
    assert vote([[6], [0], [1], [2], [3]]).tolist() == [6]  # all disagree
    assert vote([[1], [2], [2], [1], [3]]).tolist() == [1]  # 2–2–1: the earlier of 1, 2
    assert vote([[3], [2], [2], [1], [1]]).tolist() == [2]  # 3 has fewer votes


def test_votes_outside_the_classes_are_refused_or_under_jit_count_for_nothing():
    with pytest.raises(ValueError, match="votes run from 3 to 12, outside the classes 0 to 9"):
        vote([[12], [3], [12]])
    with pytest.raises(ValueError, match="votes run from -1 to 4"):
        vote([[-1, 4], [2, 4]])
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        vote([[1]], 0)
    jitted = jax.jit(lambda p: ensemble.plurality_vote(p, 10))
    assert jitted(jnp.array([[12], [3], [12]])).tolist() == [3]
    assert jitted(jnp.array([[-1, 4], [-1, 4], [2, 10]])).tolist() == [2, 4]
    # where no network voted inside the classes, the first network's vote is the answer
    assert jitted(jnp.array([[12, 1], [11, 1]])).tolist() == [12, 1]
    assert vote(np.zeros((2, 0), np.int32)).shape == (0,)  # no examples: nothing to check
    assert vote([[2, 1], [2, 0]], jnp.int32(3)).tolist() == [2, 1]


def test_one_network_is_its_own_vote():
    p = np.random.default_rng(0).integers(0, 10, (1, 50), dtype=np.int32)
    out = ensemble.plurality_vote(p, 10)
    assert out.dtype == jnp.int32 and out.shape == (50,)
    np.testing.assert_array_equal(out, p[0])


@pytest.mark.parametrize("networks, classes", [(2, 3), (3, 10), (5, 10), (4, 2), (7, 4)])
def test_agrees_with_brute_force(networks, classes):
    rng = np.random.default_rng(networks * 100 + classes)
    p = rng.integers(0, classes, (networks, 400), dtype=np.int32)
    np.testing.assert_array_equal(ensemble.plurality_vote(p, classes), brute_force(p))


def test_jit_and_int64_input():
    p = np.random.default_rng(1).integers(0, 10, (5, 30))
    got = jax.jit(lambda p: ensemble.plurality_vote(p, 10))(jnp.asarray(p, jnp.int32))
    np.testing.assert_array_equal(got, brute_force(p))
    np.testing.assert_array_equal(ensemble.plurality_vote(p, 10), brute_force(p))


def test_misclassified_and_accuracy():
    votes = np.array([1, 2, 3, 4, 5, 6], np.int32)
    y = np.array([1, 0, 3, 0, 5, 0], np.int32)
    wrong = ensemble.misclassified(jnp.asarray(votes), y)
    assert wrong.tolist() == [1, 3, 5] and np.issubdtype(wrong.dtype, np.integer)
    assert ensemble.misclassified(y, y).tolist() == []
    assert ensemble.vote_accuracy(votes, y) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ensemble.plurality_vote(np.zeros(5, np.int32), 10), "predictions must be 2-D"),
        (
            lambda: ensemble.plurality_vote(np.zeros((0, 5), np.int32), 10),
            "predictions must be 2-D",
        ),
        (lambda: ensemble.plurality_vote(np.zeros((2, 5), np.float32), 10), "integer"),
        (lambda: ensemble.misclassified(np.zeros(5), np.zeros(4)), "votes and y"),
        (lambda: ensemble.vote_accuracy(np.zeros((2, 5)), np.zeros((2, 5))), "votes and y"),
    ],
)
def test_bad_shapes_are_one_line_errors(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in assert_one_line(e)
