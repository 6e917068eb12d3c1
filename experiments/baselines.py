r"""Chapter 1's baselines on the book's MNIST split.

    python -m experiments.baselines                  # nearest mean darkness (book: 22.25%)
    python -m experiments.baselines --svm --svm_2015_defaults   # SVC() as in 2015 (book: 94.35%)
    python -m experiments.baselines --svm            # today's SVC() defaults (97.85%)

The SVM needs scikit-learn (``pip install -e ".[svm]"``), an optional extra; on the full
50,000 images it trains for many minutes on 2 cores (``--svm_train_size`` trains on fewer).
"""

import importlib.util
import time

from absl import app, flags

from experiments.checks import UsageError
from experiments.cli import DATA_DIR_HELP, parse_flags, run_guarded

FLAGS = flags.FLAGS
flags.DEFINE_bool("svm", False, "Also train scikit-learn's SVC() with its defaults.")
flags.DEFINE_integer("svm_train_size", None, "Train the SVM on the first N training images.")
flags.DEFINE_bool(
    "svm_2015_defaults",
    False,
    "Use SVC's defaults of the book's time: gamma = "
    "1/n_features ('auto'; scikit-learn's default became 'scale' in 0.22).",
)
flags.DEFINE_string("dataset", "mnist", "mnist, tfds:NAME or idx:DIR (as experiments.mnist).")
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)


def run() -> None:
    if FLAGS.svm_train_size is not None and FLAGS.svm_train_size <= 0:
        raise UsageError(f"--svm_train_size must be positive, got {FLAGS.svm_train_size}")
    for name in ("svm_train_size", "svm_2015_defaults"):
        if FLAGS[name].value not in (None, False) and not FLAGS.svm:
            raise UsageError(f"--{name} is for the SVM: add --svm")
    if FLAGS.svm and importlib.util.find_spec("sklearn") is None:  # before the data loads
        raise UsageError('--svm needs scikit-learn: pip install -e ".[svm]"')
    from nnjax import baselines, data

    dataset = data.load(FLAGS.dataset, FLAGS.data_dir, progress=print)
    test, train = dataset.test, dataset.train
    if FLAGS.svm:  # before the first baseline: a run that will fail says so at once
        svm = _check_svm(train, dataset.name)
    try:
        means = baselines.darkness_fit(train.x, train.y, dataset.num_classes)
    except ValueError as e:  # a class of the test set that no training image has
        raise UsageError(f"--dataset={FLAGS.dataset}: {e}") from None
    correct = int((baselines.darkness_predict(means, test.x) == test.y).sum())
    print(
        f"Nearest mean darkness: {correct} of {len(test.y)} test images correct "
        f"({100 * correct / len(test.y):.2f}%; the book: 22.25%)"
    )
    if not FLAGS.svm:
        return
    n = FLAGS.svm_train_size or len(train.y)
    print(f"Training SVC() on {n} images...", flush=True)
    start = time.perf_counter()
    classifier = svm.SVC(**({"gamma": "auto"} if FLAGS.svm_2015_defaults else {}))
    classifier.fit(train.x[:n], train.y[:n])
    correct = int((classifier.predict(test.x) == test.y).sum())
    name = "SVC(gamma='auto')" if FLAGS.svm_2015_defaults else "SVC()"
    print(
        f"{name}: {correct} of {len(test.y)} test images correct "
        f"({100 * correct / len(test.y):.2f}%; the book: 94.35%) in "
        f"{time.perf_counter() - start:.0f} s"
    )


def _check_svm(train, name: str):
    """scikit-learn's ``svm`` module; UsageError unless it imports and the --svm_train_size
    first training images hold two classes or more."""
    try:
        from sklearn import svm
    except ImportError as e:  # installed, but broken (built for another NumPy, say)
        raise UsageError(f"--svm: scikit-learn does not import ({e})") from None
    n = FLAGS.svm_train_size or len(train.y)
    if n > len(train.y):
        raise UsageError(
            f"--svm_train_size={n} exceeds the {len(train.y)} training images of {name}"
        )
    if len(set(train.y[:n].tolist())) < 2:
        raise UsageError(
            f"--svm_train_size={n}: the first {n} training images are all of one "
            "class, and an SVM needs two; take more"
        )
    return svm


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
