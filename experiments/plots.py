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

Each `--run` is LABEL=PATH (the label may contain "=" and ","; the path is after the last
"="). `--y` names the per-epoch quantities to draw, one
panel each: accuracy, training_accuracy, training_cost, evaluation_cost (the costs and the
training accuracy need `--monitor` on the training run).
"""

import json
import sys

from absl import app, flags

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

QUANTITIES = {
    "accuracy": "accuracy on the evaluation data (%)",
    "training_accuracy": "accuracy on the training data (%)",
    "training_cost": "cost on the training data",
    "evaluation_cost": "cost on the evaluation data",
}


class PlotError(Exception):
    """Bad input; the message names the flag or file."""


def read_runs(entries):
    """[(label, [epoch dicts])] from LABEL=PATH entries."""
    runs = []
    for entry in entries:
        label, sep, path = entry.rpartition("=")
        if not sep or not label or not path:
            raise PlotError(f"--run={entry!r} is not LABEL=PATH")
        try:
            with open(path) as f:
                lines = f.readlines()
        except OSError as e:
            raise PlotError(f"cannot read {path}: {e.strerror}") from None
        except ValueError as e:  # not text at all
            raise PlotError(f"{path} is not a --metrics_out file: {e}") from None
        epochs = []
        for number, line in enumerate(lines, 1):
            try:
                if line.strip():
                    epochs.append(json.loads(line))
            except ValueError as e:
                if number == len(lines) and not line.endswith("\n") and epochs:
                    # A run killed, or a disk filled, mid-line: the complete lines stand.
                    print(
                        f"warning: {path}: line {number}, the last, is cut off; "
                        f"drawing the {len(epochs)} complete lines before it",
                        file=sys.stderr,
                    )
                    break
                raise PlotError(
                    f"{path} is not a --metrics_out file: line {number} is not JSON ({e})"
                ) from None
        if not epochs:
            raise PlotError(f"{path} has no epochs")
        if not all(isinstance(e, dict) and "epoch" in e for e in epochs):
            raise PlotError(f'{path} is not a --metrics_out file: a line without "epoch"')
        runs.append((label, epochs))
    return runs


def value(epoch: dict, quantity: str, path_label: str):
    if quantity not in epoch:
        how = "" if quantity == "accuracy" else " (train it with --monitor)"
        raise PlotError(f"run {path_label!r} has no {quantity}{how}")
    v = epoch[quantity]
    return 100 * v if quantity.endswith("accuracy") else v


def draw(runs, quantities, out, title=None, against_label=False, from_epoch=0):
    """Writes the figure to ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if against_label:
        try:
            points = sorted(
                (float(label), max(value(e, "accuracy", label) for e in epochs))
                for label, epochs in runs
            )
        except ValueError:
            raise PlotError(
                "--against_label needs numeric labels (e.g. --run=1000=run.jsonl)"
            ) from None
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
            for label, epochs in runs:
                kept = [e for e in epochs if e["epoch"] >= from_epoch]
                if not kept:
                    raise PlotError(
                        f"--from_epoch={from_epoch}: run {label!r} ends at epoch "
                        f"{max(e['epoch'] for e in epochs)}"
                    )
                ax.plot(
                    [e["epoch"] for e in kept],
                    [value(e, quantity, label) for e in kept],
                    label=label,
                )
            ax.set_xlabel("epoch")
            ax.set_ylabel(QUANTITIES[quantity])
            if len(runs) > 1:
                ax.legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv):
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]}")
    try:
        if not FLAGS.run:
            raise PlotError("--run is required: LABEL=PATH of a --metrics_out file")
        if not FLAGS.out or not FLAGS.out.endswith(".png"):
            raise PlotError("--out must name a .png file")
        if not FLAGS.y and not FLAGS.against_label:
            raise PlotError(f"--y must name at least one of {', '.join(QUANTITIES)}")
        unknown = [q for q in FLAGS.y if q not in QUANTITIES]
        if unknown:
            raise PlotError(
                f"--y: unknown {', '.join(unknown)}; choose from {', '.join(QUANTITIES)}"
            )
        draw(
            read_runs(FLAGS.run),
            FLAGS.y,
            FLAGS.out,
            FLAGS.title,
            FLAGS.against_label,
            FLAGS.from_epoch,
        )
    except PlotError as e:
        sys.exit(f"error: {e}")
    except OSError as e:
        sys.exit(f"error: cannot write --out={FLAGS.out}: {e.strerror}")
    print(f"Wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
