r"""Reproduce the book's chapter 1, 3 and 5 numbers: every row, several seeds, one table.

    python -m experiments.reproduce                       # all rows, seeds 0-4
    python -m experiments.reproduce --rows=ch3_l2 --seeds=3
    python -m experiments.reproduce --list

Each row is a configuration of ``experiments.mnist`` (the same flags; shown in the table)
with the book's published number. The table gives the mean ± sd and the best, over seeds,
of each run's best accuracy on the row's evaluation split (chapter 1 and 3 report the best
epoch; where the book reports something else, the row says so). ``--out`` writes one JSON
object per run as it finishes; ``--resume`` keeps those and runs only the rest.
"""

import json
import os
import statistics
import time

from absl import app, flags

from experiments.checks import UsageError, check_writable, refuse_others
from experiments.cli import DATA_DIR_HELP, parse_flags, run_guarded
from experiments.flag_lists import parse_names
from experiments.writing import JsonLines
from nnjax.progress import Progress

FLAGS = flags.FLAGS
flags.DEFINE_list("rows", None, "Rows to run (default: all; --list shows them).")
flags.DEFINE_integer("seeds", 5, "Seeds 0..N-1 per row.")
flags.DEFINE_bool("list", False, "List the rows and exit.")
flags.DEFINE_string("out", None, "Write one JSON object per run to this file.")
flags.DEFINE_bool(
    "resume",
    False,
    "Keep the runs --out already holds (same row, seed and command) and run only the rest.",
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)

CH3_L2 = dict(cost="cross_entropy", eta=0.5, l2=5.0)
SCALED = dict(cost="cross_entropy", init="scaled", eta=0.1, l2=5.0)
# name: (what the book ran, its number, settings). Settings are experiments.mnist's flags;
# each row compares the accuracy at the best epoch.
ROWS = {
    "ch1_30": ("ch. 1, [784, 30, 10], η = 3.0", "95.42%", dict(hidden=[30])),
    "ch1_100": ("ch. 1, [784, 100, 10], η = 3.0", "96.59%", dict(hidden=[100])),
    "ch3_ce_30": (
        "ch. 3, cross-entropy, η = 0.5",
        "95.49%",
        dict(hidden=[30], cost="cross_entropy", eta=0.5),
    ),
    "ch3_ce_100": (
        "ch. 3, cross-entropy, [784, 100, 10], η = 0.5",
        "96.82%",
        dict(hidden=[100], cost="cross_entropy", eta=0.5),
    ),
    "ch3_overfit": (
        "ch. 3, 1,000 images, 400 epochs, λ = 0",
        "82.27%",
        dict(hidden=[30], cost="cross_entropy", eta=0.5, train_size=1000, epochs=400),
    ),
    "ch3_overfit_l2": (
        "ch. 3, 1,000 images, 400 epochs, λ = 0.1",
        "87.1%",
        dict(hidden=[30], cost="cross_entropy", eta=0.5, train_size=1000, epochs=400, l2=0.1),
    ),
    "ch3_l2": ("ch. 3, λ = 5.0, η = 0.5", "96.49%", dict(hidden=[30], **CH3_L2)),
    "ch3_l2_100": (
        "ch. 3, [784, 100, 10], λ = 5.0, validation",
        "97.92%",
        dict(hidden=[100], eval_split="validation", **CH3_L2),
    ),
    "ch3_l2_100_60": (
        "ch. 3, [784, 100, 10], λ = 5.0, η = 0.1, 60 epochs, validation",
        "98.04%",
        dict(
            hidden=[100], eval_split="validation", cost="cross_entropy", eta=0.1, l2=5.0, epochs=60
        ),
    ),
    "ch3_init_scaled": (
        "ch. 3, N(0, 1/n_in) init, η = 0.1, λ = 5.0: after epoch 1, validation",
        "~93%",
        dict(hidden=[30], eval_split="validation", epochs=1, **SCALED),
    ),
    "ch3_init_normal": (
        "ch. 3, N(0, 1) init, η = 0.1, λ = 5.0: after epoch 1, validation",
        "< 87%",
        dict(hidden=[30], eval_split="validation", epochs=1, **{**SCALED, "init": "normal"}),
    ),
    "ch5_1": (
        "ch. 5, 1 hidden layer of 30, validation",
        "96.48%",
        dict(hidden=[30], eval_split="validation", **SCALED),
    ),
    "ch5_2": (
        "ch. 5, 2 hidden layers of 30, validation",
        "96.90%",
        dict(hidden=[30, 30], eval_split="validation", **SCALED),
    ),
    "ch5_3": (
        "ch. 5, 3 hidden layers of 30, validation",
        "96.57%",
        dict(hidden=[30, 30, 30], eval_split="validation", **SCALED),
    ),
    "ch5_4": (
        "ch. 5, 4 hidden layers of 30, validation",
        "96.53%",
        dict(hidden=[30, 30, 30, 30], eval_split="validation", **SCALED),
    ),
}
DEFAULTS = dict(
    epochs=30,
    mini_batch_size=10,
    eta=3.0,
    cost="quadratic",
    init="normal",
    l2=0.0,
    train_size=None,
    eval_split="test",
)


