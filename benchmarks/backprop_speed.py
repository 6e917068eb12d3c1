r"""Chapter 2's exercise, timed: backpropagation one example at a time, summed over the
mini-batch, against one matrix pass over the whole mini-batch, and against ``jax.grad``.

    python -m benchmarks.backprop_speed                    # [784, 30, 10], m = 10 and 100
    python -m benchmarks.backprop_speed --mini_batch_sizes=10 --sizes=784,100,10
    python -m benchmarks.backprop_speed --check            # BP1–BP4 against jax.grad

For each mini-batch size m, the gradient of the mean quadratic cost over m examples
(random inputs in [0, 1), one-hot desired outputs, the book's N(0, 1) weights), by:

* ``book network.py loop``: the book's ``update_mini_batch``, NumPy float64, its
  ``backprop`` called on each example and the results summed in Python
  (``benchmarks/book_network.py``);
* ``per-example loop``: the same loop over ``nnjax.backprop.backprop`` (BP1–BP4) on one
  example at a time, jitted, summed in Python;
* ``matrix (BP1-BP4)``: ``nnjax.backprop.backprop`` on the whole mini-batch at once, the
  chapter's "fully matrix-based approach", jitted;
* ``jax.grad``: ``nnjax.backprop.grad``, autodiff of the cost, jitted: what training uses.

Prints microseconds per mini-batch (the median of ``--repeats`` rounds, compile excluded)
and each one's speed-up over the per-example loop and over the book's loop, after checking
that all four give the same gradient. ``--check`` instead prints, in float64, the largest
difference between BP1–BP4 and ``jax.grad`` in each layer's ∂C/∂w and ∂C/∂b.
"""

import statistics
import sys

from absl import app, flags

from benchmarks.timing import rounds, timed
from experiments.checks import UsageError, bytes_text, check_memory, refuse_given
from experiments.cli import SEED_BOUNDS, parse_flags, run_guarded
from experiments.flag_lists import parse_positive_ints

VARIANTS = 4  # timed: the book's loop, the per-example loop, the matrix pass, jax.grad
MAX_SECONDS = 3600  # of timing rounds, at least: --repeats × --round_seconds × ...
MAX_LOOP = 10_000  # examples a mini-batch of the per-example loops (a Python call each)

FLAGS = flags.FLAGS
flags.DEFINE_string("sizes", "784,30,10", "Layer sizes of the network, comma separated.")
flags.DEFINE_string("mini_batch_sizes", "10,100", "Mini-batch sizes m, comma separated.")
flags.DEFINE_integer(
    "repeats", 5, "Timed rounds per variant (the median is printed).", lower_bound=1
)
flags.DEFINE_float(
    "round_seconds",
    0.1,
    "Each round repeats the computation for about this long.",
    lower_bound=0.0,
)
flags.DEFINE_integer("seed", 0, "PRNG seed of the network and the mini-batch.", **SEED_BOUNDS)
flags.DEFINE_bool(
    "check",
    False,
    "Print the largest difference, per layer, between BP1–BP4 and jax.grad in float64, "
    "instead of timing.",
)


def check_flags():
    """Returns ``(sizes, mini_batch_sizes)``; raises UsageError naming a bad flag."""
    sizes = parse_positive_ints("sizes", FLAGS.sizes)
    if len(sizes) < 2:
        raise UsageError(f"--sizes={FLAGS.sizes!r}: a network needs an input and an output layer")
    batches = parse_positive_ints("mini_batch_sizes", FLAGS.mini_batch_sizes)
    if FLAGS.check:
        refuse_given(["repeats", "round_seconds"], "is for timing: leave it out with --check")
    else:
        seconds = VARIANTS * len(batches) * FLAGS.repeats * FLAGS.round_seconds
        if seconds > MAX_SECONDS:
            raise UsageError(
                f"--repeats={FLAGS.repeats} × --round_seconds={FLAGS.round_seconds:g}: timing "
                f"would take at least {seconds:,.0f} s ({VARIANTS} variants × {len(batches)} "
                f"mini-batch sizes × {FLAGS.repeats:,} rounds); at most {MAX_SECONDS:,} s"
            )
        if max(batches) > MAX_LOOP:
            raise UsageError(
                f"--mini_batch_sizes={FLAGS.mini_batch_sizes}: at most {MAX_LOOP:,} when timing "
                "(the per-example loops call backprop from Python once per example, each round)"
            )
    check_fits(sizes, max(batches))
    return sizes, batches


