r"""Chapters 1 and 3: train the book's feedforward networks on MNIST by mini-batch SGD.

    python -m experiments.mnist --hidden=30            # the book's [784, 30, 10], ~95%
    python -m experiments.mnist --hidden=100           # [784, 100, 10], ~96.6%
    python -m experiments.mnist --dataset=tfds:fashion_mnist --eval_split=validation
    python -m experiments.mnist --mini_batch_size=80 --eta=10 --devices=all   # data parallel

Across machines, start the same command on every host with --coordinator_address=HOST:PORT
(process 0's), --num_processes and each its own --process_id; only process 0 prints and
writes files.

Prints the book's ``Epoch k: <correct> / <total>`` after every epoch, then a summary.
"""

from absl import app, flags

from experiments.checks import (
    UsageError,
    check_fits,
    check_writable,
    open_metrics,
    parse_hidden,
)
from experiments.cli import (
    SEED_BOUNDS,
    define_data_flags,
    define_network_flags,
    device_mesh,
    parse_devices,
    run_guarded,
)

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
flags.DEFINE_float(
    "l2",
    0.0,
    "L2 regularisation λ (weight decay 1 − ηλ/n, n the training "
    "set size, as in the book's network2.py).",
)
flags.DEFINE_float("l1", 0.0, "L1 regularisation λ (w → w − (ηλ/n) sgn(w) − ...).")
flags.DEFINE_float(
    "momentum", 0.0, "Momentum coefficient μ (the book's v → μv − η∇C, w → w + v); 0 for plain SGD."
)
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
    "network2.py JSON (nnjax.checkpoint.load reads it back).",
)
flags.DEFINE_string(
    "checkpoint_dir",
    None,
    "Checkpoint after every epoch in this directory; "
    "rerunning with the same flags resumes from the last finished epoch.",
)
flags.DEFINE_enum(
    "matmul_precision",
    "highest",
    ["highest", "default"],
    "highest: float32 products, as the book computes (in float64); default: "
    "XLA's choice, TF32 on recent GPUs (about 15% faster there).",
)
flags.DEFINE_enum(
    "kernel",
    "auto",
    ["auto", "xla"],
    "auto: on the CPU, chapter 1's network "
    "trains in nnjax's compiled C++ epoch; xla: always the pure-JAX lax.scan epoch.",
)
flags.DEFINE_string(
    "devices",
    "1",
    "Split every mini-batch over this many devices (an integer, "
    "or all: every device of every process), data parallel; it must divide "
    "--mini_batch_size. 1: one device, as before.",
)
flags.DEFINE_string(
    "coordinator_address",
    None,
    "Multi-host: HOST:PORT of process 0, for "
    "jax.distributed.initialize (with --num_processes and --process_id).",
)
flags.DEFINE_integer("num_processes", None, "Multi-host: the number of processes.")
flags.DEFINE_integer(
    "process_id",
    None,
    "Multi-host: this process's index, 0 … "
    "--num_processes − 1; process 0 prints and writes the files.",
)


def check_flags() -> list[int]:
    """Validates every flag before any work starts; returns the hidden sizes."""
    hidden = parse_hidden(FLAGS.hidden)
    for name in ("epochs", "mini_batch_size"):
        if FLAGS[name].value <= 0:
            raise UsageError(f"--{name} must be positive, got {FLAGS[name].value}")
    if not FLAGS.eta > 0:  # also rejects nan
        raise UsageError(f"--eta must be positive, got {FLAGS.eta}")
    for name in ("l2", "l1"):
        if not FLAGS[name].value >= 0:
            raise UsageError(f"--{name} must be zero or positive, got {FLAGS[name].value}")
    if not 0 <= FLAGS.momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), got {FLAGS.momentum}")
    if FLAGS.l2 > 0 and FLAGS.l1 > 0:
        raise UsageError("--l2 and --l1 cannot both be set")
    for name in ("early_stopping", "halve_eta_after", "gradient_norms"):
        if FLAGS[name].value < 0:
            raise UsageError(f"--{name} must be zero or positive, got {FLAGS[name].value}")
    if FLAGS.train_size is not None and FLAGS.train_size <= 0:
        raise UsageError(f"--train_size must be positive, got {FLAGS.train_size}")
    for name in ("metrics_out", "save"):
        if FLAGS[name].value:
            check_writable(name, FLAGS[name].value)
    devices = parse_devices(FLAGS.devices)
    if devices != "all" and FLAGS.mini_batch_size % devices:
        raise UsageError(
            f"--mini_batch_size={FLAGS.mini_batch_size} is not divisible by --devices={devices}"
        )
    check_distributed_flags()
    return hidden


