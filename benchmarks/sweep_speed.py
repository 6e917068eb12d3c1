r"""Network-epochs per second of a sweep: K networks [784, 30, 10], mini-batch 10.

    python -m benchmarks.sweep_speed                  # default K for this backend
    python -m benchmarks.sweep_speed --k=1,64,1024,4096 --strategies=vmap
    python -m benchmarks.sweep_speed --hidden=30,30    # two hidden layers
    python -m benchmarks.sweep_speed --kernels=jax,blocked --block=4,8,16 --bandwidth=4800
    python -m benchmarks.sweep_speed --kernels=jax,blocked --data_dtype=float32,bfloat16

For each K, each strategy of ``nnjax.sweep`` trains K networks (seeds 0..K−1, η = 3.0,
quadratic cost, ``optimizers.make("sgd")``) on the book's 50,000 training images and is
timed over ``--epochs`` epochs, compile excluded (reported separately), evaluation excluded;
the strategies take turns epoch by epoch and the best epoch (least disturbed by other
processes) and the median are reported:

* ``vmap``: ``nnjax.epoch.epoch(..., stacked=True)``, all K networks in one compiled epoch;
* ``loop``: one network's compiled ``epoch``, run network after network.

A loop's rate does not depend on K, so it is timed only for K ≤ ``--loop_max_k``.
``--kernels=jax,blocked`` times both epochs (``--block=4,8,16``: the blocked epoch's block
sizes). ``--data_dtype=float32,bfloat16`` also times each with the training images stored
on the device as bfloat16: the book's pixels are k/256, exact in bfloat16's 8 significant
bits (checked on load), and every product promotes them to the parameters' float32, so the
networks train exactly as on float32 images while the data move half the bytes. Prints one
row per (K, strategy, kernel, data dtype): network-epochs per second (best epoch, median
epoch), the best epoch's seconds for all K networks, and the memory traffic model's bytes
per network-step (``traffic``) with the rate that bandwidth alone would allow
(``--bandwidth`` in GB/s; on a GPU its peak, e.g. 4800 for an H200).
"""

import statistics

from absl import app, flags

from benchmarks.networks import ETA, M, stored, strategy_epochs, traffic
from benchmarks.timing import take_turns
from experiments.checks import UsageError, refuse_given
from experiments.cli import DATA_DIR_HELP, parse_flags, run_guarded
from experiments.flag_lists import parse_names, parse_positive_ints

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
flags.DEFINE_list("kernels", ["jax"], "jax and/or blocked (nnjax.epoch's kernel).")
flags.DEFINE_list("block", ["8"], "Mini-batches per block of the blocked kernel, comma separated.")
flags.DEFINE_list(
    "data_dtype",
    ["float32"],
    "float32 and/or bfloat16: how the training images are stored on the device.",
)
flags.DEFINE_float(
    "bandwidth",
    0.0,
    "Memory bandwidth in GB/s: print the rate the traffic model allows (0: do not).",
    lower_bound=0.0,
)
flags.DEFINE_integer("loop_max_k", 16, "Time the loop only up to this K.", lower_bound=0)
flags.DEFINE_integer(
    "train_size", 50000, "Training images per epoch.", lower_bound=M, upper_bound=50000
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)
flags.DEFINE_list("hidden", ["30"], "Hidden layer sizes (the book's [784, 30, 10] by default).")
flags.DEFINE_enum(
    "matmul_precision",
    "highest",
    ["highest", "default"],
    "Precision of float32 products (default: TF32 on recent GPUs).",
)


def sizes():
    """The timed network's layer sizes; UsageError naming --hidden if they are not sizes."""
    return [784, *parse_positive_ints("hidden", FLAGS.hidden, allow_none=True), 10]


def main(argv):
    run_guarded(run, argv)


def run():
    ks = parse_positive_ints("k", FLAGS.k) if FLAGS.k is not None else None
    sizes()  # checks --hidden before JAX starts
    strategies = parse_names("strategies", FLAGS.strategies, ("vmap", "loop"))
    kernels = parse_names("kernels", FLAGS.kernels, ("jax", "blocked"))
    if "blocked" not in kernels:
        refuse_given(["block"], "is for --kernels=blocked")
    dtypes = parse_names("data_dtype", FLAGS.data_dtype, ("float32", "bfloat16"))
    blocks = [None] * ("jax" in kernels)
    if "blocked" in kernels:
        blocks += parse_positive_ints("block", FLAGS.block)
    import jax

    from nnjax import data, fit

    ks = ks or ([1, 4, 16] if jax.default_backend() == "cpu" else [1, 64, 256, 1024, 4096])
    dataset = data.load("mnist", FLAGS.data_dir, progress=print)
    try:
        xs = {dtype: stored(dataset.train.x[: FLAGS.train_size], dtype) for dtype in dtypes}
    except ValueError as e:
        raise UsageError(f"--data_dtype={e}") from None
    y = jax.device_put(dataset.train.y[: FLAGS.train_size])
    print(
        f"backend {jax.default_backend()}: {jax.devices()[0].device_kind}; {sizes()}, "
        f"mini-batch {M}, η = {ETA}, {FLAGS.train_size} images, {FLAGS.epochs} timed "
        f"epoch{'s' * (FLAGS.epochs != 1)}; "
        f"--strategy=auto picks {fit.pick_strategy('auto', 16)} for K > 1",
        flush=True,
    )
    steps = -(-FLAGS.train_size // M)
    print(
        f"{'K':>6s} {'strategy':9s} {'kernel':11s} {'data':8s} {'network-epochs/s':>17s} "
        f"{'(median)':>9s} {'s per epoch':>12s} {'compile s':>10s} {'KB/step':>8s}"
        + (f" {'bound/s':>8s}" if FLAGS.bandwidth else ""),
        flush=True,
    )
    with jax.default_matmul_precision(FLAGS.matmul_precision):
        for k in ks:
            runs = {}
            for strategy in strategies:
                if strategy == "loop" and k > FLAGS.loop_max_k:
                    continue
                for block in blocks:
                    for dtype, x in xs.items():
                        variant = strategy, block, dtype
                        runs[variant] = strategy_epochs(strategy, k, x, y, sizes(), block)
            # The best epoch of each is the least disturbed.
            turns = take_turns({v: one_epoch for v, (one_epoch, *_) in runs.items()}, FLAGS.epochs)
            for (strategy, block, dtype), (seconds, _) in turns.items():
                best, median = min(seconds), statistics.median(seconds)
                moved = traffic(sizes(), M, block, data_bytes=xs[dtype].dtype.itemsize)
                kernel = "jax" if block is None else f"blocked({block})"
                bound = FLAGS.bandwidth * 1e9 / (moved * steps)
                print(
                    f"{k:6d} {strategy:9s} {kernel:11s} {dtype:8s} {k / best:17.1f} "
                    f"{k / median:9.1f} {best:12.3f} {runs[strategy, block, dtype][1]:10.2f} "
                    f"{moved / 1000:8.0f}" + (f" {bound:8.0f}" if FLAGS.bandwidth else ""),
                    flush=True,
                )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
