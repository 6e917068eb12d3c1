r"""Chapters 1, 3 and 5: train the book's feedforward networks on MNIST by mini-batch SGD.

    python -m experiments.mnist --hidden=30            # the book's [784, 30, 10], ~95%
    python -m experiments.mnist --hidden=100 --cost=cross_entropy --eta=0.5   # ~96.9%
    python -m experiments.mnist --dataset=tfds:fashion_mnist --eval_split=validation
    python -m experiments.mnist --mini_batch_size=80 --eta=10 --devices=all   # data parallel

Across machines, start the same command on every host with --coordinator_address=HOST:PORT
(process 0's), --num_processes and each its own --process_id; only process 0 prints and
writes files.

Prints the book's ``Epoch k: <correct> / <total>`` after every epoch, then a summary.
"""

from absl import app, flags

from experiments import checkpoints, mnist_report
from experiments.checks import (
    UsageError,
    check_directory,
    check_fits,
    check_png,
    check_writable,
    square_side,
)
from experiments.cli import (
    SEED_BOUNDS,
    define_data_flags,
    define_network_flags,
    define_training_flags,
    matmul_precision,
    optimizer_from_flags,
    parse_flags,
    run_guarded,
)
from experiments.devices import define_device_flags, device_mesh, start_processes
from experiments.flag_lists import parse_hidden
from experiments.kernels import check_kernel, check_kernel_data, define_kernel_flags
from experiments.training import check_devices, check_mini_batch, check_ranges, first_images
from experiments.writing import JsonLines
from nnjax.progress import Progress

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "hidden", "30", "Hidden layer sizes, comma separated (e.g. 30 or 30,30; empty for none)."
)
flags.DEFINE_integer("epochs", 30, "Number of epochs.")
flags.DEFINE_integer("mini_batch_size", 10, "Mini-batch size m.")
flags.DEFINE_float("eta", 3.0, "Learning rate η.")
flags.DEFINE_integer(
    "seed", 0, "Seed of the PRNG key for initialisation and shuffling.", **SEED_BOUNDS
)
define_data_flags()
define_network_flags()
define_training_flags()
flags.DEFINE_float(
    "l2",
    0.0,
    "L2 regularisation λ (weight decay 1 − ηλ/n, n the training "
    "set size, as in the book's network2.py).",
)
flags.DEFINE_float("l1", 0.0, "L1 regularisation λ (w → w − (ηλ/n) sgn(w) − ...).")
flags.DEFINE_integer(
    "train_size",
    None,
    "Train on the first N training images only "
    "(e.g. 1000 for chapter 3's overfitting experiments).",
)
flags.DEFINE_bool(
    "monitor",
    False,
    "Also report, after each epoch, the cost on the training "
    "and evaluation data and the training accuracy (the book's four lists).",
)
flags.DEFINE_integer(
    "gradient_norms",
    0,
    "Chapter 5: after each epoch, report ‖∂C/∂b‖ of every "
    "hidden layer, over the first N training images (the book uses 1000).",
)
flags.DEFINE_integer(
    "early_stopping",
    0,
    "Stop after this many epochs without a better evaluation accuracy (0: never).",
)
flags.DEFINE_integer(
    "halve_eta_after",
    0,
    "Halve η after this many epochs without a better "
    "evaluation accuracy, and stop when it reaches η/128 (0: keep η).",
)
flags.DEFINE_enum(
    "eval_split", "test", ["test", "validation"], "Which split is scored after each epoch."
)
flags.DEFINE_string("metrics_out", None, "Write one JSON object per epoch to this file.")
flags.DEFINE_string(
    "save",
    None,
    "Write the trained network to this file, as the book's "
    "network2.py JSON (nnjax.saving.load reads it back).",
)
flags.DEFINE_string(
    "misclassified_png",
    None,
    'Draw the test digits the final network gets wrong to this PNG, "true → predicted" '
    "(the first 100): the network --save writes.",
)
flags.DEFINE_string(
    "checkpoint_dir",
    None,
    "Checkpoint after every epoch in this directory; "
    "rerunning with the same flags resumes from the last finished epoch.",
)
define_kernel_flags(("jax", "cpp", "blocked", "pallas"))
define_device_flags()


def check_flags() -> list[int]:
    """Validates every flag before any work starts; returns the hidden sizes."""
    hidden = parse_hidden(FLAGS.hidden)
    check_ranges(
        positive=("eta", "epochs", "mini_batch_size", "train_size"),
        non_negative=("l2", "l1", "early_stopping", "halve_eta_after", "gradient_norms"),
        fractions=("momentum",),
    )
    if FLAGS.l2 > 0 and FLAGS.l1 > 0:
        raise UsageError("--l2 and --l1 cannot both be set")
    if FLAGS.gradient_norms and not hidden:
        raise UsageError(
            f"--gradient_norms measures hidden layers; --hidden={FLAGS.hidden} has none"
        )
    for name in ("metrics_out", "save"):
        if FLAGS[name].value:
            check_writable(name, FLAGS[name].value)
    if FLAGS.checkpoint_dir:
        check_directory("checkpoint_dir", FLAGS.checkpoint_dir)
    if FLAGS.misclassified_png:
        check_png("misclassified_png", FLAGS.misclassified_png)
    check_devices()
    return hidden


