r"""Network-epochs per second of a sweep: K networks [784, 30, 10], mini-batch 10.

    python -m benchmarks.sweep_speed                  # default K for this backend
    python -m benchmarks.sweep_speed --k=1,64,1024,4096 --strategies=vmap
    python -m benchmarks.sweep_speed --hidden=30,30    # two hidden layers

For each K, each strategy of ``nnjax.sweep`` trains K networks (seeds 0..K−1, η = 3.0,
quadratic cost, ``optimizers.make("sgd")``) on the book's 50,000 training images and is
timed over ``--epochs`` epochs, compile excluded (reported separately), evaluation excluded;
the strategies take turns epoch by epoch and the best epoch (least disturbed by other
processes) and the median are reported:

* ``vmap``: ``nnjax.epoch.epoch(..., stacked=True)``, all K networks in one compiled epoch;
* ``loop``: one network's compiled ``epoch``, run network after network.

A loop's rate does not depend on K, so it is timed only for K ≤ ``--loop_max_k``.
Prints one row per (K, strategy): network-epochs per second (best epoch, median epoch) and
the best epoch's seconds for all K networks.
"""

import statistics
import time

from absl import app, flags

from experiments.checks import UsageError, parse_positive_ints
from experiments.cli import DATA_DIR_HELP, run_guarded

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "k", None, "Numbers of networks (default: 1,4,16 on the CPU; 1,64,256,1024,4096 elsewhere)."
)
flags.DEFINE_list("strategies", ["vmap", "loop"], "vmap and/or loop.")
flags.DEFINE_integer(
    "epochs",
    3,
    "Timed epochs per (K, strategy), the strategies taking "
    "turns; the best and the median are reported.",
    lower_bound=1,
)
flags.DEFINE_integer("loop_max_k", 16, "Time the loop only up to this K.", lower_bound=0)
flags.DEFINE_integer(
    "train_size", 50000, "Training images per epoch.", lower_bound=1, upper_bound=50000
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)
flags.DEFINE_list("hidden", ["30"], "Hidden layer sizes (the book's [784, 30, 10] by default).")
flags.DEFINE_enum(
    "matmul_precision",
    "highest",
    ["highest", "default"],
    "Precision of float32 products (default: TF32 on recent GPUs).",
)

M = 10


def sizes():
    """The timed network's layer sizes; UsageError naming --hidden if they are not sizes."""
    return [784, *parse_positive_ints("hidden", FLAGS.hidden, allow_none=True), 10]


ETA = 3.0


def strategy_epochs(strategy, k, x, y):
    """Compiles the epoch of K networks for ``strategy`` (vmap: one stacked epoch of all K;
    loop: one network's epoch, run K times); returns (one_epoch(e), compile seconds)."""
    import jax

    from nnjax import network, optimizers, sweep
    from nnjax.epoch import epoch

    params, keys = sweep.init_networks(range(k), sizes())
    tx = optimizers.make("sgd")
    opt_state = jax.vmap(lambda p: optimizers.init(tx, p, eta=ETA))(params)
    stacked = strategy == "vmap"
    if stacked:
        nets = [((params, opt_state), keys)]
        fold = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None)))
    else:
        nets = [(jax.tree.map(lambda a, i=i: a[i], (params, opt_state)), keys[i]) for i in range(k)]
        fold = jax.random.fold_in
    jax.block_until_ready(nets)
    start = time.perf_counter()
    compiled = epoch.lower(
        *nets[0][0],
        x,
        y,
        fold(nets[0][1], 0),
        model=network.model(),
        tx=tx,
        mini_batch_size=M,
        stacked=stacked,
    ).compile()
    compile_s = time.perf_counter() - start

    def one_epoch(e):
        for i, (state, key) in enumerate(nets):
            nets[i] = (jax.block_until_ready(compiled(*state, x, y, fold(key, e))), key)

    return one_epoch, compile_s


def main(argv):
    run_guarded(run, argv)


def run():
    ks = parse_positive_ints("k", FLAGS.k) if FLAGS.k is not None else None
    sizes()  # checks --hidden before JAX starts
    strategies = list(FLAGS.strategies)
    if not strategies or not set(strategies) <= {"vmap", "loop"}:
        raise UsageError(f"--strategies must be vmap and/or loop, got {FLAGS.strategies}")
    import jax

    from nnjax import data, fit

    ks = ks or ([1, 4, 16] if jax.default_backend() == "cpu" else [1, 64, 256, 1024, 4096])
    dataset = data.load("mnist", FLAGS.data_dir, progress=print)
    x, y = (jax.device_put(a[: FLAGS.train_size]) for a in (dataset.train.x, dataset.train.y))
    print(
        f"backend {jax.default_backend()}: {jax.devices()[0].device_kind}; {sizes()}, "
        f"mini-batch {M}, η = {ETA}, {FLAGS.train_size} images, {FLAGS.epochs} timed epochs; "
        f"--strategy=auto picks {fit.pick_strategy('auto', 16)} for K > 1",
        flush=True,
    )
    print(
        f"{'K':>6s} {'strategy':9s} {'network-epochs/s':>17s} {'(median)':>9s} "
        f"{'s per epoch':>12s} {'compile s':>10s}",
        flush=True,
    )
    with jax.default_matmul_precision(FLAGS.matmul_precision):
        for k in ks:
            runs = {}
            for strategy in strategies:
                if strategy == "loop" and k > FLAGS.loop_max_k:
                    continue
                runs[strategy] = strategy_epochs(strategy, k, x, y)
            # The strategies take turns, epoch by epoch, so that a busy machine slows each
            # about equally; the best epoch is the least disturbed.
            times = {strategy: [] for strategy in runs}
            for e in range(FLAGS.epochs):
                for strategy, (one_epoch, _) in runs.items():
                    start = time.perf_counter()
                    one_epoch(e)
                    times[strategy].append(time.perf_counter() - start)
            for strategy, seconds in times.items():
                best, median = min(seconds), statistics.median(seconds)
                print(
                    f"{k:6d} {strategy:9s} {k / best:17.1f} {k / median:9.1f} {best:12.3f} "
                    f"{runs[strategy][1]:10.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    app.run(main)
