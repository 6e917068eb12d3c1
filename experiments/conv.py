r"""Chapter 6: the book's convolutional networks (``network3.py``) on MNIST.

    python -m experiments.conv --preset=conv2          # 2 conv-pool layers + FC-100: ~99.06%
    python -m experiments.conv --preset=dropout        # the book's 99.60% network
    python -m experiments.conv --preset=ensemble       # 5 of those, plurality vote: 99.67%
    python -m experiments.conv --layers=conv:20,fc:100,softmax --activation=relu --eta=0.03
    python -m experiments.conv --list                  # the presets
    python -m experiments.conv --preset=conv2 --devices=all   # data parallel (also multi-host)

Prints, like network3, every epoch's validation accuracy and, when it is at least the best
so far, the test accuracy; then the chapter 6 number (the test accuracy at the best
validation epoch) and the final test accuracy. A preset sets the book's flags for its row;
flags given on the command line override it.
"""

from absl import app, flags

from experiments import checkpoints, presets
from experiments.checks import (
    UsageError,
    check_fits,
    check_png,
    check_predictions_out,
    check_writable,
    open_metrics,
    write_summary,
)
from experiments.cli import (
    MAX_SEED,
    SEED_BOUNDS,
    define_data_flags,
    define_training_flags,
    matmul_precision,
    optimizer_from_flags,
    run_guarded,
)
from experiments.devices import (
    check_process_flags,
    define_process_flags,
    device_mesh,
    parse_devices,
    start_processes,
)
from experiments.progress import Progress

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "preset", None, "A chapter 6 row of the book (see --list); other flags override its settings."
)
flags.DEFINE_bool("list", False, "List the presets and exit.")
flags.DEFINE_string(
    "layers",
    "conv:20:5x5,conv:40:5x5,fc:100,softmax",
    "Layers, comma separated: conv:FILTERS[:KxK[:PxP]] (conv-pool), fc:SIZE, softmax.",
)
flags.DEFINE_enum(
    "activation",
    "sigmoid",
    ["sigmoid", "tanh", "relu", "linear"],
    "Activation of the conv-pool and fully connected layers.",
)
flags.DEFINE_float(
    "dropout",
    0.0,
    "Dropout probability p of the inputs of every fully connected and softmax layer.",
)
flags.DEFINE_enum(
    "dropout_kind",
    "book",
    ["book", "inverted"],
    "book: drop while training, "
    "scale w by 1 − p at test time (network3); inverted: scale kept inputs by "
    "1/(1 − p) while training.",
)
flags.DEFINE_enum(
    "init",
    "book",
    ["book", "corrected"],
    "book: fully connected weights from "
    "N(0, 1/n_out), network3's bug that made the published numbers; corrected: "
    "N(0, 1/n_in).",
)
flags.DEFINE_integer("epochs", 60, "Number of epochs.")
flags.DEFINE_integer("mini_batch_size", 10, "Mini-batch size m.")
flags.DEFINE_float("eta", 0.1, "Learning rate η.")
flags.DEFINE_float(
    "l2",
    0.0,
    "L2 regularisation λ, as in experiments.mnist (network2.py's: weight decay 1 − ηλ/n "
    "each step, n the training-set size); network3's λ = 0.1 at m = 10 is λ = 1.0 here.",
)
define_training_flags()
flags.DEFINE_enum(
    "expand",
    "none",
    ["none", "book", "random"],
    "book: train on each image "
    "and its four one-pixel shifts (5× the data, built on the device); random: "
    "each image replaced by a random one of the five, afresh every epoch.",
)
flags.DEFINE_bool("shuffle", True, "Shuffle every epoch (network3 keeps one fixed order).")
flags.DEFINE_integer(
    "networks",
    1,
    "Train this many networks (seeds seed, seed+1, ...) and report their plurality vote.",
)
flags.DEFINE_enum(
    "strategy",
    "auto",
    ["auto", "vmap", "loop"],
    "Train several networks all "
    "at once with vmap, or one after another; auto: loop on the CPU, vmap "
    "elsewhere.",
)
flags.DEFINE_string(
    "devices",
    "1",
    "Split every mini-batch over this many devices (or all), "
    "data parallel; must divide --mini_batch_size.",
)
define_process_flags()
flags.DEFINE_integer(
    "unroll",
    1,
    "SGD steps compiled into each iteration of the epoch's "
    "loop: the same networks; no faster on the CPU or on an H200 "
    "(benchmarks.conv_speed --unroll times them).",
)
flags.DEFINE_enum(
    "convolution",
    "auto",
    ["auto", "xla", "im2col"],
    "How conv-pool layers "
    "convolve: xla: XLA's convolution (cuDNN on GPUs); im2col: one matrix "
    "product over the unrolled patches; auto: im2col on CPUs and CUDA GPUs, "
    "xla elsewhere. The same networks up to float rounding "
    "(benchmarks.conv_speed times them).",
)
flags.DEFINE_integer(
    "seed", 0, "Seed of the PRNG key (initialisation, shuffles, dropout).", **SEED_BOUNDS
)
define_data_flags("images must be square, one channel")
flags.DEFINE_integer(
    "train_size", None, "Train on the first N training images only (before expansion)."
)
flags.DEFINE_string("metrics_out", None, "Write one JSON object per network and epoch.")
flags.DEFINE_string(
    "save", None, "Write the trained networks (.npz; nnjax.saving.load_networks reads it back)."
)
flags.DEFINE_string(
    "checkpoint_dir",
    None,
    "Checkpoint after every epoch in this directory; "
    "rerunning with the same flags resumes after the last finished epoch.",
)
flags.DEFINE_string(
    "predictions_out",
    None,
    "Write every network's classes for the test "
    "images (at its best validation epoch) to this .json file, about 20 KB a "
    "network, which experiments.vote reads in place of the saved networks.",
)
flags.DEFINE_string(
    "summary_out",
    None,
    "Write the run's final record to this .json file: each network's best epoch, its "
    "validation and test accuracy there and its final test accuracy, the vote, the times "
    "(experiments.chapter6 reads it).",
)
flags.DEFINE_string("filters_png", None, "Draw the first conv layer's filters to this PNG.")
flags.DEFINE_string(
    "misclassified_png",
    None,
    "Draw the test digits the network (or the ensemble's vote) gets wrong to this PNG.",
)
PRESETS = presets.CHAPTER6

