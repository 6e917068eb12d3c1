"""The flags of ``experiments.conv`` (chapter 6's runner), its presets (the book's rows) and
the checks of the flags made before any work starts."""

from absl import flags

from experiments import presets
from experiments.checks import (
    UsageError,
    check_directory,
    check_png,
    check_predictions_out,
    check_writable,
)
from experiments.cli import (
    MAX_SEED,
    MAX_UNROLL,
    SEED_BOUNDS,
    define_data_flags,
    define_training_flags,
)
from experiments.devices import define_device_flags
from experiments.training import check_devices, check_ranges
from nnjax import activations, conv, fit, layers

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
    list(activations.HIDDEN),
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
    list(layers.DROPOUTS),
    "book: drop while training, "
    "scale w by 1 − p at test time (network3); inverted: scale kept inputs by "
    "1/(1 − p) while training.",
)
flags.DEFINE_enum(
    "init",
    "book",
    list(layers.INITS),
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
    ["auto", *fit.STRATEGIES],
    "Train several networks all "
    "at once with vmap, or one after another; auto: loop on the CPU, vmap "
    "elsewhere.",
)
define_device_flags()
flags.DEFINE_integer(
    "unroll",
    1,
    "SGD steps compiled into each iteration of the epoch's "
    "loop: the same networks (benchmarks.conv_speed --unroll times them).",
    upper_bound=MAX_UNROLL,
)
flags.DEFINE_enum(
    "convolution",
    "auto",
    list(conv.CONVOLUTIONS),
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


def parse_layers(num_classes: int = 10):
    """The layers --layers and the other flags describe, a softmax of ``num_classes``
    outputs where --layers leaves it unsized; UsageError naming --layers if they are not."""
    from nnjax import layers

    try:
        return layers.parse(
            FLAGS.layers,
            FLAGS.activation,
            FLAGS.dropout,
            FLAGS.dropout_kind,
            FLAGS.init,
            num_classes,
            FLAGS.convolution,
        )
    except layers.LayerError as e:
        raise UsageError(f"--layers={FLAGS.layers}: {e}") from None


def check_flags():
    """Validates the flags before any work; returns the layers."""
    apply_preset()
    check_ranges(
        positive=("eta", "epochs", "mini_batch_size", "networks", "unroll", "train_size"),
        non_negative=("l2",),
        fractions=("momentum", "dropout"),
    )
    if FLAGS.seed + FLAGS.networks - 1 > MAX_SEED:  # network i has seed --seed + i
        raise UsageError(
            f"--seed={FLAGS.seed} with --networks={FLAGS.networks}: the last "
            f"network's seed would be past 2^31 − 1"
        )
    # experiments.vote tells networks (.npz) from predictions (.json) by the suffix
    if FLAGS.save and not FLAGS.save.lower().endswith(".npz"):
        raise UsageError(f"--save={FLAGS.save}: a networks file's name must end in .npz")
    for name in ("metrics_out", "save", "summary_out"):
        if FLAGS[name].value:
            check_writable(name, FLAGS[name].value)
    if FLAGS.checkpoint_dir:
        check_directory("checkpoint_dir", FLAGS.checkpoint_dir)
    for name in ("filters_png", "misclassified_png"):
        if FLAGS[name].value:
            check_png(name, FLAGS[name].value)
    if FLAGS.predictions_out:
        check_predictions_out("predictions_out", FLAGS.predictions_out)
    net = parse_layers()
    check_devices()
    if FLAGS.filters_png and not FLAGS.layers.startswith("conv"):
        raise UsageError("--filters_png needs a first layer that is conv-pool")
    return net