def check_distributed_flags() -> None:
    """The multi-host flags come together: all three or none."""
    names = ("coordinator_address", "num_processes", "process_id")
    given = [name for name in names if FLAGS[name].value is not None]
    if given and len(given) < 3:
        missing = [f"--{name}" for name in names if name not in given]
        raise UsageError(f"--{given[0]} needs {' and '.join(missing)} too")
    if given:
        if FLAGS.num_processes <= 0:
            raise UsageError(f"--num_processes must be positive, got {FLAGS.num_processes}")
        if not 0 <= FLAGS.process_id < FLAGS.num_processes:
            raise UsageError(
                f"--process_id must be in 0 … {FLAGS.num_processes - 1}, got {FLAGS.process_id}"
            )


def start_processes(jax) -> None:
    """Joins the other processes (``jax.distributed.initialize``) when the multi-host flags
    are given; must come before any JAX computation."""
    if FLAGS.coordinator_address is None:
        return
    if jax.config.jax_cpu_collectives_implementation is None:
        # CPU processes exchange gradients over TCP with gloo (JAX's default since 0.5).
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=FLAGS.coordinator_address,
            num_processes=FLAGS.num_processes,
            process_id=FLAGS.process_id,
        )
    except Exception as e:  # the runtime's errors are long and of many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(
            f"--coordinator_address={FLAGS.coordinator_address}: cannot start "
            f"process {FLAGS.process_id} of {FLAGS.num_processes}: {first}"
        ) from None


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
    "momentum",
    "train_size",
    "early_stopping",
    "halve_eta_after",
)