# The flags that decide a run (saved with the networks; a checkpoint resumes only a run with
# the same, --epochs aside).
SETTINGS = (
    "layers",
    "activation",
    "dropout",
    "dropout_kind",
    "init",
    "epochs",
    "mini_batch_size",
    "eta",
    "l2",
    "optimizer",
    "momentum",
    "expand",
    "shuffle",
    "networks",
    "seed",
    "dataset",
    "train_size",
)


def apply_preset() -> None:
    """Sets the preset's flags, except those given on the command line."""
    if FLAGS.preset is None:
        return
    if FLAGS.preset not in PRESETS:
        raise UsageError(
            f"--preset={FLAGS.preset} is not one of {', '.join(PRESETS)} (--list describes them)"
        )
    for name, value in PRESETS[FLAGS.preset][2].items():
        if not FLAGS[name].present:
            FLAGS[name].value = value


def preset_command(name: str) -> str:
    """The command line that reproduces a preset's row."""
    return f"python -m experiments.conv --preset={name}"


def check_flags():
    """Validates the flags before any work; returns the layers."""
    from nnjax import layers

    apply_preset()
    for name in ("epochs", "mini_batch_size", "networks", "unroll"):
        if FLAGS[name].value <= 0:
            raise UsageError(f"--{name} must be positive, got {FLAGS[name].value}")
    if FLAGS.seed + FLAGS.networks - 1 > MAX_SEED:  # network i has seed --seed + i
        raise UsageError(
            f"--seed={FLAGS.seed} with --networks={FLAGS.networks}: the last "
            f"network's seed would be past 2^31 − 1"
        )
    if not FLAGS.eta > 0:
        raise UsageError(f"--eta must be positive, got {FLAGS.eta}")
    if not FLAGS.l2 >= 0:
        raise UsageError(f"--l2 must be zero or positive, got {FLAGS.l2}")
    if not 0 <= FLAGS.momentum < 1:
        raise UsageError(f"--momentum must be in [0, 1), got {FLAGS.momentum}")
    if not 0 <= FLAGS.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {FLAGS.dropout}")
    if FLAGS.train_size is not None and FLAGS.train_size <= 0:
        raise UsageError(f"--train_size must be positive, got {FLAGS.train_size}")
    for name in ("metrics_out", "save", "summary_out"):
        if FLAGS[name].value:
            check_writable(name, FLAGS[name].value)
    for name in ("filters_png", "misclassified_png"):
        if FLAGS[name].value:
            check_png(name, FLAGS[name].value)
    if FLAGS.predictions_out:
        check_predictions_out("predictions_out", FLAGS.predictions_out)
    try:
        net = layers.parse(
            FLAGS.layers,
            FLAGS.activation,
            FLAGS.dropout,
            FLAGS.dropout_kind,
            FLAGS.init,
            convolution=FLAGS.convolution,
        )
    except layers.LayerError as e:
        raise UsageError(f"--layers={FLAGS.layers}: {e}") from None
    check_process_flags()
    devices = parse_devices(FLAGS.devices)
    if devices != "all" and FLAGS.mini_batch_size % devices:
        raise UsageError(
            f"--mini_batch_size={FLAGS.mini_batch_size} is not divisible by --devices={devices}"
        )
    if FLAGS.filters_png and not FLAGS.layers.startswith("conv"):
        raise UsageError("--filters_png needs a first layer that is conv-pool")
    return net