# The flags that decide a run's trajectory: a checkpoint resumes only a run with the same.
TRAINING_FLAGS = (
    "hidden",
    "mini_batch_size",
    "eta",
    "seed",
    "dataset",
    "eval_split",
    "cost",
    "activation",
    "init",
    "l2",
    "l1",
    "optimizer",
    "momentum",
    "train_size",
    "early_stopping",
    "halve_eta_after",
)
# And what every epoch records (--metrics_out holds a resumed run's earlier epochs too): in
# the settings only when on, so a checkpoint from before they were compared still resumes.
RECORD_FLAGS = ("monitor", "gradient_norms")


def run() -> None:
    hidden = check_flags()
    # Imported here so that `--help` and flag errors answer at once.
    import jax

    say = start_processes()
    primary = jax.process_index() == 0  # the one process that prints and writes files
    from nnjax import activations, costs, data, network, optimizers
    from nnjax.fit import fit
    from nnjax.history import History
    from nnjax.seeds import run_keys

    regularization = "l1" if FLAGS.l1 > 0 else "l2"
    tx = optimizer_from_flags(regularization)
    mesh = device_mesh(FLAGS.devices, FLAGS.mini_batch_size)
    cost, activation = costs.get(FLAGS.cost), activations.get(FLAGS.activation)
    lmbda = FLAGS.l2 or FLAGS.l1
    model = network.model(cost, activation, lmbda, regularization)
    check_kernel(model, tx, mesh)  # before any data is loaded
    dataset = data.load(FLAGS.dataset, FLAGS.data_dir, progress=say)
    eval_split = getattr(dataset, FLAGS.eval_split)
    train_x, train_y = first_images(dataset.train, FLAGS.train_size, dataset.name)
    side = square_side(dataset, "--misclassified_png") if FLAGS.misclassified_png else None
    n_train = len(train_y)
    check_mini_batch(n_train)
    if FLAGS.gradient_norms > n_train:  # they are measured on the first N training examples
        raise UsageError(
            f"--gradient_norms={FLAGS.gradient_norms} exceeds the {n_train} training examples"
        )
    sizes = [dataset.train.x.shape[1], *hidden, dataset.num_classes]
    init_key, shuffle_key = run_keys(FLAGS.seed)
    shapes = jax.eval_shape(lambda: network.init(init_key, sizes, init=FLAGS.init))
    check_fits("hidden", FLAGS.hidden, shapes, 3, train_x.nbytes + dataset.test.x.nbytes)
    params = network.init(init_key, sizes, init=FLAGS.init)
    check_kernel_data(model, tx, params, train_x, say)
    say(
        mnist_report.header(
            sizes, activation, cost, mesh, dataset.name, n_train, len(eval_split.y)
        ),
        flush=True,
    )
    norms, before_training = gradient_norms(params, train_x, train_y, sizes, cost, activation)
    if before_training is not None:
        say(mnist_report.norms_line("Before training, ", before_training), flush=True)
    run = History(params, optimizers.init(tx, params, eta=FLAGS.eta, weight_decay=lmbda / n_train))
    after_epoch = None
    if FLAGS.checkpoint_dir:
        settings = {k: FLAGS[k].value for k in TRAINING_FLAGS}
        settings |= {k: FLAGS[k].value for k in RECORD_FLAGS if FLAGS[k].value}
        device = jax.local_devices()[0].device_kind
        after_epoch, _ = checkpoints.resume([run], settings, device, say, primary)

    # the metrics file describes the whole run, resumed or not; the book's figures start
    # before training, so epoch 0's line carries the norms before training too
    before = {} if before_training is None else {"gradient_norms_before_training": before_training}

    def row(r) -> dict:
        return {**r.as_dict(), **(before if r.epoch == 0 else {})}

    metrics = JsonLines(FLAGS.metrics_out if primary else None, map(row, run.epochs))
    clock = Progress(FLAGS.epochs)

    def report(i, r) -> None:
        say(mnist_report.epoch_lines(r, clock.tick(r.epoch, run.compile_seconds)), flush=True)
        metrics.write(row(r))

    with metrics:
        fit(
            model,
            tx,
            run,
            (train_x, train_y),
            epochs=FLAGS.epochs,
            mini_batch_size=FLAGS.mini_batch_size,
            key=shuffle_key,
            eval_data=(eval_split.x, eval_split.y),
            kernel=FLAGS.kernel,
            block=FLAGS.block,
            matmul_precision=matmul_precision(FLAGS.matmul_precision, jax.default_backend()),
            monitor=FLAGS.monitor,
            metrics=norms,
            early_stopping=FLAGS.early_stopping,
            halve_eta_after=FLAGS.halve_eta_after,
            on_epoch=report,
            after_epoch=after_epoch,
            mesh=mesh,
        )
    mnist_report.finish(run, dataset.test, side, cost, activation, say, primary)


def gradient_norms(params, x, y, sizes, cost, activation):
    """Chapter 5's --gradient_norms: ``(metrics, before)``, ``metrics(params)`` the
    ``EpochResult`` field ``gradient_norms`` (‖∂C/∂b‖ of each hidden layer over the first
    --gradient_norms training images) and ``before`` its values for ``params``; ``(None,
    None)`` when the flag is 0."""
    if not FLAGS.gradient_norms:
        return None, None
    import jax

    from nnjax import backprop, costs

    n = FLAGS.gradient_norms
    x, y = x[:n], costs.one_hot(y[:n], sizes[-1])
    speeds = jax.jit(lambda p: backprop.hidden_layer_speeds(p, x, y, cost, activation))

    def metrics(p):
        return {"gradient_norms": [float(v) for v in speeds(p)]}

    return metrics, metrics(params)["gradient_norms"]


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
