r"""Chapter 3's learning slowdown: one sigmoid neuron with input x = 1 learns to output
y = 0, from two starts, by the quadratic cost and by cross-entropy.

    python -m experiments.slowdown --png=docs/figures/slowdown.png
    python -m experiments.slowdown --costs=quadratic --starts=2:2 --epochs=600
    python -m experiments.slowdown --costs=cross_entropy --eta=0.005   # the book's η there
    python -m experiments.slowdown --softmax        # the chapter's softmax layer, in numbers

Each epoch is one gradient step (the book's demonstration): w → w − η ∂C/∂w, the same for
b, with the gradients by ``jax.grad`` of ``nnjax.costs``. Prints, for each start and cost,
∂C/∂w at the start (by jax.grad and by the book's formula) and the output a and the cost
C at a few epochs; ``--png`` draws C against the epoch, one panel per cost. Computed in
float64, as the book's code.
"""

from absl import app, flags

from experiments.checks import UsageError, bytes_text, check_png, refuse_given
from experiments.cli import parse_flags, run_guarded
from experiments.flag_lists import parse_floats, parse_names
from experiments.writing import save_figure

FLAGS = flags.FLAGS
flags.DEFINE_float("eta", 0.15, "Learning rate η.")
flags.DEFINE_integer("epochs", 300, "Gradient steps, one per epoch.")
flags.DEFINE_list(
    "starts", ["0.6:0.9", "2.0:2.0"], "Starting weights and biases, w:b, comma separated."
)
flags.DEFINE_list("costs", ["quadratic", "cross_entropy"], "The costs to train with.")
flags.DEFINE_float("x", 1.0, "The neuron's input.")
flags.DEFINE_float("y", 0.0, "The desired output.")
flags.DEFINE_string("png", None, "Draw the cost against the epoch into this PNG file.")
flags.DEFINE_bool(
    "softmax",
    False,
    "Print the softmax layer's numbers instead: a = softmax(z) for --z, the same after "
    "raising the last z by 1, and the log-likelihood's δ by jax.grad beside a − y.",
)
flags.DEFINE_list("z", ["2.5", "-1", "3.2", "0.5"], "--softmax's weighted inputs z.")

TABLE_EPOCHS = (0, 50, 100, 150, 200, 300)
# The run keeps w, b, a and C after every epoch (float64): 32 MB at this bound.
MAX_EPOCHS = 1_000_000
SLOWDOWN_FLAGS = ("eta", "epochs", "starts", "costs", "x", "y")
FORMULAS = {"quadratic": "(a − y) σ'(z) x", "cross_entropy": "x (a − y)"}


def parse_starts(items) -> list:
    """``["0.6:0.9", ...]`` → ``[(0.6, 0.9), ...]``; UsageError naming --starts."""
    starts = []
    for item in items:
        parts = item.split(":")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise UsageError(f"--starts: {item!r} is not w:b")
        starts.append(tuple(parse_floats("starts", parts)))
    if not starts:
        raise UsageError("--starts needs at least one w:b")
    return starts


def check_flags():
    """Validates every flag before any work; returns (starts, costs, z)."""
    from nnjax import costs

    if not FLAGS.eta > 0:
        raise UsageError(f"--eta must be positive, got {FLAGS.eta}")
    if FLAGS.epochs <= 0:
        raise UsageError(f"--epochs must be positive, got {FLAGS.epochs}")
    if FLAGS.epochs > MAX_EPOCHS:
        raise UsageError(
            f"--epochs={FLAGS.epochs} is more than {MAX_EPOCHS:,}: the run keeps w, b, a and "
            f"C of every epoch, {bytes_text(32 * (FLAGS.epochs + 1))} here"
        )
    if not 0 <= FLAGS.y <= 1:  # a sigmoid's output; cross-entropy is a cost only there
        raise UsageError(f"--y must be in [0, 1], got {FLAGS.y}")
    starts = parse_starts(FLAGS.starts)
    chosen = [costs.get(name) for name in parse_names("costs", FLAGS.costs, FORMULAS)]
    z = parse_floats("z", FLAGS.z)
    if len(z) < 2:
        raise UsageError(f"--z needs at least two weighted inputs, got {','.join(FLAGS.z)!r}")
    if FLAGS.softmax:  # a flag of the mode not run would be ignored without a word
        refuse_given(
            (*SLOWDOWN_FLAGS, "png"), "is for the slowdown's runs: leave it out with --softmax"
        )
    else:
        refuse_given(["z"], "is for --softmax's numbers")
    if FLAGS.png is not None:
        check_png("png", FLAGS.png)
    return starts, chosen, z


def vector(v) -> str:
    return "(" + ", ".join(f"{float(x):.4f}" for x in v) + ")"


