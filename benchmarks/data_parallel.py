r"""Data-parallel throughput: training examples per second on 1, 2, 4, … devices.

    python -m benchmarks.data_parallel                       # [784, 30, 10], m = 10, 40, 400
    python -m benchmarks.data_parallel --mini_batch_sizes=100 --hidden=100 --epochs=5

Trains the book's network on the 50,000 training images with ``nnjax.epoch.epoch(...,
mesh=parallel.make_mesh(n))`` for every device count n that divides the mini-batch size,
plus the single-device epoch (no mesh) as the baseline. Prints the median seconds per epoch
(compile excluded), examples per second and the speed relative to that baseline, and the test
accuracy reached, which should agree across a row.

On a CPU the devices are virtual (``--cpu_devices``, default 8): they share the machine's
cores, so the table measures the cost of splitting and all-reducing, not a speedup.
"""

import statistics

from absl import app, flags

from benchmarks.timing import rounds, timed
from experiments.checks import UsageError
from experiments.cli import DATA_DIR_HELP, parse_flags, run_guarded
from experiments.flag_lists import parse_positive_ints

FLAGS = flags.FLAGS
flags.DEFINE_string("mini_batch_sizes", "10,40,400", "Mini-batch sizes m, comma separated.")
flags.DEFINE_string(
    "device_counts",
    "1,2,4,8",
    "Device counts to try (those above the available number, or not dividing m, are skipped).",
)
flags.DEFINE_integer("hidden", 30, "Hidden layer size.", lower_bound=1)
flags.DEFINE_integer("epochs", 3, "Timed epochs per cell.", lower_bound=1)
flags.DEFINE_integer(
    "cpu_devices", 8, "On the CPU, this many virtual devices.", lower_bound=1, upper_bound=64
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)


def time_epochs(epoch, state, key):
    """Median seconds of FLAGS.epochs calls of ``epoch(state, key_k)`` after one untimed
    call (the compile), and the state (params, opt_state) they end with."""
    import jax

    timed(epoch, state, key)  # compiles
    seconds, state = rounds(lambda k, s: epoch(s, jax.random.fold_in(key, k)), FLAGS.epochs, state)
    return statistics.median(seconds), state


def main(argv):
    run_guarded(run, argv)


def run():
    sizes_m = parse_positive_ints("mini_batch_sizes", FLAGS.mini_batch_sizes)
    counts = parse_positive_ints("device_counts", FLAGS.device_counts)
    import jax

    jax.config.update("jax_num_cpu_devices", FLAGS.cpu_devices)  # only the CPU client reads it
    from nnjax import data, network, optimizers, parallel
    from nnjax.epoch import epoch

    counts = [n for n in counts if n <= jax.device_count()]
    mnist = data.load("mnist", FLAGS.data_dir)
    x, y = jax.device_put(mnist.train.x), jax.device_put(mnist.train.y)
    test = (jax.device_put(mnist.test.x), jax.device_put(mnist.test.y))
    n = len(mnist.train.y)
    if max(sizes_m) > n:  # an epoch of no step would be timed
        raise UsageError(f"--mini_batch_sizes: {max(sizes_m)} exceeds the {n} training images")
    init_key, key = jax.random.split(jax.random.key(0))
    params0 = network.init(init_key, [784, FLAGS.hidden, 10])
    eta = 3.0
    model, tx = network.model(), optimizers.make("sgd")
    state0 = (params0, optimizers.init(tx, params0, eta=eta))
    backend = jax.default_backend()
    print(
        f"[784, {FLAGS.hidden}, 10], {n} training images, η={eta:g}, median of "
        f"{FLAGS.epochs} epochs; {jax.device_count()} {backend} devices "
        f"({jax.devices()[0].device_kind}), JAX {jax.__version__}"
    )
    if backend == "cpu":
        print(
            "Virtual CPU devices share the machine's cores: this measures the overhead of "
            "splitting each mini-batch, not a speedup."
        )
    header = f"{'m':>5}  {'devices':>10}  {'s/epoch':>8}  {'examples/s':>11}  {'vs 1':>5}  correct"
    print(header)
    print("-" * len(header))
    with jax.default_matmul_precision("highest"):
        for m in sizes_m:
            base_s, (params, _) = time_epochs(
                lambda s, k, m=m: epoch(*s, x, y, k, model=model, tx=tx, mini_batch_size=m),
                state0,
                key,
            )
            correct = int(network.evaluate(params, *test))
            print(
                f"{m:>5}  {'1, no mesh':>10}  {base_s:>8.3f}  {n / base_s:>11,.0f}  "
                f"{1.0:>5.2f}  {correct}",
                flush=True,
            )
            for count in counts:
                if m % count:
                    print(f"{m:>5}  {count:>10}  {'—':>8}  (m not divisible)")
                    continue
                mesh = parallel.make_mesh(count)
                xm, ym = parallel.replicate((mnist.train.x, mnist.train.y), mesh)
                seconds, (params, _) = time_epochs(
                    lambda s, k, xm=xm, ym=ym, m=m, mesh=mesh: epoch(
                        *s, xm, ym, k, model=model, tx=tx, mini_batch_size=m, mesh=mesh
                    ),
                    parallel.replicate(state0, mesh),
                    key,
                )
                correct = int(network.evaluate(parallel.local_copy(params), *test))
                print(
                    f"{m:>5}  {count:>10}  {seconds:>8.3f}  {n / seconds:>11,.0f}  "
                    f"{base_s / seconds:>5.2f}  {correct}",
                    flush=True,
                )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