def image_shape(n_in: int, dataset: str) -> tuple:
    """(side, side, 1) for square one-channel images of ``n_in`` pixels."""
    side = int(round(n_in**0.5))
    if side * side != n_in:
        raise UsageError(
            f"--dataset={dataset}: its {n_in}-pixel images are not square one-channel images"
        )
    return side, side, 1


def run() -> None:
    net_layers = check_flags()
    import jax
    import numpy as np

    say = start_processes()  # print on process 0, which alone writes the files
    primary = jax.process_index() == 0

    from nnjax import data, ensemble, expand, layers, network3, optimizers, saving
    from nnjax import fit as fit_lib
    from nnjax.history import History

    tx = optimizer_from_flags()

    mesh = device_mesh(FLAGS.devices, FLAGS.mini_batch_size)

    dataset = data.load(FLAGS.dataset, FLAGS.data_dir, progress=say)
    shape = image_shape(dataset.train.x.shape[1], FLAGS.dataset)
    if dataset.num_classes != 10 and "softmax:" not in FLAGS.layers:
        net_layers = layers.parse(
            FLAGS.layers,
            FLAGS.activation,
            FLAGS.dropout,
            FLAGS.dropout_kind,
            FLAGS.init,
            dataset.num_classes,
            FLAGS.convolution,
        )
    train_x, train_y = dataset.train.x, dataset.train.y
    if FLAGS.train_size is not None:
        if FLAGS.train_size > len(train_y):
            raise UsageError(
                f"--train_size={FLAGS.train_size} exceeds the {len(train_y)} "
                f"training images of {dataset.name}"
            )
        train_x, train_y = train_x[: FLAGS.train_size], train_y[: FLAGS.train_size]
    if FLAGS.expand == "book":
        train_x, train_y = expand.expand(train_x, train_y)
    if FLAGS.mini_batch_size > len(train_y):
        raise UsageError(
            f"--mini_batch_size={FLAGS.mini_batch_size} exceeds the "
            f"{len(train_y)} training examples"
        )

    k = FLAGS.networks
    seeds = [jax.random.split(jax.random.key(FLAGS.seed + i)) for i in range(k)]
    try:
        shapes = jax.eval_shape(lambda: network3.init(seeds[0][0], net_layers, shape))
        data_bytes = train_x.nbytes + dataset.validation.x.nbytes + dataset.test.x.nbytes
        check_fits("layers", FLAGS.layers, shapes, 3, data_bytes, networks=k)
        params = [network3.init(init_key, net_layers, shape) for init_key, _ in seeds]
    except layers.LayerError as e:
        raise UsageError(f"--layers={FLAGS.layers}: {e}") from None
    n_out = params[0][-1]["b"].shape[0]  # the softmax layer's outputs
    if n_out != dataset.num_classes:
        raise UsageError(
            f"--layers={FLAGS.layers}: the softmax layer has {n_out} outputs, "
            f"but {dataset.name} has {dataset.num_classes} classes (write "
            f"softmax for as many outputs as classes)"
        )
    n_train = len(train_y)
    networks = [
        History(p, optimizers.init(tx, p, FLAGS.eta, FLAGS.l2 / n_train), best_rule="last")
        for p in params
    ]
    strategy = fit_lib.pick_strategy(FLAGS.strategy, k)
    precision = matmul_precision(FLAGS.matmul_precision, jax.default_backend())
    gpu = jax.default_backend() == "gpu"
    say(
        f"nnjax: {layers.describe(net_layers)}; {FLAGS.optimizer} η={FLAGS.eta:g}, "
        f"λ={FLAGS.l2:g}, mini-batch {FLAGS.mini_batch_size}, "
        f"{FLAGS.epochs} epoch{'s' * (FLAGS.epochs != 1)}, "
        f"{k} network{'s' * (k > 1)} ({strategy}) on {jax.default_backend()}"
        f"{' (TF32 products where the GPU has them)' * (precision == 'default' and gpu)}"
        f"{f' ({mesh.size} devices, data parallel)' if mesh else ''}; "
        f"{dataset.name}: {n_train} training images"
        f"{' (expanded)' if FLAGS.expand == 'book' else ''}"
        f"{', random shifts' if FLAGS.expand == 'random' else ''}",
        flush=True,
    )

    device = jax.local_devices()[0].device_kind  # e.g. "cpu", "NVIDIA H200"
    after_epoch, devices = None, []
    if FLAGS.checkpoint_dir:
        settings = {name: FLAGS[name].value for name in SETTINGS if name != "epochs"}
        after_epoch, devices = checkpoints.resume(networks, settings, device, say, primary)
    # the metrics file describes the whole run, resumed or not, each epoch by its device
    metrics = open_metrics(
        FLAGS.metrics_out if primary else None,
        (
            {"network": i, **n.epochs[e].as_dict(), "device": devices[e]}
            for e in range(len(networks[0].epochs))
            for i, n in enumerate(networks)
        ),
    )
    clock = Progress(FLAGS.epochs, len(networks[0].epochs))

    def report(i, r) -> None:
        # r.seconds is each network's share of the epoch; the time shown is the whole epoch's
        took = f"  ({r.seconds * k:.1f} s{f' for the {k} networks' * (k > 1)}" if i == 0 else ""
        took += f"; epoch {clock.tick(r.epoch)})" if i == 0 else ""
        who = f"Network {i}, e" if k > 1 else "E"
        say(f"{who}poch {r.epoch}: validation accuracy {100 * r.accuracy:.2f}%{took}", flush=True)
        if r.test_correct is not None:
            say(
                f"  the corresponding test accuracy is {100 * r.test_correct / r.test_total:.2f}%",
                flush=True,
            )
        if metrics:
            metrics.write({"network": i, **r.as_dict(), "device": device})

    try:
        fit_lib.fit(
            network3.model(tuple(net_layers), shape, FLAGS.expand == "random"),
            tx,
            networks,
            (train_x, train_y),
            eval_data=(dataset.validation.x, dataset.validation.y),
            test_data=(dataset.test.x, dataset.test.y),
            epochs=FLAGS.epochs,
            mini_batch_size=FLAGS.mini_batch_size,
            keys=[shuffle_key for _, shuffle_key in seeds],
            shuffle=FLAGS.shuffle,
            drop_last=True,
            strategy=strategy,
            mesh=mesh,
            unroll=FLAGS.unroll,
            matmul_precision=precision,
            keep_best=True,
            on_epoch=report,
            after_epoch=after_epoch,
        )
    finally:
        if metrics:
            metrics.close()
    compile_seconds = networks[0].compile_seconds

    test_x, test_y = dataset.test.x, dataset.test.y

    def predict(p):
        return np.asarray(
            network3.predict_all(p, test_x, layers=tuple(net_layers), input_shape=shape)
        )

    n_test = len(test_y)
    seconds = sum(r.seconds for n in networks for r in n.epochs)
    summary = {"networks": [], "vote": None, "train_seconds": seconds}
    for i, net in enumerate(networks):
        best = net.best
        final = int(np.sum(predict(net.params) == test_y))
        summary["networks"].append(
            {
                "seed": FLAGS.seed + i,
                "best_epoch": best.epoch,
                "validation_accuracy": 100 * best.accuracy,
                "test_accuracy": 100 * best.test_correct / best.test_total,
                "final_test_accuracy": 100 * final / n_test,
            }
        )
        say(
            f"{f'Network {i}: b' if k > 1 else 'B'}est validation accuracy "
            f"{100 * best.accuracy:.2f}% at epoch {best.epoch}; the corresponding test "
            f"accuracy is {100 * best.test_correct / best.test_total:.2f}%. Final test "
            f"accuracy {100 * final / n_test:.2f}%."
        )
    votes = classes = np.stack([predict(n.best_params) for n in networks])
    if k > 1:
        votes = np.asarray(ensemble.plurality_vote(classes, dataset.num_classes))
        tests = [n.best.test_correct / n.best.test_total for n in networks]
        summary["vote"] = {
            "test_accuracy": 100 * ensemble.vote_accuracy(votes, test_y),
            "wrong": len(ensemble.misclassified(votes, test_y)),
        }
        say(
            f"Test accuracy at the best validation epoch: mean {100 * np.mean(tests):.2f}% "
            f"± {100 * np.std(tests, ddof=1):.2f}% over {k} networks. Their plurality vote: "
            f"{100 * ensemble.vote_accuracy(votes, test_y):.2f}% "
            f"({len(ensemble.misclassified(votes, test_y))} test digits wrong)."
        )
    votes = votes.reshape(-1)
    if FLAGS.predictions_out and primary:  # before "Trained in", which marks a run finished
        from nnjax import predictions

        names = [f"{FLAGS.preset or 'conv'} seed {FLAGS.seed + i}" for i in range(k)]
        predictions.save(FLAGS.predictions_out, classes, test_y, FLAGS.dataset, "test", names)
        say(f"Wrote the test predictions to {FLAGS.predictions_out}.")
    say(f"Trained in {seconds:.1f} s (+{compile_seconds:.1f} s compile).")
    if FLAGS.save and primary:
        saving.save_layers(
            FLAGS.save,
            [n.best_params for n in networks],
            {name: FLAGS[name].value for name in SETTINGS},
        )
        say(f"Saved the networks (at their best validation epochs) to {FLAGS.save}.")
    if FLAGS.filters_png and primary:
        from experiments import figures

        w = np.asarray(networks[0].best_params[0]["w"])  # (kh, kw, C, F)
        figures.draw_filters(
            w[:, :, 0, :].transpose(2, 0, 1),
            FLAGS.filters_png,
            title="first conv-pool layer's filters",
        )
        say(f"Drew the filters to {FLAGS.filters_png}.")
    if FLAGS.misclassified_png and primary:
        from experiments import figures

        say(figures.draw_mistakes(test_x, test_y, votes, FLAGS.misclassified_png, side=shape[0]))
    if FLAGS.summary_out and primary:  # the last file a finished run writes
        write_summary(FLAGS.summary_out, {**summary, "compile_seconds": compile_seconds})
        say(f"Wrote the run's record to {FLAGS.summary_out}.")


def list_presets() -> None:
    for name, (what, number, settings) in PRESETS.items():
        print(
            f"{name:9} {what} (book: {number:.2f}%)\n          {preset_command(name)}  = "
            + " ".join(f"--{k}={v}" for k, v in settings.items())
        )


def main(argv):
    if FLAGS.list:
        list_presets()
        return
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main)
