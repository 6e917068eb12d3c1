"""Chapter 4's visual proof that a network with one hidden layer can compute any continuous
function, as networks built by hand (no training) in ``nnjax.network``'s parameter format.

    params = bumps_network(f, n=50)            # sizes [1, 2n, 1]
    network.feedforward(params, x[:, None])    # ≈ f(x) on [0, 1], (N, 1)
    params = towers_network(f2, m=10)          # sizes [2, 4m, m², 1]: ≈ f2(x, y) on [0, 1]²

The argument, step by step:

* ``step``: a sigmoid neuron σ(w x + b) with a large weight w is a step from 0 to 1 at
  s = −b/w; given s, its bias is b = −w s.
* ``bump``: two such neurons with steps at s₁ < s₂ and output weights h and −h add up to a
  bump of height h on [s₁, s₂] (0 elsewhere).
* ``bumps_network``: n bumps side by side on [0, 1], the i-th of height σ⁻¹(f) at its
  middle, so that the hidden layer's weighted output approximates σ⁻¹(f(x)) and the output
  neuron's σ undoes the σ⁻¹: the network's output approximates f itself. This needs f(x)
  in (0, 1).
* ``towers_network``: with two inputs, a bump in x and a bump in y feed a second-layer
  neuron with weights h, bias −3h/2: its weighted input is h/2 > 0 where both bumps are
  on and at most −h/2 elsewhere, so with h large it is a tower, 1 on a rectangle and 0
  off it. m × m towers with output weights σ⁻¹(f2) at their centres approximate f2.

Between two steps there is a window of width about a few / w where a step is neither 0
nor 1 (the book's "failure windows"). In one dimension the two neurons of neighbouring
bumps share it and the output passes monotonically from one bump's height to the next;
at a corner of four towers none of them is on, and the network's output falls towards σ(0)
in a window of width ~10/w around the corner (``corner_windows``). ``grid`` keeps its
points off the steps when its size is a multiple of the number of bumps.
"""

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import activations, fit, history, network, optimizers
from nnjax.inputs import is_whole

sigma = activations.sigmoid.fn
W = 1000.0  # the book's "very large" weight of a step neuron
TOWER_H = 100.0  # a tower neuron's input weight h: σ(±h/2) is 0 or 1 to float precision


def step(s, w=W):
    """The weight and bias ``(w, b)`` of a hidden neuron σ(w x + b) whose output steps from
    0 to 1 at x = s: b = −w s (scalars, or arrays shaped like ``s``)."""
    return w, -w * jnp.asarray(s, dtype=jnp.float32)


def bump(x, s1, s2, h, w=W):
    """The weighted output h σ(w x + b₁) − h σ(w x + b₂) of two step neurons at s₁ < s₂:
    ≈ h on (s₁, s₂) and ≈ 0 outside; shaped like ``x``."""
    (w1, b1), (w2, b2) = step(s1, w), step(s2, w)
    return h * sigma(w1 * x + b1) - h * sigma(w2 * x + b2)


def sigma_inverse(a):
    """σ⁻¹(a) = ln(a / (1 − a)) for a in (0, 1)."""
    return jnp.log(a) - jnp.log1p(-a)


def check_range(values, what: str = "f") -> np.ndarray:
    """``values`` as a float64 NumPy array, or a one-line ValueError unless every value is
    finite and strictly between 0 and 1 (the output neuron's σ never reaches 0 or 1, and
    the hidden layer's target σ⁻¹(f) must exist)."""
    v = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(v) | (v <= 0) | (v >= 1)
    if bad.any():
        raise ValueError(
            f"{what} must lie strictly between 0 and 1 (the output neuron's σ undoes σ⁻¹(f)); "
            f"it takes the value {v[bad].flat[0]:.6g}"
        )
    return v


def edges(n: int, w=W) -> np.ndarray:
    """The n + 1 step positions 0, 1/n, …, 1 of n bumps side by side on [0, 1], the outer
    two moved out by 10/w so that the first and last bumps are fully on at 0 and 1: (n + 1,).
    """
    if not (is_whole(n) and n > 0):
        raise ValueError(f"the number of bumps must be a positive integer, got {n!r}")
    if not (np.isfinite(w) and w > 0):  # w ≤ 0 turns the steps around, w = 0 divides by 0
        raise ValueError(f"the steps' weight w must be positive and finite, got {w!r}")
    e = np.linspace(0.0, 1.0, n + 1)
    e[0], e[-1] = -10.0 / w, 1.0 + 10.0 / w
    return e


