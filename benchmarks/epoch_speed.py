r"""Seconds per chapter 1 epoch: the book's original code, a plain JAX scan, nnjax's default
(JAX) epoch at several ``lax.scan`` unrolls, its opt-in C++ CPU epoch and, on a GPU, its
opt-in Pallas epoch (one program, and split between ``--programs`` programs).

    python -m benchmarks.epoch_speed                 # all of them, on the default backend
    python -m benchmarks.epoch_speed --numpy_epochs=0  # skip the (slow) original

All train [784, 30, 10] with the quadratic cost, mini-batch 10, η = 3.0 on the book's
50,000 training images, in one process, so their ratios are fair. Prints min / median / max
seconds per epoch (compile excluded and reported separately) and the test accuracy reached.
"""

import statistics

from absl import app, flags

from benchmarks.timing import compiled, rounds, timed
from experiments.cli import DATA_DIR_HELP, MAX_UNROLL, SEED_BOUNDS, parse_flags, run_guarded

FLAGS = flags.FLAGS
flags.DEFINE_integer("epochs", 7, "Timed epochs for each JAX implementation.", lower_bound=1)
flags.DEFINE_integer(
    "numpy_epochs", 1, "Timed epochs of the book's NumPy code (0 skips it).", lower_bound=0
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)
flags.DEFINE_integer("seed", 0, "PRNG seed.", **SEED_BOUNDS)
flags.DEFINE_enum(
    "matmul_precision",
    "highest",
    ["highest", "default"],
    "Precision of float32 products for the JAX versions (default: TF32 on GPUs).",
)
flags.DEFINE_list("unroll", ["1", "2", "5"], "lax.scan unrolls of nnjax's epoch to time.")
flags.DEFINE_list(
    "programs",
    ["2", "4", "8"],
    "On a GPU: the Pallas kernel also split between this many programs (powers of two).",
)


def plain_scan_epoch():
    """The baseline: jax.random.permutation, jax.grad of the mean cost, ``lax.scan`` over
    mini-batches gathered by index each step; what a JAX user writes first."""
    import jax
    import jax.numpy as jnp

    def cost(params, x, y):
        a = x
        for w, b in zip(params["weights"], params["biases"]):
            a = jax.nn.sigmoid(a @ w.T + b)
        return 0.5 * jnp.mean(jnp.sum((a - y) ** 2, axis=-1))

    @jax.jit
    def epoch(params, x, y, key):
        idx = jax.random.permutation(key, x.shape[0]).reshape(-1, 10)

        def step(p, i):
            g = jax.grad(cost)(p, x[i], jax.nn.one_hot(y[i], 10, dtype=x.dtype))
            return jax.tree.map(lambda a, b: a - 3.0 * b, p, g), None

        return (jax.lax.scan(step, params, idx)[0],)

    return epoch


def pallas_epoch(programs: int):
    """``nnjax.gpu_kernel``'s epoch with its first layer split between ``programs``
    programs that meet every step (``--kernel=pallas`` runs one), as a function of
    ``(params, waits, x, y, key)`` returning ``(params, waits)``: ``waits`` adds up how
    often a program stopped waiting for the others (not 0: the result is wrong)."""
    import jax

    from nnjax import epoch, gpu_kernel

    @jax.jit
    def one_epoch(params, waits, x, y, key):
        batches = epoch.mini_batches(key, x.shape[0], 10)[0]
        params, more = gpu_kernel.sgd_epoch_and_waits(params, x, y, batches, 3.0, programs=programs)
        return params, waits + more

    return one_epoch


def time_jax(name, epoch_fn, carry, x, y, key, test, **static):
    """Times ``epoch_fn(*carry, x, y, key, **static)``, which returns the new carry (its
    first item the params)."""
    import jax

    from nnjax import network

    program, compile_s = compiled(epoch_fn, *carry, x, y, key, **static)
    times, carry = rounds(
        lambda k, carry: program(*carry, x, y, jax.random.fold_in(key, k)), FLAGS.epochs, carry
    )
    correct = int(network.evaluate(carry[0], *test))
    report(name, times, f"compile {compile_s:.2f} s; {correct} / 10000 after {FLAGS.epochs} epochs")
    return statistics.median(times)