def check_fits(sizes, m) -> None:
    """UsageError naming --sizes or --mini_batch_sizes (whichever needs more) unless the
    network ``sizes`` (parameters, gradients and, when timing, the book's float64 copies)
    and a mini-batch of ``m`` (inputs, weighted inputs, activations, δs) fit in memory: an
    estimate from below."""
    n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    itemsize = 8 if FLAGS.check else 4
    network = n * (3 * itemsize + (0 if FLAGS.check else 2 * 8))
    batch = m * sum(sizes) * 3 * itemsize
    flag = "sizes" if network >= batch else "mini_batch_sizes"
    check_memory(
        flag,
        FLAGS[flag].value,
        network + batch,
        f"the gradients need at least {{need}} ({bytes_text(network)} for the network, "
        f"{bytes_text(batch)} for a mini-batch of {m:,})",
    )


def problem(sizes, m, dtype, seed):
    """The book's N(0, 1) network ``sizes`` and a mini-batch of ``m`` random examples:
    ``(params, x (m, sizes[0]) in [0, 1), y (m, sizes[-1]) one-hot)``."""
    import jax

    from nnjax import costs, network

    k_params, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    params = network.init(k_params, sizes, dtype)
    x = jax.random.uniform(k_x, (m, sizes[0]), dtype)
    y = costs.one_hot(jax.random.randint(k_y, (m,), 0, sizes[-1]), sizes[-1], dtype)
    return params, x, y


def per_example_loop(single):
    """The book's ``update_mini_batch`` sum around ``single(params, x, y)``, the gradient
    for one example: returns the function giving the mean gradient over a mini-batch."""
    import jax
    import jax.numpy as jnp

    def gradient(params, x, y):
        total = jax.tree.map(jnp.zeros_like, params)
        for xi, yi in zip(x, y):
            total = jax.tree.map(jnp.add, total, single(params, xi, yi))
        return jax.tree.map(lambda g: g / len(x), total)

    return gradient


def book_loop(params, x, y):
    """The book's NumPy ``network.py`` with ``params``' weights: its ``backprop`` on each
    example, summed, divided by m; returns ``{"weights": [...], "biases": [...]}`` (NumPy
    float64, biases (n,)) to compare with nnjax's."""
    import numpy as np

    from benchmarks import book_network

    sizes = [params["weights"][0].shape[1], *(b.shape[0] for b in params["biases"])]
    net = book_network.Network(sizes, np.random.default_rng(0))
    net.weights = [np.asarray(w, np.float64) for w in params["weights"]]
    net.biases = [np.asarray(b, np.float64)[:, None] for b in params["biases"]]
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)

    def gradient():
        nabla_b = [np.zeros(b.shape) for b in net.biases]
        nabla_w = [np.zeros(w.shape) for w in net.weights]
        for xi, yi in zip(x, y):
            delta_nabla_b, delta_nabla_w = net.backprop(xi[:, None], yi[:, None])
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        return {
            "weights": [w / len(x) for w in nabla_w],
            "biases": [b[:, 0] / len(x) for b in nabla_b],
        }

    return gradient


def max_differences(a, b):
    """Per layer, ``(max |Δ ∂C/∂w|, max |Δ ∂C/∂b|)`` between the gradients ``a`` and ``b``
    (pytrees shaped like the params): a list of float pairs, the book's layer 2 first."""
    import numpy as np

    def diff(u, v):
        return float(np.max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64))))

    return [
        (diff(wa, wb), diff(ba, bb))
        for wa, wb, ba, bb in zip(a["weights"], b["weights"], a["biases"], b["biases"])
    ]


