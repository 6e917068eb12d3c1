r"""Chapter 4: networks built by hand, without training, that approximate a function.

    python -m experiments.universality --png=docs/figures/universality.png
    python -m experiments.universality --f="0.5 + 0.4 * sin(6 * x)" --bumps=10,100
    python -m experiments.universality --compare_trained       # and trained networks
    python -m experiments.universality --two_d --png=docs/figures/universality_2d.png

One input: for each N of --bumps, the network of N bumps (``nnjax.universality
.bumps_network``, 2N hidden neurons) approximating --f on [0, 1]; prints its largest error
on a grid of 1,000 points. --compare_trained also trains a network of the same size
(``nnjax.fit``, quadratic cost) on samples of f. Two inputs (--two_d): m × m towers for
each m of --towers approximating --f2 on [0, 1]², the error on a 200 × 200 grid.

--f and --f2 are Python expressions in x (and y) over NumPy's math functions (sin, exp,
...; also as np.sin or jnp.sin), with values strictly between 0 and 1.
"""

import functools

import numpy as np
from absl import app, flags

from experiments.checks import UsageError, bytes_text, check_memory, check_png
from experiments.cli import MAX_SEED, parse_flags, run_guarded
from experiments.expressions import parse_function
from experiments.flag_lists import parse_positive_ints
from experiments.training import check_ranges
from experiments.writing import save_figure
from nnjax import optimizers

BOOK_F = "0.2 + 0.4 * x**2 + 0.3 * x * sin(15 * x) + 0.05 * cos(50 * x)"
DEFAULT_F2 = "0.5 + 0.3 * sin(6 * x * y) * cos(3 * x) + 0.1 * y"
POINTS, POINTS_2D = 1000, 200  # the grids max_error is taken on
# More bumps (towers a side) than that are narrower than the grid's spacing: not seen there.
MAX_BUMPS, MAX_TOWERS = POINTS, POINTS_2D // 2
MAX_EPOCHS = 100_000  # of a trained network: 100 steps each

FLAGS = flags.FLAGS
flags.DEFINE_string("f", BOOK_F, "f(x) on [0, 1], values in (0, 1) (default: the book's).")
flags.DEFINE_string("bumps", "5,10,50", "Numbers of bumps N, comma separated.")
flags.DEFINE_float("w", 1000.0, "The weight w of every step neuron (the book: ~1000).")
flags.DEFINE_string("png", None, "Draw f and the approximations to this PNG file.")
flags.DEFINE_bool("two_d", False, "Approximate --f2(x, y) by towers instead.")
flags.DEFINE_string("f2", DEFAULT_F2, "f2(x, y) on [0, 1]², values in (0, 1), for --two_d.")
flags.DEFINE_string("towers", "5,10,20", "Grids of m × m towers, comma separated (--two_d).")
flags.DEFINE_bool("compare_trained", False, "Also train networks of the same sizes.")
flags.DEFINE_integer("epochs", 300, "Epochs of each trained network.")
flags.DEFINE_float("eta", 0.01, "Learning rate η of the trained networks.")
flags.DEFINE_enum(
    "optimizer",
    "adam",
    [name for name, step in optimizers.STEPS.items() if step.momentum != "needed"],
    "Update rule of the trained networks.",
)
flags.DEFINE_integer(
    "seed", 0, "Seed of the trained networks.", lower_bound=0, upper_bound=MAX_SEED
)


def build(flag: str, make, *args):
    """``make(*args)``: a ValueError (f outside (0, 1) where the network samples it) becomes
    a UsageError naming --``flag``."""
    try:
        return make(*args)
    except ValueError as e:
        raise UsageError(f"--{flag}: {e}") from None


def checked(flag: str, f, points):
    """``f`` after checking its values on ``points`` lie in (0, 1); UsageError otherwise."""
    from nnjax import universality

    try:
        universality.check_range(f(*points), f"--{flag}")
    except ValueError as e:
        raise UsageError(str(e)) from None
    return f


