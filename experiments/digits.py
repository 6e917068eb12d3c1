r"""Chapter 1's picture of the data: the first MNIST digits of a split, each with its label.

    python -m experiments.digits --count=20 --png=docs/figures/mnist_digits.png
    python -m experiments.digits --split=test --count=10 --png=test_digits.png

Draws the first --count images of --split (ten a row, the label above each) to --png and
prints their labels.
"""

from absl import app, flags

from experiments.checks import UsageError, check_png, square_side
from experiments.cli import define_data_flags, parse_flags, run_guarded
from experiments.figures import MAX_DRAWN

FLAGS = flags.FLAGS
flags.DEFINE_integer(
    "count",
    20,
    f"How many digits to draw, from the first (at most {MAX_DRAWN}).",
    lower_bound=1,
    upper_bound=MAX_DRAWN,
)
flags.DEFINE_enum(
    "split", "train", ["train", "validation", "test"], "The split whose digits are drawn."
)
flags.DEFINE_string("png", None, "The PNG file to write.")
define_data_flags("square greyscale images")
NAMES = {"train": "training", "validation": "validation", "test": "test"}


def run() -> None:
    if not FLAGS.png:
        raise UsageError("--png is required: the PNG file to write")
    check_png("png", FLAGS.png)
    from experiments import figures
    from nnjax import data

    dataset = data.load(FLAGS.dataset, FLAGS.data_dir, progress=print)
    side = square_side(dataset, "experiments.digits")
    split = getattr(dataset, FLAGS.split)
    if FLAGS.count > len(split):
        raise UsageError(
            f"--count={FLAGS.count} exceeds the {len(split)} {FLAGS.split} images of {dataset.name}"
        )
    images, labels = split.x[: FLAGS.count], split.y[: FLAGS.count]
    figures.draw_digits(images, [str(int(d)) for d in labels], FLAGS.png, side=side)
    print(
        f"Drew the first {FLAGS.count} {NAMES[FLAGS.split]} "
        f"digit{'s' * (FLAGS.count != 1)} of {dataset.name} to "
        f"{FLAGS.png}; their labels: {' '.join(str(int(d)) for d in labels)}"
    )


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