def _values(f, points, what):
    """``f(*points)`` broadcast to the points' shape and checked to lie in (0, 1)."""
    v = np.broadcast_to(np.asarray(f(*points), dtype=np.float64), np.shape(points[0]))
    return check_range(v, what)


def heights(f, n: int) -> np.ndarray:
    """σ⁻¹(f) at the middles of the n intervals [i/n, (i+1)/n]: the bumps' heights, (n,)."""
    middles = (np.arange(n) + 0.5) / n
    return np.asarray(sigma_inverse(_values(f, (middles,), "f")))


def bumps_network(f, n: int, w=W) -> dict:
    """A network of sizes [1, 2n, 1] built from n bumps on [0, 1] whose output σ(Σ bumps)
    approximates ``f`` (a function of an array x, values in (0, 1)).

    Hidden neuron 2i steps up at the start of bump i, neuron 2i + 1 down at its end; the
    output weights are h_i and −h_i with h_i = σ⁻¹(f(middle of bump i)), the output bias 0.
    Returns ``{"weights": [(2n, 1), (1, 2n)], "biases": [(2n,), (1,)]}`` (float32).
    """
    e, h = edges(n, w), heights(f, n)
    starts, ends = step(e[:-1], w)[1], step(e[1:], w)[1]
    hidden_b = jnp.stack([starts, ends], axis=1).reshape(-1)
    out_w = jnp.stack([h, -h], axis=1).reshape(1, -1)
    return {
        "weights": [jnp.full((2 * n, 1), w, jnp.float32), out_w.astype(jnp.float32)],
        "biases": [hidden_b, jnp.zeros((1,), jnp.float32)],
    }


def bumps_output(f, n: int, x, w=W):
    """The same approximation computed bump by bump, without the network: σ(Σ_i bump_i(x))
    for ``x`` of any shape; shaped like ``x``."""
    e, h = edges(n, w), heights(f, n)
    x = jnp.asarray(x, jnp.float32)[..., None]
    return sigma(jnp.sum(bump(x, e[:-1], e[1:], h.astype(np.float32), w), axis=-1))


def towers_network(f2, m: int, w=W, h=TOWER_H) -> dict:
    """A network of sizes [2, 4m, m², 1] whose output approximates ``f2`` (a function of
    arrays x, y with values in (0, 1)) on [0, 1]² with m × m towers.

    Layer 2 (4m step neurons): neurons 2i, 2i + 1 are the steps of x-bump i (input weights
    (w, 0)), neurons 2m + 2j, 2m + 2j + 1 those of y-bump j (input weights (0, w)).
    Layer 3 (m² tower neurons, tower (i, j) is neuron i·m + j): weights h, −h from x-bump i's
    steps and h, −h from y-bump j's, bias −3h/2. Output: weight σ⁻¹(f2(centre of (i, j)))
    from tower (i, j), bias 0.
    Returns ``{"weights": [(4m, 2), (m², 4m), (1, m²)], "biases": [(4m,), (m²,), (1,)]}``.
    """
    e = edges(m, w)
    b = jnp.stack([step(e[:-1], w)[1], step(e[1:], w)[1]], axis=1).reshape(-1)
    w1 = np.zeros((4 * m, 2), np.float32)
    w1[: 2 * m, 0], w1[2 * m :, 1] = w, w
    pair = np.kron(np.eye(m, dtype=np.float32), np.array([[h, -h]], np.float32))  # (m, 2m)
    i, j = np.divmod(np.arange(m * m), m)
    w2 = np.concatenate([pair[i], pair[j]], axis=1)  # (m², 4m)
    centres = (np.arange(m) + 0.5) / m
    cx, cy = np.meshgrid(centres, centres, indexing="ij")
    v = sigma_inverse(_values(f2, (cx.reshape(-1), cy.reshape(-1)), "f2"))
    return {
        "weights": [jnp.asarray(w1), jnp.asarray(w2), jnp.asarray(v, jnp.float32)[None]],
        "biases": [
            jnp.concatenate([b, b]),
            jnp.full((m * m,), -1.5 * h, jnp.float32),
            jnp.zeros((1,), jnp.float32),
        ],
    }