def check_flags() -> None:
    if not 0 < FLAGS.w <= 1e6:  # float32 steps: w x + b loses x's digits beyond that
        raise UsageError(f"--w must be in (0, 1e6], got {FLAGS.w}")
    if FLAGS.png is not None:
        check_png("png", FLAGS.png)
    one_input_flags, two_input_flags = ("f", "bumps", "compare_trained"), ("f2", "towers")
    refused, where = (
        (one_input_flags, "the one-input case") if FLAGS.two_d else (two_input_flags, "--two_d")
    )
    for name in refused:
        if FLAGS[name].present:
            raise UsageError(f"--{name} is for {where}")
    for name in ("epochs", "eta", "optimizer", "seed"):
        if FLAGS[name].present and not FLAGS.compare_trained:
            raise UsageError(f"--{name} is for the trained networks: add --compare_trained")
    check_ranges(positive=("epochs", "eta"))
    if FLAGS.epochs > MAX_EPOCHS:
        raise UsageError(
            f"--epochs={FLAGS.epochs} is more than {MAX_EPOCHS:,} (each epoch is 100 steps, "
            "for each --bumps)"
        )


def check_sizes(flag: str, sizes, most: int, points: int, grid: str, neurons) -> None:
    """UsageError naming --``flag`` if a size is past ``most`` or its network's largest
    layer, ``neurons(n)`` neurons, cannot hold its outputs at the ``points`` points of
    ``grid`` in memory (float32 weighted inputs and activations)."""
    n = max(sizes)
    need = 2 * 4 * points * neurons(n)
    if n > most:
        raise UsageError(
            f"--{flag}={getattr(FLAGS, flag)}: at most {most:,} (the error is measured on "
            f"{grid}); {n:,} would need {bytes_text(need)} for the network's outputs there"
        )
    check_memory(flag, getattr(FLAGS, flag), need, "the network's outputs need {need}")


def one_input() -> None:
    import jax

    from nnjax import network, universality

    sizes = parse_positive_ints("bumps", FLAGS.bumps)
    check_sizes("bumps", sizes, MAX_BUMPS, POINTS, f"{POINTS:,} points", lambda n: 2 * n)
    f = checked("f", parse_function("f", FLAGS.f, ("x",)), (universality.grid(POINTS),))
    print(f"f(x) = {FLAGS.f}; the largest error on a grid of {POINTS} points of [0, 1]:")
    x = universality.grid(POINTS)
    constant = (f(x).max() - f(x).min()) / 2
    print(f"  the best constant: {constant:.4f}")
    rows = []
    for n in sizes:
        params = build("f", universality.bumps_network, f, n, FLAGS.w)
        g = universality.network_function(params)
        line = f"  N = {n} bumps ({2 * n} hidden neurons): {universality.max_error(f, g):.4f}"
        trained = None
        if FLAGS.compare_trained:
            key = jax.random.fold_in(jax.random.key(FLAGS.seed), n)
            train = functools.partial(
                universality.train, epochs=FLAGS.epochs, eta=FLAGS.eta, optimizer=FLAGS.optimizer
            )
            trained = universality.network_function(build("f", train, f, 2 * n, key))
            line += f"; trained ({FLAGS.optimizer}, η = {FLAGS.eta}, {FLAGS.epochs} epochs): "
            line += f"{universality.max_error(f, trained):.4f}"
        print(line, flush=True)
        z = network.logits(params, np.asarray(x, np.float32)[:, None])[:, 0]
        rows.append((n, g(x), z, None if trained is None else trained(x)))
    if FLAGS.png:
        draw_one_input(x, f(x), rows, FLAGS.png)
        print(f"Wrote {FLAGS.png}")


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def draw_one_input(x, fx, rows, path) -> None:
    """Top: f and each approximation; bottom: σ⁻¹(f) and the hidden layer's weighted output."""
    from nnjax import universality

    fig = _figure(4.5 * len(rows), 6.5)
    axes = fig.subplots(2, len(rows), squeeze=False)
    inverse = np.asarray(universality.sigma_inverse(fx))
    for (n, gx, z, trained), top, bottom in zip(rows, axes[0], axes[1]):
        err = np.max(np.abs(fx - gx))
        top.plot(x, fx, "k--", lw=1, label="f(x)")
        top.plot(x, gx, lw=1.5, label=f"{n} bumps (max error {err:.3f})")
        if trained is not None:
            err = np.max(np.abs(fx - trained))
            top.plot(x, trained, ":", lw=1.5, label=f"trained (max error {err:.3f})")
        top.set_title(f"N = {n} bumps: the network's output σ(z)")
        bottom.plot(x, inverse, "k--", lw=1, label="σ⁻¹(f(x))")
        bottom.plot(x, z, lw=1.5, label="weighted output z")
        bottom.set_title("the hidden layer's weighted output")
        for ax in (top, bottom):
            ax.set_xlabel("x")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
    save_figure(fig, path)