def check_same_gradient(name, got, reference, rtol=1e-4):
    """Exits with one error line unless ``got`` equals ``reference`` to float32 rounding
    (each layer's largest difference within ``rtol`` of its largest entry)."""
    import numpy as np

    for l, ((dw, db), w, b) in enumerate(
        zip(max_differences(got, reference), reference["weights"], reference["biases"])
    ):
        scale_w, scale_b = float(np.max(np.abs(w))), float(np.max(np.abs(b)))
        if dw > rtol * scale_w + 1e-12 or db > rtol * scale_b + 1e-12:
            sys.exit(
                f"error: {name} and jax.grad differ in layer {l + 2}: max |Δ ∂C/∂w| {dw:.3g} "
                f"(of {scale_w:.3g}), max |Δ ∂C/∂b| {db:.3g} (of {scale_b:.3g})"
            )


def microseconds(call):
    """Median microseconds of one ``call()`` (which blocks until its result is ready) over
    ``--repeats`` rounds of about ``--round_seconds`` each."""
    timed(call)  # compile
    _, once = timed(call)
    n = max(1, int(FLAGS.round_seconds / max(once, 1e-9)))

    def round_of_n(r, carry):
        for _ in range(n):
            call()

    seconds, _ = rounds(round_of_n, FLAGS.repeats)
    return 1e6 * statistics.median(seconds) / n


def main(argv):
    run_guarded(run, argv)


def run():
    sizes, mini_batch_sizes = check_flags()
    import jax

    if FLAGS.check:
        with jax.enable_x64(True):
            check(sizes, mini_batch_sizes)
        return
    timings(sizes, mini_batch_sizes)


def check(sizes, mini_batch_sizes):
    import jax.numpy as jnp
    import numpy as np

    from nnjax import backprop

    print(
        f"{sizes}, quadratic cost, float64: nnjax.backprop.backprop (BP1–BP4) − jax.grad, "
        f"for the book's layers l = 2 … {len(sizes)}"
    )
    columns = ("max |∂C/∂w|", "max |Δ|", "max |∂C/∂b|", "max |Δ|")
    print(f"{'m':>5s} {'l':>5s} " + " ".join(f"{c:>12s}" for c in columns))
    for m in mini_batch_sizes:
        params, x, y = problem(sizes, m, jnp.float64, FLAGS.seed)
        by_hand, by_autodiff = backprop.backprop(params, x, y), backprop.grad(params, x, y)
        for l, (dw, db) in enumerate(max_differences(by_hand, by_autodiff)):
            w, b = by_autodiff["weights"][l], by_autodiff["biases"][l]
            print(
                f"{m:5d} {l + 2:5d} {float(np.max(np.abs(w))):12.4g} {dw:12.2g} "
                f"{float(np.max(np.abs(b))):12.4g} {db:12.2g}"
            )


def timings(sizes, mini_batch_sizes):
    import jax

    from nnjax import backprop

    print(
        f"{jax.default_backend()}: {jax.devices()[0].device_kind}; {sizes}, quadratic cost, "
        "float32 (the book's loop: NumPy float64); µs per mini-batch, median of "
        f"{FLAGS.repeats} rounds"
    )
    single = jax.jit(backprop.backprop)
    variants = {
        "per-example loop": per_example_loop(single),
        "matrix (BP1-BP4)": jax.jit(backprop.backprop),
        "jax.grad": jax.jit(backprop.grad),
    }
    print(f"{'m':>5s} {'variant':24s} {'µs':>10s} {'vs loop':>8s} {'vs book':>8s}")
    for m in mini_batch_sizes:
        params, x, y = problem(sizes, m, jax.numpy.float32, FLAGS.seed)
        reference = variants["jax.grad"](params, x, y)
        book = book_loop(params, x, y)
        check_same_gradient("the book's network.py loop", book(), reference)
        for name, fn in variants.items():
            check_same_gradient(name, fn(params, x, y), reference)
        rows = {"book network.py loop": microseconds(book)}
        for name, fn in variants.items():
            args = (params, x, y)
            rows[name] = microseconds(lambda fn=fn, args=args: jax.block_until_ready(fn(*args)))
        loop, book_us = rows["per-example loop"], rows["book network.py loop"]
        for name, us in rows.items():
            print(
                f"{m:5d} {name:24s} {us:10.1f} {loop / us:7.1f}x {book_us / us:7.1f}x", flush=True
            )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