def towers_output(f2, m: int, x, y, w=W, h=TOWER_H):
    """The towers' approximation computed tower by tower, without the network: σ(Σ v_ij
    σ(bump_i(x) + bump_j(y) − 3h/2)) with bumps of height h; shaped like ``x`` and ``y``."""
    e = edges(m, w)
    centres = (np.arange(m) + 0.5) / m
    cx, cy = np.meshgrid(centres, centres, indexing="ij")
    v = jnp.asarray(sigma_inverse(_values(f2, (cx, cy), "f2")), jnp.float32)  # (m, m)
    x, y = jnp.asarray(x, jnp.float32)[..., None], jnp.asarray(y, jnp.float32)[..., None]
    bx, by = bump(x, e[:-1], e[1:], h, w), bump(y, e[:-1], e[1:], h, w)  # (..., m)
    towers = sigma(bx[..., :, None] + by[..., None, :] - 1.5 * h)  # (..., m, m)
    return sigma(jnp.sum(v * towers, axis=(-2, -1)))


def grid(points: int) -> np.ndarray:
    """``points`` evenly spaced points of [0, 1], the middles of as many equal cells
    ((k + ½)/points), so that none falls on a step of ``edges``' bumps when ``points`` is a
    multiple of their number: (points,)."""
    return (np.arange(points) + 0.5) / points


def max_error(f, approximation, points=1000) -> float:
    """max |f − approximation| over ``grid(points)``; ``f`` and ``approximation`` are
    functions of an array x."""
    x = grid(points)
    return _largest_gap(f(x), approximation(x))


def max_error_2d(f2, approximation, points=200) -> float:
    """max |f2 − approximation| over the ``points`` × ``points`` grid of ``grid``."""
    x, y = np.meshgrid(grid(points), grid(points), indexing="ij")
    return _largest_gap(f2(x, y), approximation(x, y))


def _largest_gap(exact, approximate) -> float:
    exact, approximate = np.asarray(exact), np.asarray(approximate)
    both = np.broadcast_shapes(exact.shape, approximate.shape)
    if both not in (exact.shape, approximate.shape):  # (N, 1) and (N,) would give (N, N)
        raise ValueError(
            f"the approximation's values {approximate.shape} are not shaped like the "
            f"function's {exact.shape}"
        )
    return float(np.max(np.abs(exact - approximate)))


def corner_windows(x, y, m: int, w=W, width=10.0):
    """Where (``x``, ``y``) lies within ``width``/w of an inner step in x AND of one in y:
    around the corners where four of ``towers_network(·, m, w)``'s towers meet, none is
    fully on and the output falls towards σ(0) = ½. Boolean, shaped like ``x``."""
    inner = edges(m, w)[1:-1]

    def near(a):
        a = np.asarray(a)[..., None]
        return np.any(np.abs(a - inner) < width / w, axis=-1)

    return near(x) & near(y)


def network_function(params):
    """The function x (N,) → the network's output (N,) of a network with one input."""
    return lambda x: network.feedforward(params, jnp.asarray(x, jnp.float32)[:, None])[:, 0]


def train(
    f, hidden: int, key, *, epochs=300, eta=0.01, optimizer="adam", samples=1000, mini_batch_size=10
):
    """A network of sizes [1, ``hidden``, 1] trained by ``nnjax.fit`` on ``samples`` points
    x drawn uniformly from [0, 1] with desired outputs f(x) (quadratic cost), from the
    chapter 3 initialisation; returns its params. Raises ``history.Diverged`` if it
    diverges."""
    init_key, data_key, fit_key = jax.random.split(key, 3)
    x = jax.random.uniform(data_key, (samples, 1))
    y = jnp.asarray(check_range(np.asarray(f(np.asarray(x[:, 0]))), "f"), jnp.float32)
    params = network.init(init_key, [1, hidden, 1], init="scaled")
    tx = optimizers.make(optimizer)
    run = history.History(params, optimizers.init(tx, params, eta=eta))
    fit.fit(
        network.regression_model(),
        tx,
        run,
        (x, y),
        epochs=epochs,
        mini_batch_size=mini_batch_size,
        key=fit_key,
    )
    return run.params