def two_inputs() -> None:
    from nnjax import network, universality

    sizes = parse_positive_ints("towers", FLAGS.towers)
    grid = f"a {POINTS_2D} × {POINTS_2D} grid"
    check_sizes("towers", sizes, MAX_TOWERS, POINTS_2D**2, grid, lambda m: m * m)
    x, y = np.meshgrid(universality.grid(POINTS_2D), universality.grid(POINTS_2D), indexing="ij")
    f2 = checked("f2", parse_function("f2", FLAGS.f2, ("x", "y")), (x, y))
    xy = np.stack([x.ravel(), y.ravel()], axis=1).astype(np.float32)
    print(f"f2(x, y) = {FLAGS.f2}; the largest error on a {POINTS_2D} × {POINTS_2D} grid:")
    maps = []
    for m in sizes:
        params = build("f2", universality.towers_network, f2, m, FLAGS.w)
        g = np.asarray(network.feedforward(params, xy)[:, 0]).reshape(x.shape)
        err = np.abs(f2(x, y) - g)
        kept = ~universality.corner_windows(x, y, m, FLAGS.w)
        away = f"{err[kept].max():.4f} away from" if kept.any() else "every point is near"
        print(
            f"  {m} × {m} towers (sizes {network.sizes_of(params)}): {err.max():.4f}; "
            f"{away} the corners (10/w either side)"
        )
        maps.append((m, g))
    if FLAGS.png:
        draw_two_inputs(f2(x, y), maps, FLAGS.png)
        print(f"Wrote {FLAGS.png}")


def draw_two_inputs(fxy, maps, path) -> None:
    """Left: f2; then for each m, its approximation (top) and |error| (bottom)."""
    fig = _figure(3.6 * (len(maps) + 1), 6.4)
    axes = fig.subplots(2, len(maps) + 1, squeeze=False)
    extent = dict(origin="lower", extent=(0, 1, 0, 1), vmin=0, vmax=1, cmap="viridis")
    image = axes[0, 0].imshow(fxy.T, **extent)
    axes[0, 0].set_title("f2(x, y)")
    axes[1, 0].axis("off")
    fig.colorbar(image, ax=axes[0, 0], shrink=0.8)
    errors = [np.abs(fxy - g) for _, g in maps]
    top = max(e.max() for e in errors)
    for (m, g), err, above, below in zip(maps, errors, axes[0, 1:], axes[1, 1:]):
        above.imshow(g.T, **extent)
        above.set_title(f"{m} × {m} towers")
        shown = below.imshow(err.T, origin="lower", extent=(0, 1, 0, 1), vmin=0, vmax=top)
        below.set_title(f"|error|, max {err.max():.3f}")
    fig.colorbar(shown, ax=axes[1, 1:].tolist(), shrink=0.8)
    for ax in axes.flat:
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    save_figure(fig, path)


def run() -> None:
    check_flags()
    two_inputs() if FLAGS.two_d else one_input()


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
