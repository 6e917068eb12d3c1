r"""Seconds per chapter 1 epoch of the C++ CPU kernel on free and on busy cores.

    python -m benchmarks.kernel_threads              # free cores, then every core busy
    python -m benchmarks.kernel_threads --busy=1     # one core busy instead

The kernel splits each step between threads that meet at a barrier twice a step. When other
processes hold the cores, each wait can last a scheduler slice, so by default the kernel
watches its waits and finishes the epoch on one thread once they take a third of its time.
This times [784, 30, 10], mini-batch 10, η = 3.0 on the book's 50,000 training images with
one thread, with ``default_threads()`` fixed, and with the default (watched) choice: first
on the cores as they are, then with ``--busy`` processes spinning (default: one per core
this process may use). The three take turns epoch by epoch. Prints min / median / max
seconds per epoch and the threads each epoch ended on.
"""

import os
import statistics
import subprocess
import sys

from absl import app, flags

from benchmarks.timing import take_turns, timed
from experiments.checks import UsageError
from experiments.cli import DATA_DIR_HELP, parse_flags, run_guarded

FLAGS = flags.FLAGS
flags.DEFINE_integer("epochs", 5, "Timed epochs of each variant in each condition.", lower_bound=1)
flags.DEFINE_integer(
    "busy",
    None,
    "Spinning processes for the busy condition (default: one per usable core; 0 skips it).",
    lower_bound=0,
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)

# A busy process that also ends by itself if this one dies without killing it.
SPIN = """
import os, sys
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


def report(condition, results):
    print(f"{condition}:")
    for name, (times, outs) in results.items():
        used = [int(threads) for _, threads in outs]
        print(
            f"  {name:34s} {min(times):7.3f} {statistics.median(times):7.3f} "
            f"{max(times):7.3f}   ended on {used} threads",
            flush=True,
        )


def main(argv):
    run_guarded(run, argv)


def run():
    import jax

    from nnjax import cpu_kernel, data, network, optimizers
    from nnjax.epoch import mini_batches

    if jax.default_backend() != "cpu":
        raise UsageError("the C++ kernel is the CPU's: run with JAX_PLATFORMS=cpu")
    if os.environ.get("NNJAX_CPU_THREADS"):
        raise UsageError("unset NNJAX_CPU_THREADS: it turns the watching off")
    cores = len(os.sched_getaffinity(0))
    if FLAGS.busy is not None and FLAGS.busy > 4 * cores:  # each one a spinning process
        raise UsageError(f"--busy={FLAGS.busy} is more than 4 per usable core ({cores} here)")
    dataset = data.load("mnist", FLAGS.data_dir, progress=print)
    x, y = jax.device_put(dataset.train.x), jax.device_put(dataset.train.y)
    params = network.init(jax.random.key(0), [784, 30, 10])
    try:
        cpu_kernel.check(network.model(), optimizers.make("sgd"), params, x, 10)  # builds it
    except ValueError as e:
        raise UsageError(str(e)) from None
    batches, _ = mini_batches(jax.random.key(1), len(y), 10)
    threads = cpu_kernel.default_threads()
    epoch = jax.jit(cpu_kernel.sgd_epoch_and_threads, static_argnames="threads")
    variants = {
        label: (lambda r, t=t: epoch(params, x, y, batches, 3.0, threads=t))
        for label, t in [
            ("1 thread", 1),
            (f"{threads} threads, fixed", threads),
            (f"default (up to {threads}, watched)", None),
        ]
    }
    for call in variants.values():  # compile
        timed(call, 0)
    print("[784, 30, 10], mini-batch 10, 50,000 images; seconds per epoch: min / median / max")
    report("cores as they are", take_turns(variants, FLAGS.epochs))
    busy = cores if FLAGS.busy is None else FLAGS.busy
    if busy:
        spinners = [
            subprocess.Popen([sys.executable, "-c", SPIN, str(os.getpid())]) for _ in range(busy)
        ]
        try:
            report(
                f"{busy} spinning process{'es' * (busy > 1)} beside it",
                take_turns(variants, FLAGS.epochs),
            )
        finally:
            for p in spinners:
                p.kill()
                p.wait()


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