def time_numpy(dataset):
    import numpy as np

    from benchmarks import book_network

    rng = np.random.default_rng(FLAGS.seed)
    net = book_network.Network([784, 30, 10], rng)
    pairs = book_network.training_pairs(dataset.train.x, dataset.train.y)
    times, _ = rounds(lambda r, _: net.sgd_epoch(pairs, 10, 3.0, rng), FLAGS.numpy_epochs)
    correct = net.evaluate(dataset.test.x, dataset.test.y)
    report("book network.py (NumPy)", times, f"{correct} / 10000 after {FLAGS.numpy_epochs} epochs")
    return statistics.median(times)


def report(name, times, note):
    print(
        f"{name:28s} {min(times):7.3f} {statistics.median(times):7.3f} {max(times):7.3f}   {note}",
        flush=True,
    )


def main(argv):
    run_guarded(run, argv)


def run():
    from experiments.checks import UsageError
    from experiments.flag_lists import parse_positive_ints

    parse_positive_ints("unroll", FLAGS.unroll, most=MAX_UNROLL)
    programs = parse_positive_ints("programs", FLAGS.programs)
    if any(p & (p - 1) or p > 32 for p in programs):
        raise UsageError(
            f"--programs must be powers of two up to 32, got {','.join(FLAGS.programs)}"
        )
    import jax

    with jax.default_matmul_precision(FLAGS.matmul_precision):
        timings()


def timings():
    import jax

    from nnjax import cpu_kernel, data, network, optimizers
    from nnjax.epoch import epoch

    dataset = data.load("mnist", FLAGS.data_dir, progress=print)
    x, y = jax.device_put(dataset.train.x), jax.device_put(dataset.train.y)
    test = (jax.device_put(dataset.test.x), jax.device_put(dataset.test.y))
    init_key, key = jax.random.split(jax.random.key(FLAGS.seed))
    params = network.init(init_key, [784, 30, 10])
    model, tx = network.model(), optimizers.make("sgd")
    carry = (params, optimizers.init(tx, params, eta=3.0))
    print(
        f"backend {jax.default_backend()}: {jax.devices()[0].device_kind}; "
        f"[784, 30, 10], mini-batch 10, η = 3.0, 50,000 images"
    )
    print(f"{'seconds per epoch':28s} {'min':>7s} {'median':>7s} {'max':>7s}")
    plain = time_jax("plain jit + lax.scan", plain_scan_epoch(), (params,), x, y, key, test)
    static = dict(model=model, tx=tx, mini_batch_size=10)
    ours = {
        unroll: time_jax(
            f"nnjax (JAX), unroll {unroll}",
            epoch,
            carry,
            x,
            y,
            key,
            test,
            unroll=int(unroll),
            **static,
        )
        for unroll in FLAGS.unroll
    }
    default = ours.get("1", min(ours.values()))
    for unroll, seconds in ours.items():
        print(f"nnjax (JAX), unroll {unroll} vs plain scan: {plain / seconds:.2f}x")
    try:
        _, build_s = timed(cpu_kernel.check, model, tx, params, x, 10)  # builds it if need be
    except ValueError as e:
        print(f"--kernel=cpp: {e}")
    else:
        print(f"C++ CPU epoch ready in {build_s:.1f} s, {cpu_kernel.describe_threads()}")
        cpp = time_jax("nnjax --kernel=cpp", epoch, carry, x, y, key, test, kernel="cpp", **static)
        print(f"nnjax --kernel=cpp vs plain scan: {plain / cpp:.2f}x")
    if jax.default_backend() == "gpu":  # off a GPU it would time Pallas's interpreter
        fused = time_jax(
            "nnjax --kernel=pallas", epoch, carry, x, y, key, test, kernel="pallas", **static
        )
        print(f"nnjax --kernel=pallas vs plain scan: {plain / fused:.2f}x")
        for programs in FLAGS.programs:
            split = pallas_epoch(int(programs))
            seconds = time_jax(
                f"Pallas kernel, {programs} programs", split, (params, jax.numpy.int32(0)),
                x, y, key, test,
            )  # fmt: skip
            print(f"Pallas kernel, {programs} programs vs plain scan: {plain / seconds:.2f}x")
            waits = int(split(params, jax.numpy.int32(0), x, y, key)[1])
            if waits:
                print(f"  {programs} programs: one stopped waiting {waits} times; wrong result")
    if FLAGS.numpy_epochs > 0:
        book = time_numpy(dataset)
        print(f"nnjax (JAX) vs the book's code: {book / default:.1f}x")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
