r"""The book's chapter 3 figures, drawn from the `--metrics_out` files of training runs.

    python -m experiments.mnist --cost=cross_entropy --eta=0.5 --train_size=1000 \
        --epochs=400 --monitor --metrics_out=overfit.jsonl
    python -m experiments.plots --out=overfitting.png --y=training_cost,accuracy \
        --run="λ = 0=overfit.jsonl"

    # several runs on one axis (η values, initialisations, ...):
    python -m experiments.plots --out=eta.png --y=training_cost \
        --run="η = 0.025=a.jsonl" --run="η = 0.25=b.jsonl" --run="η = 2.5=c.jsonl"

    # the best accuracy of each run against a number in its label (training-set size):
    python -m experiments.plots --out=size.png --against_label --run=1000=a.jsonl ...

    # chapter 5's speed of learning, one curve per hidden layer (the book's settings):
    python -m experiments.mnist --hidden=30,30 --cost=cross_entropy --init=scaled \
        --train_size=1000 --mini_batch_size=1000 --eta=0.1 --l2=5 --epochs=500 \
        --gradient_norms=1000 --metrics_out=speed2.jsonl
    python -m experiments.plots --out=speed2.png --y=gradient_norms --run=2=speed2.jsonl

Each `--run` is LABEL=PATH (the label may contain "=" and ","; the path is after the last
"="). `--y` names the per-epoch quantities to draw, one
panel each: accuracy, training_accuracy, training_cost, evaluation_cost (the costs and the
training accuracy need `--monitor` on the training run), gradient_norms (needs
`--gradient_norms`). Every panel but gradient_norms draws epoch k (0-based, as the book
prints it) at x = k; gradient_norms, as the book's figures, against the number of epochs of
training: its value after epoch k at k + 1, and at 0 the one before training (where the
metrics file records it, as experiments.mnist's does), on a log axis.
"""

import math

from absl import app, flags

from experiments.checks import check_not_inputs, check_png, plain_text, refuse_given
from experiments.cli import parse_flags, run_guarded
from experiments.flag_lists import parse_names
from experiments.metrics_files import (
    BEFORE_TRAINING,
    QUANTITIES,
    PlotError,
    read_runs,
    split_runs,
)
from experiments.writing import save_figure

FLAGS = flags.FLAGS
flags.DEFINE_multi_string(
    "run", None, "LABEL=PATH of a --metrics_out file; repeat for several runs."
)
flags.DEFINE_list("y", ["accuracy"], "Quantities to draw, one panel each.")
flags.DEFINE_string("out", None, "The PNG file to write.")
flags.DEFINE_string("title", None, "A title for the figure.")
flags.DEFINE_bool(
    "against_label",
    False,
    "Draw each run's best accuracy against the number "
    "in its label (e.g. the training-set size) instead of curves per epoch.",
)
flags.DEFINE_integer(
    "from_epoch",
    0,
    "Leave out the epochs before this one (the book's overfitting figures start at epoch 200).",
)

HOW = {"accuracy": "", "gradient_norms": " (train it with --gradient_norms=N)"}


def recorded(epoch: dict, quantity: str, path_label: str):
    """``epoch[quantity]``; PlotError saying how to record it if the run did not."""
    if quantity not in epoch:
        how = HOW.get(quantity, " (train it with --monitor)")
        raise PlotError(f"run {path_label!r} has no {quantity}{how}")
    return epoch[quantity]


def value(epoch: dict, quantity: str, path_label: str):
    """The number ``quantity`` drawn for ``epoch`` (accuracies in %)."""
    v = recorded(epoch, quantity, path_label)
    return 100 * v if quantity.endswith("accuracy") else v


def epochs_from(epochs, label: str, from_epoch: int):
    """The run's epochs from ``from_epoch`` on; PlotError if there are none."""
    kept = [e for e in epochs if e["epoch"] >= from_epoch]
    if not kept:
        raise PlotError(
            f"--from_epoch={from_epoch}: run {label!r} ends at epoch "
            f"{max(e['epoch'] for e in epochs)}"
        )
    return kept


