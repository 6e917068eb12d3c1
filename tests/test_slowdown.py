"""Chapter 3's learning slowdown (one sigmoid neuron) and softmax layer, against NumPy."""

import pathlib

import jax
import numpy as np
import pytest

from nnjax import costs, slowdown
from tests.helpers import assert_failed_with_one_error, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]
CASES = [(0.6, 0.9, 1.0, 0.0), (2.0, 2.0, 1.0, 0.0), (-1.5, 0.3, 0.7, 1.0), (0.2, -3.0, 2.0, 0.4)]


def book_grads(w, b, x, y, cost):
    """The book's closed forms: quadratic ∂C/∂w = (a − y) σ'(z) x, ∂C/∂b = (a − y) σ'(z);
    cross-entropy ∂C/∂w = x (a − y), ∂C/∂b = a − y."""
    a = 1 / (1 + np.exp(-(w * x + b)))
    delta = (a - y) * a * (1 - a) if cost == "quadratic" else a - y
    return x * delta, delta


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
@pytest.mark.parametrize("w, b, x, y", CASES)
def test_gradients_are_the_books_closed_forms(cost, w, b, x, y):
    with jax.enable_x64(True):
        by_grad = [float(g) for g in slowdown.grad(w, b, x, y, costs.get(cost))]
        by_delta = [float(g) for g in slowdown.closed_form_grad(w, b, x, y, costs.get(cost))]
    np.testing.assert_allclose(by_grad, book_grads(w, b, x, y, cost), rtol=1e-12)
    np.testing.assert_allclose(by_delta, book_grads(w, b, x, y, cost), rtol=1e-12)


@pytest.mark.parametrize("cost", ["quadratic", "cross_entropy"])
@pytest.mark.parametrize("w, b", [(0.6, 0.9), (2.0, 2.0)])
def test_training_is_gradient_descent_on_the_closed_forms(cost, w, b):
    eta, epochs = 0.15, 300
    with jax.enable_x64(True):
        history = {
            k: np.asarray(v)
            for k, v in slowdown.train(costs.get(cost), w, b, 1.0, 0.0, eta, epochs).items()
        }
    ws, bs = [w], [b]
    for _ in range(epochs):
        gw, gb = book_grads(ws[-1], bs[-1], 1.0, 0.0, cost)
        ws.append(ws[-1] - eta * gw)
        bs.append(bs[-1] - eta * gb)
    a = 1 / (1 + np.exp(-(np.array(ws) + np.array(bs))))
    c = 0.5 * a**2 if cost == "quadratic" else -np.log(1 - a)
    for name, expected in (("w", ws), ("b", bs), ("a", a), ("cost", c)):
        assert history[name].shape == (epochs + 1,)
        np.testing.assert_allclose(history[name], expected, rtol=1e-9, err_msg=name)


def test_the_books_slowdown_shows():
    """From w = b = 2 the quadratic cost barely moves for 150 epochs, then falls; from the
    same start cross-entropy has fallen more than tenfold after 50."""
    quadratic = np.asarray(slowdown.train(costs.quadratic, 2.0, 2.0, 1.0, 0.0, 0.15, 300)["cost"])
    assert quadratic[150] > 0.85 * quadratic[0] and quadratic[300] < 0.1 * quadratic[0]
    entropy = np.asarray(slowdown.train(costs.cross_entropy, 2.0, 2.0, 1.0, 0.0, 0.15, 300)["cost"])
    assert entropy[50] < 0.1 * entropy[0]


@pytest.mark.parametrize("z, label", [([2.5, -1.0, 3.2, 0.5], 2), ([0.0, 1.0, -2.0], 0)])
def test_softmax_and_the_log_likelihoods_delta(z, label):
    y = np.eye(len(z))[label]
    with jax.enable_x64(True):
        a, delta = (np.asarray(v) for v in slowdown.softmax_delta(z, y))
        raised, _ = slowdown.softmax_delta([*z[:-1], z[-1] + 1], y)
    expected = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(a, expected, rtol=1e-12)
    assert a.sum() == pytest.approx(1, abs=1e-12)
    np.testing.assert_allclose(delta, expected - y, atol=1e-12)  # δ = a − y
    change = np.asarray(raised) - a
    assert change[-1] > 0 and np.all(change[:-1] < 0)  # raising z_n: a_n up, every other down


def slowdown_runner(*flags):
    return run_module("experiments.slowdown", *flags)


def test_the_runner_prints_the_table_and_draws(tmp_path):
    png = tmp_path / "slow.png"
    result = slowdown_runner("--epochs=20", "--starts=2:2,0.6:0.9", f"--png={png}")
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    header = next(line for line in result.stdout.splitlines() if "start" in line)
    assert header.split()[-2:] == ["epoch", "20"] and "epoch 50" not in header
    for w, b in [(2.0, 2.0), (0.6, 0.9)]:
        for cost in ("quadratic", "cross_entropy"):
            assert f"{book_grads(w, b, 1.0, 0.0, cost)[0]:.6f} by jax.grad" in result.stdout
    a0 = 1 / (1 + np.exp(-4.0))
    assert f"a    {a0:.4f}" in result.stdout


def test_the_runner_prints_softmax():
    result = slowdown_runner("--softmax", "--z=1,2,0")
    assert result.returncode == 0, result.stderr
    a = np.exp([1, 2, 0]) / np.exp([1, 2, 0]).sum()
    assert "(" + ", ".join(f"{v:.4f}" for v in a) + ")" in result.stdout
    assert "rise a_3; fall a_1, a_2" in result.stdout
    assert "C = −ln a_2 (y = e_2)" in result.stdout


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--eta=0"], "--eta"),
        (["--epochs=0"], "--epochs"),
        (["--starts=2"], "--starts"),
        (["--starts=a:1"], "--starts"),
        (["--costs=log_likelihood"], "--costs"),
        (["--png=x.jpg"], "--png"),
        (["--z=1"], "--z"),
        (["--softmax", "--png=x.png"], "--png is for the slowdown's runs"),
        (["--softmax", "--epochs=5"], "--epochs is for the slowdown's runs"),
        (["--costs=quadratic", "--z=1,2"], "--z is for --softmax"),
    ],
)
def test_bad_flags_are_one_line(tmp_path, flags, names):
    result = slowdown_runner(*[f.replace("x.", f"{tmp_path}/x.") for f in flags])
    assert_failed_with_one_error(result, names)
    assert not list(tmp_path.iterdir())