def print_softmax(z) -> None:
    """The book's softmax section in numbers: outputs sum to 1, raising z_j raises a_j and
    lowers every other a_k (each a_k depends on all of z), and δ = a − y."""
    import jax.numpy as jnp

    from nnjax import costs, slowdown

    n = len(z)
    j = int(jnp.argmax(jnp.asarray(z)))
    y = costs.one_hot(jnp.asarray(j), n)
    a, delta = slowdown.softmax_delta(z, y)
    raised = [*z[:-1], z[-1] + 1]
    a2, _ = slowdown.softmax_delta(raised, y)
    print(f"Softmax output layer, z = ({', '.join(f'{v:g}' for v in z)}):")
    print(f"  a = softmax(z)      = {vector(a)}, Σ a = {float(a.sum()):.6f}")
    print(f"  z_{n} + 1 = {raised[-1]:g}:   a = {vector(a2)}, Σ a = {float(a2.sum()):.6f}")
    change = [float(d) for d in a2 - a]
    rise = ", ".join(f"a_{k + 1}" for k, d in enumerate(change) if d > 0) or "none"
    fall = ", ".join(f"a_{k + 1}" for k, d in enumerate(change) if d < 0) or "none"
    print(
        "  change              = ("
        + ", ".join(f"{d:+.4f}" for d in change)
        + f"): rise {rise}; fall {fall}"
    )
    print(f"  log-likelihood C = −ln a_{j + 1} (y = e_{j + 1}):")
    print(f"    δ = ∂C/∂z by jax.grad = {vector(delta)}")
    print(f"    a − y                 = {vector(a - y)}")


def check_finite(history, cost, w, b) -> None:
    """Raises UsageError naming --starts if the run's cost is not finite at its start (σ(w x
    + b) rounds to 0 or 1 in float64, and ln 0 is −inf), ``history.Diverged`` naming the
    epoch if a later epoch made w, b, a or C inf or NaN."""
    import numpy as np

    from nnjax.history import Diverged

    values = np.stack([np.asarray(history[k]) for k in ("w", "b", "a", "cost")])
    bad = np.flatnonzero(~np.isfinite(values).all(axis=0))
    if not bad.size:
        return
    k, c = int(bad[0]), float(history["cost"][bad[0]])
    if k == 0:
        raise UsageError(
            f"--starts={w:g}:{b:g}: the {cost.name} cost at the start is {c} (σ(w x + b) = "
            f"{float(history['a'][0]):g} in float64); start with a smaller |w x + b|"
        )
    raise Diverged(
        k,
        message=f"training diverged in epoch {k} ({cost.name} cost, start {w:g}:{b:g}): "
        f"w, b or the cost became inf or NaN; try a smaller η",
    )


def table_epochs(epochs: int) -> list:
    shown = [k for k in TABLE_EPOCHS if k <= epochs]
    return shown if shown[-1] == epochs else [*shown, epochs]


def draw(curves, costs_used, path) -> None:
    """Writes C against the epoch, one panel per cost, one curve per start, to ``path``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * len(costs_used), 4))
    axes = fig.subplots(1, len(costs_used), squeeze=False)[0]
    for ax, cost in zip(axes, costs_used):
        for (name, (w, b)), history in curves.items():
            if name == cost.name:
                ax.plot(history["cost"], label=f"start w = {w:g}, b = {b:g}")
        ax.set_title(f"{cost.name.replace('_', '-')} cost, η = {FLAGS.eta:g}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cost")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"One sigmoid neuron learning to output y = {FLAGS.y:g} from x = {FLAGS.x:g}")
    fig.tight_layout()
    save_figure(fig, path)


def run() -> None:
    starts, costs_used, z = check_flags()
    import jax

    with jax.enable_x64(True):  # float64, as the book's code
        compute(starts, costs_used, z)


def compute(starts, costs_used, z) -> None:
    if FLAGS.softmax:
        print_softmax(z)
        return
    from nnjax import slowdown

    x, y = FLAGS.x, FLAGS.y
    curves = {}
    for w, b in starts:  # every run checked before any is printed
        for cost in costs_used:
            history = slowdown.train(cost, w, b, x, y, FLAGS.eta, FLAGS.epochs)
            check_finite(history, cost, w, b)
            curves[cost.name, (w, b)] = history
    print(
        f"One sigmoid neuron, x = {x:g}, y = {y:g}, η = {FLAGS.eta:g}, {FLAGS.epochs} epochs "
        "(one gradient step each)."
    )
    shown = table_epochs(FLAGS.epochs)
    print(f"{'start':>12s}  {'cost':<14s}   " + "".join(f"{'epoch ' + str(k):>10s}" for k in shown))
    for w, b in starts:
        for cost in costs_used:
            history = curves[cost.name, (w, b)]
            for row, symbol, label in (("a", "a", f"({w:g}, {b:g})"), ("cost", "C", "")):
                print(
                    f"{label:>12s}  {cost.name if label else '':<14s}{symbol:>3s}"
                    + "".join(f"{float(history[row][k]):10.4f}" for k in shown)
                )
            by_grad = float(slowdown.grad(w, b, x, y, cost)[0])
            by_formula = float(slowdown.closed_form_grad(w, b, x, y, cost)[0])
            print(
                f"{'':>12s}  ∂C/∂w at the start: {by_grad:.6f} by jax.grad, "
                f"{by_formula:.6f} = {FORMULAS[cost.name]}"
            )
    if FLAGS.png:
        draw(curves, costs_used, FLAGS.png)
        print(f"Wrote {FLAGS.png}")


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