def layer_norms(epochs, label: str):
    """A run's chapter 5 speeds of learning: ``(x, norms)`` with x the number of epochs of
    training (0 before training, where recorded; k + 1 after epoch k) and norms (points,
    hidden layers), one column per hidden layer, input side first."""
    points = []
    if epochs[0]["epoch"] == 0 and BEFORE_TRAINING in epochs[0]:
        points.append((0, epochs[0][BEFORE_TRAINING]))
    points += [(e["epoch"] + 1, recorded(e, "gradient_norms", label)) for e in epochs]
    if not points[0][1]:
        raise PlotError(f"run {label!r} has no hidden layers to draw gradient_norms of")
    return [x for x, _ in points], [norms for _, norms in points]


def draw_gradient_norms(ax, runs):
    """Draws each run's speed of learning, one curve per hidden layer (colour) and run
    (line style), on a log y axis."""
    styles = ["-", "--", ":", "-."]
    for i, (label, epochs) in enumerate(runs):
        x, norms = layer_norms(epochs, label)
        for layer in range(len(norms[0])):
            name = f"hidden layer {layer + 1}"
            ax.plot(
                x,
                [n[layer] for n in norms],
                color=f"C{layer}",
                linestyle=styles[i % len(styles)],
                label=name if len(runs) == 1 else plain_text(f"{label}: {name}"),
            )
    ax.set_yscale("log")
    ax.set_xlabel("number of epochs of training")
    ax.legend(loc="upper right")


def draw(runs, quantities, out, title=None, against_label=False, from_epoch=0):
    """Writes the figure to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if against_label:
        try:
            sizes = [float(label) for label, _ in runs]
        except ValueError:
            sizes = []
        if len(sizes) < len(runs) or not all(0 < v < math.inf for v in sizes):
            raise PlotError(
                "--against_label needs labels that are positive numbers, drawn on a log axis "
                "(e.g. --run=1000=run.jsonl)"
            )
        points = sorted(
            (size, max(value(e, "accuracy", label) for e in epochs))
            for size, (label, epochs) in zip(sizes, runs)
        )
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(*zip(*points), "o-")
        ax.set_xscale("log")
        ax.set_xlabel("training set size")
        ax.set_ylabel("best accuracy on the evaluation data (%)")
        axes = [ax]
    else:
        fig, axes = plt.subplots(
            1, len(quantities), figsize=(6 * len(quantities), 4), squeeze=False
        )
        axes = axes[0]
        for ax, quantity in zip(axes, quantities):
            kept = [(label, epochs_from(epochs, label, from_epoch)) for label, epochs in runs]
            ax.set_ylabel(QUANTITIES[quantity])
            if quantity == "gradient_norms":
                draw_gradient_norms(ax, kept)
                continue
            for label, epochs in kept:
                ax.plot(
                    [e["epoch"] for e in epochs],
                    [value(e, quantity, label) for e in epochs],
                    label=plain_text(label),
                )
            ax.set_xlabel("epoch")
            if len(runs) > 1:
                ax.legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(plain_text(title))
    fig.tight_layout()
    try:
        save_figure(fig, out)
    finally:
        plt.close(fig)


def run() -> None:
    if not FLAGS.run:
        raise PlotError("--run is required: LABEL=PATH of a --metrics_out file")
    if not FLAGS.out:
        raise PlotError("--out must name a .png file")
    check_png("out", FLAGS.out)
    if FLAGS.from_epoch < 0:
        raise PlotError(f"--from_epoch must be 0 or more, got {FLAGS.from_epoch}")
    quantities = None
    if FLAGS.against_label:
        refuse_given(
            ["y", "from_epoch"], "draws against the epoch: leave it out with --against_label"
        )
    else:
        quantities = parse_names("y", FLAGS.y, QUANTITIES)
    check_not_inputs([path for _, path in split_runs(FLAGS.run)], "also the input file of --run")
    draw(
        read_runs(FLAGS.run),
        quantities,
        FLAGS.out,
        FLAGS.title,
        FLAGS.against_label,
        FLAGS.from_epoch,
    )
    print(f"Wrote {FLAGS.out}")


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
