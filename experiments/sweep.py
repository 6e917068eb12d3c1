r"""Sweeps: train many networks of one architecture at once, one per point of a grid.

    # seed-to-seed noise of the book's chapter 1 network, 16 seeds:
    python -m experiments.sweep --seeds=0:16
    # chapter 3's three learning rates, 3 seeds each:
    python -m experiments.sweep --cost=cross_entropy --l2=5 --init=scaled \
        --eta=0.025,0.25,2.5 --seeds=0:3 --png=eta.png
    # accuracy against the training-set size:
    python -m experiments.sweep --cost=cross_entropy --eta=0.5 --l2=5 \
        --train_size=1000,3000,10000,30000,50000 --seeds=0:3 --png=size.png

The grid is the product of ``--seeds``, ``--eta``, ``--l2`` and ``--train_size``; each of its
points is one network, exactly the run ``python -m experiments.mnist`` makes with the same
flags and ``--seed``. Prints progress, one row per network (best and final accuracy, epoch of
best), then the mean ± sd over seeds of each setting; ``--jsonl`` writes one JSON object per
network, ``--png`` a figure: accuracy after each epoch, and best and final accuracy against
the swept value, with ±1 sd error bars.
"""

import time

from absl import app, flags

from experiments.checks import UsageError, check_fits, check_png, check_writable
from experiments.cli import (
    define_data_flags,
    define_network_flags,
    define_training_flags,
    matmul_precision,
    optimizer_from_flags,
    parse_flags,
    run_guarded,
)
from experiments.devices import define_device_flags, device_mesh, start_processes
from experiments.flag_lists import parse_hidden
from experiments.kernels import check_kernel, define_kernel_flags, describe_kernel
from experiments.training import (
    check_devices,
    check_float32,
    check_mini_batch,
    check_ranges,
    first_images,
)
from experiments.writing import JsonLines
from nnjax import fit

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "hidden", "30", "Hidden layer sizes, comma separated (e.g. 30 or 30,30; empty for none)."
)
flags.DEFINE_integer("epochs", 30, "Number of epochs of every network.")
flags.DEFINE_integer("mini_batch_size", 10, "Mini-batch size m.")
flags.DEFINE_string(
    "seeds", "0", "Seeds: a range A:B (A, A+1, ..., B−1), a list 0,3,7, or both (0:4,10)."
)
flags.DEFINE_string("eta", "3.0", "Learning rates η, comma separated.")
flags.DEFINE_string(
    "l2",
    "0",
    "L2 regularisation strengths λ, comma separated (as experiments.mnist's --l2: weight "
    "decay 1 − ηλ/n each step, n the training-set size).",
)
flags.DEFINE_string(
    "train_size",
    "",
    "Training-set sizes, comma separated (the first N training images; empty: all).",
)
define_data_flags()
define_network_flags()
define_training_flags()
flags.DEFINE_enum(
    "eval_split", "test", ["test", "validation"], "Which split is scored after each epoch."
)
flags.DEFINE_enum(
    "strategy",
    "auto",
    ["auto", *fit.STRATEGIES],
    "vmap: all networks in one compiled epoch; loop: one network after another; auto: loop "
    "on the CPU, vmap elsewhere.",
)
flags.DEFINE_integer(
    "chunk",
    None,
    "At most this many networks per compiled program (vmap; "
    "default: as many as fit in memory, and at most 16 on the CPU).",
)
define_kernel_flags(("jax", "blocked"))
define_device_flags()
flags.DEFINE_string("jsonl", None, "Write one JSON object per network to this file.")
flags.DEFINE_string("png", None, "Draw the sweep's figure into this PNG file.")


def parse_flag(name: str, parse, *args):
    """``parse(FLAGS.name, *args)``, its ValueError turned into a UsageError naming the flag."""
    try:
        return parse(FLAGS[name].value, *args)
    except ValueError as e:
        raise UsageError(f"--{name}={FLAGS[name].value}: {e}") from None


def check_flags() -> dict:
    """Validates every flag before any work starts; returns the parsed lists."""
    from nnjax import grid

    parsed = dict(
        hidden=parse_hidden(FLAGS.hidden),
        seeds=parse_flag("seeds", grid.parse_seeds),
        etas=parse_flag("eta", grid.parse_values, float, True),
        lmbdas=parse_flag("l2", grid.parse_values, float, False),
        train_sizes=(
            parse_flag("train_size", grid.parse_values, int, True)
            if FLAGS.train_size.strip()
            else []
        ),
    )
    check_ranges(positive=("epochs", "mini_batch_size", "chunk"), fractions=("momentum",))
    for name, values in (("eta", parsed["etas"]), ("l2", parsed["lmbdas"])):
        for value in values:
            check_float32(name, value)
    if FLAGS.jsonl:
        check_writable("jsonl", FLAGS.jsonl)
    if FLAGS.png is not None:
        check_png("png", FLAGS.png)
    optimizer_from_flags()
    check_devices()
    return parsed