def command(settings: dict) -> str:
    """The experiments.mnist command for a row's settings."""
    parts = ["python -m experiments.mnist", f"--hidden={','.join(map(str, settings['hidden']))}"]
    for name, value in settings.items():
        if name != "hidden" and value != DEFAULTS.get(name):
            parts.append(f"--{name}={value:g}" if isinstance(value, float) else f"--{name}={value}")
    return " ".join(parts)


def run_row(dataset, settings: dict, seed: int) -> float:
    """One run; returns the accuracy (%) the row reports."""

    from nnjax import costs, network, optimizers
    from nnjax.fit import fit
    from nnjax.history import History
    from nnjax.seeds import run_keys

    s = {**DEFAULTS, **settings}
    x, y = dataset.train.x, dataset.train.y
    if s["train_size"]:
        x, y = x[: s["train_size"]], y[: s["train_size"]]
    evaluation = getattr(dataset, s["eval_split"])
    init_key, shuffle_key = run_keys(seed)
    params = network.init(init_key, [x.shape[1], *s["hidden"], 10], init=s["init"])
    tx = optimizers.make("sgd")
    history = fit(
        network.model(costs.get(s["cost"])),
        tx,
        History(params, optimizers.init(tx, params, s["eta"], s["l2"] / len(y))),
        (x, y),
        epochs=s["epochs"],
        mini_batch_size=s["mini_batch_size"],
        key=shuffle_key,
        eval_data=(evaluation.x, evaluation.y),
    )
    return 100 * history.best.accuracy


def finished_runs(path: str) -> tuple:
    """The records of reproduce's ``--out`` file ``path``, in order; ``{(row, seed):
    record}`` of those whose command is still the row's; and how many are not (older, or of
    changed settings: kept in the file, but run again). UsageError naming --out if a line is not
    one of its records."""
    records, kept, stale = [], {}, 0
    with open(path) as f:
        for number, line in enumerate(f, 1):
            try:
                record = json.loads(line)
                row, seed, accuracy = record["row"], record["seed"], record["accuracy"]
                if not (isinstance(row, str) and type(seed) is int and type(accuracy) is float):
                    raise TypeError
            except (ValueError, TypeError, KeyError):
                raise UsageError(
                    f"--out={path}: line {number} is not a run of experiments.reproduce"
                ) from None
            records.append(record)
            if row in ROWS and record.get("command") == command(ROWS[row][2]):
                kept[row, seed] = record
            else:
                stale += 1
    return records, kept, stale


def run() -> None:
    if FLAGS.list:
        refuse_others("list")
        for name, (what, book, settings) in ROWS.items():
            print(f"{name:16s} {what} (book: {book})\n{'':16s} {command(settings)}")
        return
    rows = list(ROWS) if FLAGS.rows is None else parse_names("rows", FLAGS.rows, ROWS)
    if FLAGS.seeds <= 0:
        raise UsageError(f"--seeds must be positive, got {FLAGS.seeds}")
    from nnjax import data

    records, kept, stale = [], {}, 0
    if FLAGS.out:
        check_writable("out", FLAGS.out)
        if FLAGS.resume and os.path.exists(FLAGS.out):
            records, kept, stale = finished_runs(FLAGS.out)
    elif FLAGS.resume:
        raise UsageError("--resume reads the runs of --out: give --out")
    if stale:
        print(
            f"--out={FLAGS.out}: {stale} of its {len(records)} runs are of other settings "
            "(or an older nnjax): kept there, not counted"
        )
    dataset = data.load("mnist", FLAGS.data_dir, progress=print)
    # only now: a run that cannot start leaves an earlier --out file as it was
    out = JsonLines(FLAGS.out, rows=records, flag="out")
    table = ["| book | command | nnjax mean ± sd | best | book |", "|---|---|---|---|---|"]
    for i, name in enumerate(rows, 1):
        what, book, settings = ROWS[name]
        todo = [seed for seed in range(FLAGS.seeds) if (name, seed) not in kept]
        row_command = command(settings)
        print(f"{name} (row {i} of {len(rows)}): {row_command}", flush=True)
        if len(todo) < FLAGS.seeds:
            print(f"  {FLAGS.seeds - len(todo)} of {FLAGS.seeds} seeds kept from --out")
        start, clock = time.perf_counter(), Progress(len(todo), unit="runs")
        for done, seed in enumerate(todo):
            accuracy = run_row(dataset, settings, seed)
            kept[name, seed] = dict(row=name, seed=seed, accuracy=accuracy, command=row_command)
            out.write(kept[name, seed])
            print(f"  seed {seed}: {accuracy:.2f}% ({clock.tick(done)})", flush=True)
        results = [kept[name, seed]["accuracy"] for seed in range(FLAGS.seeds)]
        sd = statistics.stdev(results) if len(results) > 1 else 0.0
        print(
            f"{name}: {statistics.mean(results):.2f} ± {sd:.2f} (best {max(results):.2f}; "
            f"book {book}) in {time.perf_counter() - start:.0f} s",
            flush=True,
        )
        table.append(
            f"| {what} | `{row_command}` | {statistics.mean(results):.2f} ± "
            f"{sd:.2f}% | {max(results):.2f}% | {book} |"
        )
    out.close()
    print("\n".join(table))


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
