"""Chapter 4: steps, bumps and towers built by hand approximate functions (nnjax.universality),
and its runner (experiments.universality)."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import network, universality
from tests.helpers import assert_failed_with_one_error, assert_one_line, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]


def book_f(x):
    return 0.2 + 0.4 * x**2 + 0.3 * x * np.sin(15 * x) + 0.05 * np.cos(50 * x)


def f2(x, y):
    return 0.5 + 0.3 * np.sin(3 * x) * np.cos(4 * y)


def np_sigmoid(z):
    return np.exp(-np.logaddexp(0, -z))


def test_a_neuron_with_a_large_weight_is_a_step_at_minus_b_over_w():
    for s in (0.2, 0.5, 0.83):
        w, b = universality.step(s)
        assert w == 1000 and float(b) == pytest.approx(-1000 * s, rel=1e-6)
        x = np.array([0.0, s - 0.01, s, s + 0.01, 1.0], np.float32)
        a = np.asarray(universality.sigma(w * x + b))
        assert a[0] < 1e-4 and a[1] < 1e-4 and a[3] > 1 - 1e-4 and a[4] > 1 - 1e-4
        assert a[2] == pytest.approx(0.5, abs=1e-2)


def test_two_steps_with_output_weights_h_and_minus_h_are_a_bump_of_height_h():
    x = np.array([0.05, 0.25, 0.4, 0.55, 0.9], np.float32)
    for h in (0.7, -1.3, 4.0):
        out = np.asarray(universality.bump(x, 0.2, 0.6, h))
        np.testing.assert_allclose(out, [0, h, h, h, 0], atol=1e-3 * abs(h))


def reference_bumps(f, n, x, w=1000.0):
    """The bumps' approximation in float64 NumPy, from the book's description alone."""
    s = np.linspace(0, 1, n + 1)
    s[0], s[-1] = -10 / w, 1 + 10 / w
    middles = (np.arange(n) + 0.5) / n
    h = np.log(f(middles) / (1 - f(middles)))
    z = sum(h[i] * (np_sigmoid(w * (x - s[i])) - np_sigmoid(w * (x - s[i + 1]))) for i in range(n))
    return np_sigmoid(z)


def test_the_hand_built_network_computes_the_bumps_through_network_feedforward():
    x = universality.grid(1000)
    for n in (5, 10, 50):
        params = universality.bumps_network(book_f, n)
        assert network.sizes_of(params) == [1, 2 * n, 1]
        out = np.asarray(network.feedforward(params, jnp.asarray(x, jnp.float32)[:, None]))[:, 0]
        own = np.asarray(universality.bumps_output(book_f, n, x))
        np.testing.assert_allclose(out, own, atol=2e-6)
        np.testing.assert_allclose(out, reference_bumps(book_f, n, x), atol=2e-5)


def test_the_error_falls_as_the_number_of_bumps_grows():
    errors = []
    for n in (5, 10, 50):
        g = universality.network_function(universality.bumps_network(book_f, n))
        errors.append(universality.max_error(book_f, g))
        x = universality.grid(1000)
        assert errors[-1] == pytest.approx(np.max(np.abs(book_f(x) - g(x))))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1  # a constant is off by 0.38 somewhere


def test_a_function_outside_0_1_is_refused_in_one_line():
    for f in (lambda x: 0.5 + x, lambda x: 0 * x, lambda x: np.full_like(x, np.nan)):
        with pytest.raises(ValueError) as e:
            universality.bumps_network(f, 10)
        assert "between 0 and 1" in assert_one_line(e)
    with pytest.raises(ValueError) as e:
        universality.towers_network(lambda x, y: x + y, 4)
    assert "f2 must lie strictly between 0 and 1" in assert_one_line(e)
    with pytest.raises(ValueError) as e:
        universality.bumps_network(book_f, 0)
    assert "positive integer" in assert_one_line(e)


def towers_through_network(params, x, y):
    xy = jnp.asarray(np.stack([x.ravel(), y.ravel()], axis=1), jnp.float32)
    return np.asarray(network.feedforward(params, xy)[:, 0]).reshape(x.shape)


def test_a_tower_neuron_is_on_only_where_its_x_and_y_bumps_overlap():
    m = 4
    params = universality.towers_network(f2, m)
    assert network.sizes_of(params) == [2, 4 * m, m * m, 1]
    first_two = {"weights": params["weights"][:2], "biases": params["biases"][:2]}
    # The centre of tower (i, j) = (1, 2), and points in its row, its column and neither.
    points = np.array([[0.375, 0.625], [0.125, 0.625], [0.375, 0.875], [0.875, 0.125]])
    towers = np.asarray(network.feedforward(first_two, jnp.asarray(points, jnp.float32)))
    assert towers.shape == (4, m * m)
    on = towers > 0.5
    assert on.sum(axis=1).tolist() == [1, 1, 1, 1]
    assert np.flatnonzero(on[0]).tolist() == [1 * m + 2]
    np.testing.assert_allclose(towers.max(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(np.sort(towers, axis=1)[:, :-1], 0, atol=1e-6)


def test_where_four_towers_meet_the_output_falls_to_one_half_in_a_window_of_width_10_over_w():
    f = lambda x, y: 0.1 + 0.1 * x * y  # noqa: E731  far from ½ near the corner (½, ½)
    t = np.linspace(0.47, 0.53, 601)
    x, y = np.meshgrid(t, t, indexing="ij")
    params = universality.towers_network(f, 4)
    out = towers_through_network(params, x, y)
    assert out[300, 300] == pytest.approx(0.5, abs=1e-3)
    window = universality.corner_windows(x, y, 4)
    assert window[300, 300] and not window[0, 0] and not window[300, 0]
    assert np.abs(f(x, y) - out)[window].max() > 0.3
    assert np.abs(f(x, y) - out)[~window].max() < 0.02


def test_towers_approximate_a_2d_function_better_as_the_grid_grows():
    x, y = np.meshgrid(universality.grid(120), universality.grid(120), indexing="ij")
    errors = []
    for m in (3, 6, 12):
        params = universality.towers_network(f2, m)
        out = towers_through_network(params, x, y)
        np.testing.assert_allclose(out, universality.towers_output(f2, m, x, y), atol=2e-6)
        errors.append(
            universality.max_error_2d(
                f2, lambda a, b, p=params: towers_through_network(p, a, b), 120
            )
        )
        assert errors[-1] == pytest.approx(np.max(np.abs(f2(x, y) - out)))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1


def test_a_trained_network_of_the_same_size_beats_a_constant():
    params = universality.train(book_f, 10, jax.random.key(0), epochs=30)
    assert network.sizes_of(params) == [1, 10, 1]
    x = universality.grid(1000)
    error = universality.max_error(book_f, universality.network_function(params))
    constant = (book_f(x).max() - book_f(x).min()) / 2
    assert np.isfinite(error) and error < constant


def runner(*flags):
    return run_module("experiments.universality", *flags)


def test_the_runner_draws_and_prints_the_errors_of_built_and_trained_networks(tmp_path):
    png = tmp_path / "u.png"
    result = runner("--bumps=5,20", "--compare_trained", "--epochs=30", f"--png={png}")
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    constant = float(re.search(r"best constant: ([\d.]+)", result.stdout).group(1))
    rows = re.findall(r"N = (\d+) bumps .*?: ([\d.]+); trained .*: ([\d.]+)", result.stdout)
    assert [int(n) for n, _, _ in rows] == [5, 20]
    x = universality.grid(1000)
    for n, built, trained in rows:
        g = universality.network_function(universality.bumps_network(book_f, int(n)))
        assert float(built) == pytest.approx(universality.max_error(book_f, g), abs=1e-4)
        assert float(trained) < constant == pytest.approx(np.ptp(book_f(x)) / 2, abs=1e-4)


def test_the_runner_draws_towers_and_takes_any_f(tmp_path):
    png = tmp_path / "t.png"
    result = runner(
        "--two_d", "--towers=3,6", "--f2=0.5 + 0.3*np.sin(3*x)*cos(4*y)", f"--png={png}"
    )
    assert result.returncode == 0, result.stderr
    assert png.stat().st_size > 10_000
    # 200 points are no multiple of 6: some lie in the corners' failure windows.
    found = re.findall(r"towers \(sizes .*\): ([\d.]+); ([\d.]+) away", result.stdout)
    (all3, away3), (all6, away6) = [(float(a), float(b)) for a, b in found]
    assert away3 > away6 and all6 > away6
    result = runner("--f=0.5 + 0.4 * jnp.sin(6 * x)", "--bumps=10")
    assert result.returncode == 0, result.stderr
    f = lambda x: 0.5 + 0.4 * np.sin(6 * x)  # noqa: E731
    g = universality.network_function(universality.bumps_network(f, 10))
    shown = float(re.search(r"N = 10 bumps .*: ([\d.]+)", result.stdout).group(1))
    assert shown == pytest.approx(universality.max_error(f, g), abs=1e-4)


BAD = [
    (["--f=0.5 + sin(x"], "--f="),
    (["--f=0.5 + y"], "--f="),
    (["--f=x.tofile('out')"], "--f="),
    (["--f=().__class__"], "--f="),
    (["--f=__import__('os')"], "--f="),
    (["--f=0.5 + x"], "--f must lie strictly between 0 and 1"),
    (["--f=log(x - 1)"], "--f must lie strictly between 0 and 1"),
    (["--f=sin(x, x, x)"], "--f="),
    (["--bumps=5,x"], "--bumps"),
    (["--bumps=0"], "--bumps"),
    (["--bumps="], "--bumps"),
    (["--w=-1"], "--w"),
    (["--w=1e30"], "--w"),
    (["--compare_trained", "--eta=0"], "--eta"),
    (["--two_d", "--f2=x + y"], "--f2 must lie strictly between 0 and 1"),
    (["--two_d", "--f=x"], "--f is for the one-input case"),
    (["--towers=4"], "--towers is for --two_d"),
    (["--epochs=5"], "--epochs is for the trained networks"),
    (["--png={d}/x.jpg"], "--png"),
    (["--png={d}/missing/x.png"], "--png"),
]


@pytest.mark.parametrize("flags, message", BAD)
def test_bad_input_is_one_line_naming_the_flag_and_writes_nothing(tmp_path, flags, message):
    png = tmp_path / "earlier.png"
    png.write_bytes(b"an earlier figure")
    flags = [f.format(d=tmp_path) for f in flags]
    if not any(f.startswith("--png") for f in flags):
        flags.append(f"--png={png}")
    result = runner(*flags)
    assert_failed_with_one_error(result, message)
    assert png.read_bytes() == b"an earlier figure"