def run() -> None:
    parsed = check_flags()
    import jax

    say = start_processes()  # print on process 0, which alone writes the files
    primary = jax.process_index() == 0
    from nnjax import activations, costs, data, grid, network, sweep

    mesh = device_mesh(FLAGS.devices, FLAGS.mini_batch_size)
    cost, activation = costs.get(FLAGS.cost), activations.get(FLAGS.activation)
    check_kernel(network.model(cost, activation), optimizer_from_flags(), mesh)  # before data
    dataset = data.load(FLAGS.dataset, FLAGS.data_dir, progress=say)
    eval_split = getattr(dataset, FLAGS.eval_split)
    n_data = len(dataset.train.y)
    train_sizes = parsed["train_sizes"] or [n_data]
    for n in train_sizes:
        first_images(dataset.train, n, dataset.name)
        check_mini_batch(n)
    sizes = [dataset.train.x.shape[1], *parsed["hidden"], dataset.num_classes]
    settings = grid.grid(parsed["seeds"], parsed["etas"], parsed["lmbdas"], train_sizes)
    strategy = fit.pick_strategy(FLAGS.strategy, len(settings))
    shapes = jax.eval_shape(lambda: network.init(jax.random.key(0), sizes))
    data_bytes = dataset.train.x.nbytes + dataset.test.x.nbytes
    # One network must fit: the sweep trains as many at once as fit (nnjax.chunks).
    check_fits("hidden", FLAGS.hidden, shapes, 3, data_bytes)
    title = (
        f"{sizes} {activation.name}, {cost.name} cost, {FLAGS.init} init, mini-batch "
        f"{FLAGS.mini_batch_size}, {FLAGS.optimizer}"
        + (f" μ = {FLAGS.momentum:g}" if FLAGS.momentum else "")
        + f", {FLAGS.epochs} epoch{'s' * (FLAGS.epochs != 1)}, "
        f"{len(parsed['seeds'])} seed{'s' * (len(parsed['seeds']) != 1)}"
        + (f", η = {parsed['etas'][0]:g}" if len(parsed["etas"]) == 1 else "")
        + (f", λ = {parsed['lmbdas'][0]:g}" if len(parsed["lmbdas"]) == 1 else "")
        + (f", n = {train_sizes[0]}" if len(train_sizes) == 1 else "")
    )
    say(
        f"nnjax sweep: {len(settings)} network{'s' * (len(settings) != 1)} ({title}); "
        f"{dataset.name} "
        f"{FLAGS.eval_split} ({len(eval_split.y)} images); strategy {strategy} on "
        f"{jax.default_backend()}{describe_kernel()}"
        f"{f' ({mesh.size} devices, data parallel)' if mesh else ''}",
        flush=True,
    )

    jsonl = JsonLines(FLAGS.jsonl if primary else None, flag="jsonl")
    common = dict(
        hidden=parsed["hidden"],
        cost=cost.name,
        activation=activation.name,
        init=FLAGS.init,
        optimizer=FLAGS.optimizer,
        momentum=FLAGS.momentum,
        mini_batch_size=FLAGS.mini_batch_size,
        epochs=FLAGS.epochs,
        dataset=dataset.name,
        eval_split=FLAGS.eval_split,
    )

    def on_result(setting, run):
        jsonl.write({**grid.record(setting, run), **common})

    start = time.perf_counter()
    with jsonl:
        results = sweep.run(
            settings,
            sizes,
            (dataset.train.x, dataset.train.y),
            (eval_split.x, eval_split.y),
            epochs=FLAGS.epochs,
            mini_batch_size=FLAGS.mini_batch_size,
            cost=cost,
            activation=activation,
            init=FLAGS.init,
            optimizer=FLAGS.optimizer,
            momentum=FLAGS.momentum,
            strategy=strategy,
            chunk=FLAGS.chunk,
            matmul_precision=matmul_precision(FLAGS.matmul_precision, jax.default_backend()),
            mesh=mesh,
            kernel=FLAGS.kernel,
            block=FLAGS.block,
            progress=lambda m: say(m, flush=True),
            on_result=on_result,
        )
    seconds = time.perf_counter() - start

    say(f"\n{'seed':>6s} {'η':>8s} {'λ':>8s} {'n':>6s} {'best':>8s} {'epoch':>6s} {'final':>8s}")
    for s, r in results:
        setting = f"{s.seed:6d} {s.eta:8g} {s.lmbda:8g} {s.train_size:6d} "
        if r.diverged is not None:
            say(setting + f"  diverged in epoch {r.diverged} (inf or NaN parameters)")
            continue
        say(
            setting
            + f"{100 * r.best.accuracy:7.2f}% {r.best.epoch:6d} {100 * r.epochs[-1].accuracy:7.2f}%"
        )
    summaries = grid.summarise(results)
    say(
        f"\n{'η':>8s} {'λ':>8s} {'n':>6s} {'seeds':>5s} {'best (mean ± sd)':>18s} "
        f"{'final (mean ± sd)':>18s}"
    )
    for s in summaries:
        say(
            f"{s.eta:8g} {s.lmbda:8g} {s.train_size:6d} {s.seeds:5d} "
            + (
                f"{100 * s.best_mean:9.2f} ± {100 * s.best_sd:4.2f}% "
                f"{100 * s.final_mean:9.2f} ± {100 * s.final_sd:4.2f}%"
                if s.seeds
                else f"{'':18s} {'':18s}"
            )
            + (f"  ({s.diverged} diverged, not counted)" if s.diverged else "")
        )
    network_epochs = sum(len(r.epochs) for _, r in results)  # diverged networks stopped
    say(
        f"\n{len(results)} networks × {FLAGS.epochs} epochs in {seconds:.1f} s, "
        f"compile and evaluation included ({network_epochs / seconds:.1f} network-epochs/s)."
    )
    if jsonl.path:
        say(f"Wrote {FLAGS.jsonl}")
    if FLAGS.png and primary:
        from experiments import figures

        figures.draw_sweep(summaries, FLAGS.png, title)
        say(f"Wrote {FLAGS.png}")


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
