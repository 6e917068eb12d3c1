r"""Network-epochs per second of a sweep: K networks [784, 30, 10], mini-batch 10.

    python -m benchmarks.sweep_speed                  # default K for this backend
    python -m benchmarks.sweep_speed --k=1,64,1024,4096 --strategies=vmap
    python -m benchmarks.sweep_speed --hidden=30,30    # a network the C++ kernel does not train

For each K, each strategy of ``nnjax.sweep`` trains K networks (seeds 0..K−1, η = 3.0,
quadratic cost) on the book's 50,000 training images and is timed over ``--epochs`` epochs,
compile excluded (reported separately), evaluation excluded; the strategies take turns
epoch by epoch and the best epoch (least disturbed by other processes) and the median are
reported:

* ``vmap``: ``sweep.sweep_epoch``, all K networks in one compiled epoch;
* ``loop``: ``sgd.sgd_epoch`` network after network (on the CPU, nnjax's C++ kernel);
* ``loop-xla`` (CPU only): the same loop with ``kernel="xla"``, the pure-JAX epoch.

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
flags.DEFINE_list(
    "strategies", ["vmap", "loop"], "vmap and/or loop (loop-xla is added on the CPU with loop)."
)
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


def vmap_epochs(k, x, y):
    """Compiles the vmapped epoch of K networks; returns (one_epoch(e), compile seconds)."""
    import jax
    import jax.numpy as jnp

    from nnjax import costs, sweep

    params, keys = sweep.init_networks(range(k), sizes())
    eta = jnp.full((k,), ETA, jnp.float32)
    lmbda = jnp.zeros((k,), jnp.float32)
    fold = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None)))
    start = time.perf_counter()
    epoch = sweep.sweep_epoch.lower(
        params, x, y, fold(keys, 0), eta, lmbda, FLAGS.train_size, M, costs.quadratic
    ).compile()
    compile_s = time.perf_counter() - start
    state = [jax.block_until_ready(params)]

    def one_epoch(e):
        state[0] = jax.block_until_ready(epoch(state[0], x, y, fold(keys, e), eta, lmbda))

    return one_epoch, compile_s


def loop_epochs(k, x, y, kernel):
    """Compiles sgd.sgd_epoch; returns (one_epoch(e) of all K networks in turn, compile s)."""
    import jax
    import jax.numpy as jnp

    from nnjax import costs, network, sgd

    x, y = x[: FLAGS.train_size], y[: FLAGS.train_size]
    eta, lmbda = jnp.float32(ETA), jnp.float32(0.0)
    nets = []
    for seed in range(k):
        init_key, key = jax.random.split(jax.random.key(seed))
        nets.append([network.init(init_key, sizes()), key])
    start = time.perf_counter()
    epoch = sgd.sgd_epoch.lower(
        nets[0][0], x, y, nets[0][1], eta, M, costs.quadratic, kernel=kernel, lmbda=lmbda
    ).compile()
    compile_s = time.perf_counter() - start

    def one_epoch(e):
        for net in nets:
            net[0] = jax.block_until_ready(
                epoch(net[0], x, y, jax.random.fold_in(net[1], e), eta, lmbda=lmbda)
            )

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

    from nnjax import cpu_kernel, data

    cpu = jax.default_backend() == "cpu"
    ks = ks or ([1, 4, 16] if cpu else [1, 64, 256, 1024, 4096])
    if cpu and "loop" in strategies:
        strategies.append("loop-xla")
    dataset = data.load("mnist", FLAGS.data_dir, progress=print)
    x, y = jax.device_put(dataset.train.x), jax.device_put(dataset.train.y)
    device = jax.devices()[0]
    kernel_note = ""
    if cpu:
        from nnjax import costs, network

        probe = network.init(jax.random.key(0), sizes())
        kernel_note = (
            f"; loop uses the C++ kernel, {cpu_kernel.describe_threads()}"
            if cpu_kernel.supports(probe, x, M, costs.quadratic)
            else "; no C++ kernel"
        )
    from nnjax import costs, sweep

    auto = sweep.pick_strategy("auto", sizes(), M, costs.quadratic)
    print(
        f"backend {jax.default_backend()}: {device.device_kind}; {sizes()}, mini-batch {M}, "
        f"η = {ETA}, {FLAGS.train_size} images, {FLAGS.epochs} timed epochs{kernel_note}; "
        f"--strategy=auto picks {auto}",
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
                if strategy.startswith("loop") and k > FLAGS.loop_max_k:
                    continue
                if strategy == "vmap":
                    runs[strategy] = vmap_epochs(k, x, y)
                else:
                    runs[strategy] = loop_epochs(
                        k, x, y, "xla" if strategy == "loop-xla" else "auto"
                    )
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