def run() -> None:
    hidden = check_flags()
    # Imported here so that `--help` and flag errors answer at once.
    import jax

    start_processes(jax)
    from nnjax import activations, backprop, checkpoint, costs, data, network, sgd, train

    mesh = device_mesh(FLAGS.devices, FLAGS.mini_batch_size)
    primary = jax.process_index() == 0  # the one process that prints and writes files
    say = print if primary else (lambda *args, **kwargs: None)
    dataset = data.load(FLAGS.dataset, FLAGS.data_dir, progress=say)
    eval_split = getattr(dataset, FLAGS.eval_split)
    train_x, train_y = dataset.train.x, dataset.train.y
    if FLAGS.train_size is not None:
        if FLAGS.train_size > len(train_y):
            raise UsageError(
                f"--train_size={FLAGS.train_size} exceeds the {len(train_y)} "
                f"training images of {dataset.name}"
            )
        train_x, train_y = train_x[: FLAGS.train_size], train_y[: FLAGS.train_size]
    n_train = len(train_y)
    if FLAGS.mini_batch_size > n_train:
        raise UsageError(
            f"--mini_batch_size={FLAGS.mini_batch_size} exceeds the {n_train} training examples"
        )
    sizes = [dataset.train.x.shape[1], *hidden, dataset.num_classes]
    init_key, shuffle_key = jax.random.split(jax.random.key(FLAGS.seed))
    shapes = jax.eval_shape(lambda: network.init(init_key, sizes, init=FLAGS.init))
    check_fits("hidden", FLAGS.hidden, shapes, 3, train_x.nbytes + dataset.test.x.nbytes)
    params = network.init(init_key, sizes, init=FLAGS.init)
    cost, activation = costs.get(FLAGS.cost), activations.get(FLAGS.activation)
    regularised = (
        (f", L2 λ={FLAGS.l2:g}" if FLAGS.l2 else "")
        + (f", L1 λ={FLAGS.l1:g}" if FLAGS.l1 else "")
        + (f", momentum {FLAGS.momentum:g}" if FLAGS.momentum else "")
    )
    regularization = "l1" if FLAGS.l1 > 0 else "l2"
    # Which epoch program runs (the CPU kernel's and XLA's numbers differ by float rounding)
    kernel = mesh is None and sgd.uses_cpu_kernel(
        params,
        train_x,
        FLAGS.mini_batch_size,
        cost,
        activation,
        FLAGS.kernel,
        regularization,
        FLAGS.momentum,
    )
    where = (
        jax.default_backend() + " (nnjax's CPU kernel)" * kernel
        if mesh is None
        else (
            f"{mesh.size} {jax.default_backend()} devices"
            + (f" of {jax.process_count()} processes" if jax.process_count() > 1 else "")
        )
    )
    say(
        f"nnjax: {sizes} {activation.name} network, {cost.name} cost, {FLAGS.init} "
        f"initialisation{regularised}, η={FLAGS.eta:g}, "
        f"mini-batch {FLAGS.mini_batch_size}, {FLAGS.epochs} epoch{'s' * (FLAGS.epochs != 1)} on "
        f"{where}; {dataset.name}: {n_train} training, "
        f"{len(eval_split.y)} {FLAGS.eval_split} images",
        flush=True,
    )

    if FLAGS.gradient_norms:
        n = FLAGS.gradient_norms
        initial = backprop.hidden_layer_speeds(
            params, train_x[:n], costs.one_hot(train_y[:n], sizes[-1]), cost, activation
        )
        say(
            "Before training, ‖∂C/∂b‖ of the hidden layers: "
            + " ".join(f"{float(v):.4g}" for v in initial),
            flush=True,
        )

    done, after_epoch = [], None
    opt_state = sgd.init_state(params, FLAGS.momentum) if FLAGS.momentum else None
    if FLAGS.checkpoint_dir:
        try:
            run = checkpoint.Run(FLAGS.checkpoint_dir, {k: FLAGS[k].value for k in TRAINING_FLAGS})
            params, opt_state, epochs = run.resume(params, opt_state)
        except checkpoint.CheckpointError as e:
            raise UsageError(f"--checkpoint_dir={FLAGS.checkpoint_dir}: {e}") from None
        done = [train.EpochResult.from_dict(e) for e in epochs]
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            found = multihost_utils.process_allgather(len(done))
            if len(set(found.tolist())) > 1:
                raise UsageError(
                    f"--checkpoint_dir={FLAGS.checkpoint_dir} must be the same "
                    f"directory for every process (they found {found.tolist()} "
                    "finished epochs)"
                )
        if done:
            say(
                f"Resuming from {run.path} after {len(done)} epoch{'s' * (len(done) != 1)}.",
                flush=True,
            )

        def save_checkpoint(params, opt_state, results):
            if primary:
                run.save(params, opt_state, [r.as_dict() for r in results])

        after_epoch = save_checkpoint

    # the metrics file describes the whole run, resumed or not
    metrics = open_metrics(FLAGS.metrics_out if primary else None, (r.as_dict() for r in done))

    def report(r: train.EpochResult) -> None:
        eta = f", η={r.eta:g}" if FLAGS.halve_eta_after else ""
        say(f"Epoch {r.epoch}: {r.correct} / {r.total}  ({r.seconds:.2f} s{eta})", flush=True)
        if FLAGS.monitor:
            say(
                f"  cost on training data: {r.training_cost:.4f}; accuracy on training data: "
                f"{r.training_correct} / {r.training_total}; cost on evaluation data: "
                f"{r.evaluation_cost:.4f}",
                flush=True,
            )
        if r.gradient_norms is not None:
            say(
                "  ‖∂C/∂b‖ of the hidden layers: " + " ".join(f"{v:.4g}" for v in r.gradient_norms),
                flush=True,
            )
        if metrics:
            metrics.write(r.as_dict())

    try:
        params, _, history = train.train(
            params,
            (train_x, train_y),
            epochs=FLAGS.epochs,
            mini_batch_size=FLAGS.mini_batch_size,
            eta=FLAGS.eta,
            key=shuffle_key,
            cost=cost,
            activation=activation,
            lmbda=FLAGS.l2 or FLAGS.l1,
            regularization=regularization,
            momentum=FLAGS.momentum,
            opt_state=opt_state,
            eval_data=(eval_split.x, eval_split.y),
            kernel=FLAGS.kernel,
            matmul_precision=FLAGS.matmul_precision,
            monitor=FLAGS.monitor,
            gradient_norms=FLAGS.gradient_norms,
            early_stopping=FLAGS.early_stopping,
            halve_eta_after=FLAGS.halve_eta_after,
            on_epoch=report,
            after_epoch=after_epoch,
            done=done,
            mesh=mesh,
        )
    finally:
        if metrics:
            metrics.close()
    if FLAGS.save and primary:
        checkpoint.save(FLAGS.save, params, cost, activation)
        say(f"Saved the network to {FLAGS.save}.")
    if history.stopped:
        say(f"Stopped: {history.stopped}.")
    best, last = history.best, history.epochs[-1]
    say(
        f"Best: epoch {best.epoch}, {best.correct} / {best.total} ({100 * best.accuracy:.2f}%)."
        f" Final: {last.correct} / {last.total} ({100 * last.accuracy:.2f}%)."
        f" {len(history.epochs)} epoch{'s' * (len(history.epochs) != 1)}"
        f" in {history.train_seconds:.1f} s"
        f" (+{history.compile_seconds:.1f} s compile)."
    )


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main)
