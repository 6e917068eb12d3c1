"""The ``--metrics_out`` files of training runs, read back: one JSON object per epoch, each
line checked (``read_runs``), so that a figure is never drawn from a file that is not one."""

import json
import math
import os
import sys

from experiments.checks import UsageError

QUANTITIES = {
    "accuracy": "accuracy on the evaluation data (%)",
    "training_accuracy": "accuracy on the training data (%)",
    "training_cost": "cost on the training data",
    "evaluation_cost": "cost on the evaluation data",
    "gradient_norms": "‖∂C/∂b‖ of each hidden layer",
}
BEFORE_TRAINING = "gradient_norms_before_training"


class PlotError(UsageError):
    """Bad input; the message names the flag or file."""


def split_runs(entries):
    """[(label, path)] of the LABEL=PATH entries of --run; PlotError unless each is that."""
    runs = []
    for entry in entries:
        label, sep, path = entry.rpartition("=")
        if not sep or not label or not path:
            raise PlotError(f"--run={entry!r} is not LABEL=PATH")
        runs.append((label, path))
    return runs


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def read_runs(entries):
    """[(label, [epoch dicts])] from LABEL=PATH entries, each the file of one network's run
    (``one_run``)."""
    return [(label, one_run(read_epochs(path), path)) for label, path in split_runs(entries)]


def one_run(epochs, path) -> list:
    """``epochs``, checked to be one network's, in order: PlotError naming ``path`` if they
    are several networks' (experiments.conv --networks=N writes them in one file) or an
    epoch comes again or out of order."""
    networks = sorted({e.get("network", 0) for e in epochs}, key=str)
    if len(networks) > 1:
        raise PlotError(
            f"{path} holds the epochs of {len(networks)} networks (a run of --networks); "
            "--run draws one network's run"
        )
    for before, after in zip(epochs, epochs[1:]):
        if after["epoch"] <= before["epoch"]:
            raise PlotError(
                f"{path}: epoch {after['epoch']} comes after epoch {before['epoch']}; "
                "--run draws one run's epochs in order"
            )
    return epochs


def read_epochs(path) -> list:
    """The epochs of the --metrics_out file ``path``, one dict per line, each checked by
    ``check_epoch``; a last line cut off mid-way (a run killed, a disk filled) is left out
    with a warning. PlotError naming ``path`` if it is not such a file."""
    if os.path.exists(path) and not os.path.isfile(path):
        raise PlotError(f"cannot read {path}: not a regular file")
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
                epoch = json.loads(line)
                check_epoch(epoch, path, number)
                epochs.append(epoch)
        except ValueError as e:
            if number == len(lines) and not line.endswith("\n") and epochs:
                print(
                    f"warning: {path}: line {number}, the last, is cut off; "
                    f"reading the {len(epochs)} complete lines before it",
                    file=sys.stderr,
                )
                break
            raise PlotError(
                f"{path} is not a --metrics_out file: line {number} is not JSON ({e})"
            ) from None
    if not epochs:
        raise PlotError(f"{path} has no epochs")
    check_layers(epochs, path)
    return epochs


def check_epoch(epoch, path, number: int) -> None:
    """PlotError naming ``path`` and the line ``number`` unless ``epoch`` (its JSON) is an
    object whose "epoch" is a whole number from 0, each quantity it records a number and
    its gradient norms lists of positive numbers (they are drawn on a log axis)."""
    if not isinstance(epoch, dict) or "epoch" not in epoch:
        raise PlotError(f'{path} is not a --metrics_out file: line {number} has no "epoch"')
    k = epoch["epoch"]
    if not (isinstance(k, int) and not isinstance(k, bool) and k >= 0):
        raise PlotError(
            f'{path} is not a --metrics_out file: line {number}\'s "epoch" is {k!r}, '
            "not a whole number from 0"
        )
    for quantity in QUANTITIES:
        if quantity in epoch and quantity != "gradient_norms" and not is_number(epoch[quantity]):
            raise PlotError(
                f"{path}: line {number}'s {quantity} is {epoch[quantity]!r}, not a number"
            )
    for quantity in ("gradient_norms", BEFORE_TRAINING):
        norms = epoch.get(quantity, [])
        if not (isinstance(norms, list) and all(is_number(v) for v in norms)):
            raise PlotError(
                f"{path}: line {number}'s {quantity} is {norms!r}, not a list of numbers"
            )
        if not all(0 < v < math.inf for v in norms):
            raise PlotError(
                f"{path}: line {number}'s {quantity} is {norms}; a log axis draws only "
                "positive finite numbers"
            )


def check_layers(epochs, path) -> None:
    """PlotError naming ``path`` if its lines record gradient norms of different numbers of
    hidden layers."""
    layers = {len(e[q]) for e in epochs for q in ("gradient_norms", BEFORE_TRAINING) if q in e}
    if len(layers) > 1:
        raise PlotError(f"{path}: its lines record different numbers of hidden layers")
