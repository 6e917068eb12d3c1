r"""Seconds to build the expanded MNIST (chapter 6) and one epoch's random shifts.

    python -m benchmarks.expand_speed
    python -m benchmarks.expand_speed --book_images=0     # skip the book's NumPy loop

On the book's 50,000 training images, in one process: ``nnjax.expand.expand`` (5 × 50,000
images, on the device), ``random_shifts`` (one variant per image), a plain copy of the
images on the device (the memory-bandwidth floor: expand writes five copies), and the
book's expand_mnist.py loop (np.roll per image) on ``--book_images`` images. Prints min /
median seconds over ``--repeats`` runs, compile excluded.
"""

import statistics

from absl import app, flags

from benchmarks.timing import rounds, timed
from experiments.cli import DATA_DIR_HELP, parse_flags, run_guarded

FLAGS = flags.FLAGS
flags.DEFINE_integer("repeats", 7, "Timed runs of each JAX function.", lower_bound=1)
flags.DEFINE_integer(
    "book_images",
    10000,
    "Images for the book's NumPy loop (0 skips it).",
    lower_bound=0,
    upper_bound=50000,
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)


def book_expand(x, y, side=28):
    """expand_mnist.py's loop (Python 3): each image, then its four shifts."""
    import numpy as np

    pairs = []
    for image, label in zip(x, y):
        pairs.append((image, label))
        image = image.reshape(-1, side)
        for d, axis, index_position, index in [
            (1, 0, "first", 0),
            (-1, 0, "first", side - 1),
            (1, 1, "last", 0),
            (-1, 1, "last", side - 1),
        ]:
            new_img = np.roll(image, d, axis)
            if index_position == "first":
                new_img[index, :] = np.zeros(side)
            else:
                new_img[:, index] = np.zeros(side)
            pairs.append((new_img.reshape(side * side), label))
    return pairs


def main(argv):
    run_guarded(run, argv)


def run():
    import jax

    from nnjax import data, expand

    train = data.load("mnist", FLAGS.data_dir).train
    x, y = jax.device_put(train.x), jax.device_put(train.y)
    print(f"{x.shape[0]:,} images {x.shape[1]} pixels on {jax.devices()[0].platform}")
    cases = [
        ("expand (5n images)", expand.expand, (x, y)),
        ("random_shifts (n images)", jax.jit(expand.random_shifts), (jax.random.key(0), x)),
        ("copy of x (floor)", jax.jit(lambda x: x + 0.0), (x,)),
    ]
    for name, f, args in cases:
        _, first_s = timed(f, *args)
        runs, _ = rounds(lambda r, _, f=f, args=args: f(*args), FLAGS.repeats)
        print(
            f"{name:26s} min {min(runs):.3f} s  median {statistics.median(runs):.3f} s  "
            f"(first call {first_s:.2f} s)"
        )
    if FLAGS.book_images:
        n = FLAGS.book_images
        _, seconds = timed(book_expand, train.x[:n], train.y[:n])
        print(
            f"{'book loop (NumPy)':26s} {seconds:.3f} s for {n:,} images "
            f"(≈ {seconds * x.shape[0] / n:.2f} s for {x.shape[0]:,})"
        )


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
