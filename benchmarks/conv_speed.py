r"""Seconds per 50,000-image epoch of chapter 6's networks at mini-batch 10, for several ways
of computing the same step (experiments.conv's --convolution, --unroll, --matmul_precision,
and --networks with vmap), in one process.

    python -m benchmarks.conv_speed                     # the book's conv2 and dropout nets
    python -m benchmarks.conv_speed --images=2000 --nets=conv2
    python -m benchmarks.conv_speed --nets=dropout --convolution=xla,im2col --networks=1,5 \
        --matmul_precision=highest,default             # on a GPU: what the ensemble costs

Each epoch is ``nnjax.epoch.epoch`` of ``network3.model(...)`` (``drop_last=True``, the book's
SGD, η = 0.03) over ``--images`` training images, scaled to 50,000; compile excluded; the
median of ``--repeats`` epochs. With ``--networks=K`` the epoch trains K networks at once
(``stacked=True``, as ``experiments.conv --strategy=vmap``), and the time printed is the
whole epoch's, for all K.
"""

import itertools
import statistics

from absl import app, flags

from benchmarks.timing import compiled, rounds
from experiments.cli import DATA_DIR_HELP, MAX_UNROLL, parse_flags, run_guarded
from experiments.flag_lists import parse_names, parse_positive_ints

FLAGS = flags.FLAGS
flags.DEFINE_integer(
    "images",
    5000,
    "Training images per timed epoch (scaled to 50,000; at least a mini-batch of 10).",
    lower_bound=10,
    upper_bound=50000,
)
flags.DEFINE_integer(
    "repeats", 3, "Timed epochs per variant (the median is printed).", lower_bound=1
)
flags.DEFINE_list("nets", ["conv2", "dropout"], "Presets of experiments.conv to time.")
flags.DEFINE_list(
    "convolution",
    ["xla", "auto"],
    "How the conv-pool layers convolve, as "
    "experiments.conv --convolution: xla: XLA's convolution (cuDNN on GPUs); "
    "im2col: one matrix product over the unrolled patches; auto: nnjax's "
    "default, im2col on CPUs and CUDA GPUs, xla elsewhere.",
)
flags.DEFINE_list(
    "unroll",
    ["1"],
    "Steps per iteration of the epoch's loop (epoch.epoch's unroll); each value is timed.",
)
flags.DEFINE_list("networks", ["1"], "Networks trained at once (vmap); each value is timed.")
flags.DEFINE_list(
    "matmul_precision",
    ["highest"],
    "highest (float32 products) or default "
    "(TF32 on recent GPUs: what experiments.conv's auto uses there); each value "
    "is timed.",
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)


def check_flags() -> None:
    """Raises UsageError naming the flag whose value cannot be timed (a list with an empty
    item, an unknown name or a name given twice)."""
    from experiments.presets import CHAPTER6
    from nnjax.conv import CONVOLUTIONS

    parse_names("nets", FLAGS.nets, CHAPTER6)
    parse_names("convolution", FLAGS.convolution, CONVOLUTIONS)
    parse_positive_ints("unroll", FLAGS.unroll, most=MAX_UNROLL)
    parse_positive_ints("networks", FLAGS.networks)
    parse_names("matmul_precision", FLAGS.matmul_precision, ("highest", "default"))


def main(argv):
    run_guarded(run, argv)


def run():
    check_flags()
    import jax
    import jax.numpy as jnp

    from experiments.presets import CHAPTER6 as PRESETS
    from nnjax import data, layers, network3, optimizers
    from nnjax.epoch import epoch

    ds = data.load("mnist", FLAGS.data_dir, progress=None)
    x, y = jax.device_put(ds.train.x[: FLAGS.images]), jax.device_put(ds.train.y[: FLAGS.images])
    print(
        f"{jax.default_backend()}, {jax.device_count()} device(s); {FLAGS.images} images "
        "per timed epoch, scaled to 50,000; mini-batch 10"
    )
    tx = optimizers.make("sgd")

    def stack(trees):
        return jax.tree.map(lambda *a: jnp.stack(a), *trees)

    for name in FLAGS.nets:
        settings = PRESETS[name][2]
        for variant, unroll, k, precision in itertools.product(
            FLAGS.convolution,
            map(int, FLAGS.unroll),
            map(int, FLAGS.networks),
            FLAGS.matmul_precision,
        ):
            net = tuple(
                layers.parse(
                    settings["layers"],
                    settings.get("activation", "sigmoid"),
                    settings.get("dropout", 0.0),
                    convolution=variant,
                )
            )
            params = [network3.init(jax.random.key(i), net, (28, 28, 1)) for i in range(k)]
            # λ = 1.0 as experiments.conv's --l2 (network3's 0.1): weight decay λ / n
            states = [
                optimizers.init(tx, p, eta=0.03, weight_decay=1 / FLAGS.images) for p in params
            ]
            args = [stack(params), stack(states)] if k > 1 else [params[0], states[0]]
            static = dict(
                model=network3.model(net, (28, 28, 1)),
                tx=tx,
                mini_batch_size=10,
                drop_last=True,
                unroll=unroll,
                stacked=k > 1,
            )

            def keys(r, k=k):
                return jax.random.split(jax.random.key(r), k) if k > 1 else jax.random.key(r)

            with jax.default_matmul_precision(precision):
                program, compile_s = compiled(epoch, *args, x, y, keys(0), **static)
            times, _ = rounds(
                lambda r, _, program=program, args=args, keys=keys: program(*args, x, y, keys(r)),
                FLAGS.repeats,
            )
            per_epoch = statistics.median(times) * 50000 / FLAGS.images
            label = ", ".join(
                [variant]
                + [
                    f"{what} {value}"
                    for what, value, values in (
                        ("unroll", unroll, FLAGS.unroll),
                        ("networks", k, FLAGS.networks),
                        ("precision", precision, FLAGS.matmul_precision),
                    )
                    if len(values) > 1
                ]
            )
            print(
                f"{name:8} {label:36} {per_epoch:8.1f} s per 50,000-image epoch, "
                f"{1e6 * per_epoch / 5000:6.0f} µs per step (compile {compile_s:.1f} s)",
                flush=True,
            )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
