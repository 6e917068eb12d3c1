r"""Seconds per 50,000-image epoch of chapter 6's networks at mini-batch 10: XLA's own
convolution against nnjax's (im2col on the CPU), in one process.

    python -m benchmarks.conv_speed                     # the book's conv2 and dropout nets
    python -m benchmarks.conv_speed --images=2000 --nets=conv2

Each epoch is ``nnjax.train3.sgd_epoch`` over ``--images`` training images, scaled to
50,000; compile excluded; the median of ``--repeats`` epochs.
"""

import statistics
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("images", 5000, "Training images per timed epoch (scaled to 50,000).")
flags.DEFINE_integer("repeats", 3, "Timed epochs per variant (the median is printed).")
flags.DEFINE_list("nets", ["conv2", "dropout"], "Presets of experiments.conv to time.")
flags.DEFINE_list("variants", ["xla", "nnjax"], "xla: lax.conv_general_dilated; nnjax: "
                  "nnjax.conv.conv2d (im2col on the CPU).")
flags.DEFINE_list("unroll", ["1"], "Steps per iteration of the epoch's loop "
                  "(train3.sgd_epoch's unroll); each value is timed.")


def with_xla_convolution(layer_list):
    """The same layers, with every conv-pool layer computing its convolution by XLA's."""
    from nnjax import activations, conv, layers

    def swap(layer):
        if not layer.name.startswith("conv-pool"):
            return layer
        act = activations.get(layer.name.rsplit(", ", 1)[1])
        pool = tuple(int(v) for v in layer.name.split("pool ")[2].split(",")[0].split("×"))

        def apply(params, x, key=None, training=False):
            y = conv.max_pool(conv.conv2d_xla(x, params["w"]), pool)
            return act.fn(y + params["b"])
        return layers.Layer(layer.name, layer.init, apply)
    return [swap(layer) for layer in layer_list]


def main(argv):
    import jax
    from nnjax.presets import CHAPTER6 as PRESETS
    from nnjax import data, layers, network3, train3

    ds = data.load("mnist", progress=None)
    x, y = jax.device_put(ds.train.x[:FLAGS.images]), jax.device_put(ds.train.y[:FLAGS.images])
    print(f"{jax.default_backend()}, {jax.device_count()} device(s); {FLAGS.images} images "
          "per timed epoch, scaled to 50,000; mini-batch 10")
    for name in FLAGS.nets:
        settings = PRESETS[name][2]
        base = layers.parse(settings["layers"], settings.get("activation", "sigmoid"),
                            settings.get("dropout", 0.0))
        for variant, unroll in [(v, int(u)) for v in FLAGS.variants for u in FLAGS.unroll]:
            net = tuple(with_xla_convolution(base) if variant == "xla" else base)
            params = network3.init(jax.random.key(0), net, (28, 28, 1))
            state = train3.init_state(params)
            epoch = jax.jit(lambda p, s, k: train3.sgd_epoch(
                p, s, x, y, k, 0.03, 0.1, layers=net, input_shape=(28, 28, 1),
                mini_batch_size=10, unroll=unroll))
            start = time.perf_counter()
            compiled = epoch.lower(params, state, jax.random.key(1)).compile()
            compile_s = time.perf_counter() - start
            times = []
            for r in range(FLAGS.repeats):
                start = time.perf_counter()
                jax.block_until_ready(compiled(params, state, jax.random.key(r)))
                times.append(time.perf_counter() - start)
            per_epoch = statistics.median(times) * 50000 / FLAGS.images
            label = variant + (f", unroll {unroll}" if len(FLAGS.unroll) > 1 else "")
            print(f"{name:8} {label:16} {per_epoch:8.1f} s per 50,000-image epoch, "
                  f"{1e6 * per_epoch / 5000:6.0f} µs per step (compile {compile_s:.1f} s)",
                  flush=True)


if __name__ == "__main__":
    app.run(main)
