"""A chapter 6 run directory (``experiments.chapter6 --dir``): which runs have finished
as asked, their results, the ensemble row's votes, and the Markdown table of them all.
Every run is ``ROW_sSEED.*``, written by ``experiments.conv`` (its ``--summary_out`` record
marks it finished); an ensemble seed is the vote of five dropout runs or one ensemble run.
"""

import collections
import json
import pathlib
import shlex
import statistics
import subprocess

from experiments import metrics_files, presets
from experiments.checks import UsageError
from experiments.jobs import command, reason

ROWS = presets.CHAPTER6
ENSEMBLE, MEMBER = "ensemble", "dropout"
VOTERS = ROWS[ENSEMBLE][2]["networks"]  # dropout networks per ensemble
PREDICTIONS = ".predictions.json"  # a run's test predictions, what its vote needs
SUMMARY = ".summary.json"  # a finished run's record (experiments.conv --summary_out)

# experiments.conv's flags that say how or from where a run trains, not which networks it
# trains: a finished run counts whatever they were. (--matmul_precision is not one of them:
# a GPU's TF32 products train other networks than float32's.)
HOW_FLAGS = ("data_dir", "unroll", "convolution", "strategy", "devices")


def member_seeds(seed: int) -> list:
    """The dropout row's seeds whose vote is the ensemble row's seed ``seed``."""
    return list(range(VOTERS * seed, VOTERS * (seed + 1)))


def preset_seed(row: str, seed: int) -> int:
    """experiments.conv's --seed for the row's seed ``seed``: the ensemble row's seed k is
    --seed=5k, whose networks are the dropout row's seeds 5k … 5k+4."""
    return VOTERS * seed if row == ENSEMBLE else seed


def finished(base: pathlib.Path) -> bool:
    """Whether the run ``base``.* trained to its end: experiments.conv wrote its record
    (``--summary_out``, the last file a finished run writes) and its metrics."""
    return base.with_suffix(".jsonl").exists() and summary_path(base).exists()


def summary_path(base: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(f"{base}{SUMMARY}")


def summary_of(path: pathlib.Path, read):
    """``read(record)`` of the record written by ``--summary_out`` (experiments.conv's or
    experiments.vote's) at ``path``; UsageError naming the file if it is no JSON or ``read``
    finds it is no such record (a key missing, a value of another type)."""
    try:
        return read(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
        why = f'no "{e.args[0]}"' if isinstance(e, KeyError) else str(e)
        raise UsageError(
            f"{path} is not a run's --summary_out record ({why}); delete the run's files to "
            "train it again"
        ) from None


def percent(value, optional: bool = False):
    """``value``, an accuracy in % (None too where ``optional``); ValueError otherwise."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError(f"an accuracy of {value!r}")
    return value


def asked(row: str, seed: int, extra: list) -> str:
    """What the run (``row``, ``seed``) is asked, its paths aside: its ``.flags`` stamp."""
    return shlex.join([f"--preset={row}", f"--seed={preset_seed(row, seed)}", *extra])


def same_networks(stamp: str, settings: str) -> bool:
    """Whether two stamps ask for the same networks: the same flags as written, in any
    order, those that only say how or from where to train (``HOW_FLAGS``) aside."""

    def what(flags: str) -> dict:
        try:
            words = shlex.split(flags)
        except ValueError:  # a stamp written before they were shell-quoted
            words = flags.split()
        pairs = (f.lstrip("-").partition("=")[::2] for f in words)
        return {name: value for name, value in pairs if name not in HOW_FLAGS}

    return what(stamp) == what(settings)


def finished_as_asked(row: str, seed: int, directory: pathlib.Path, extra: list) -> bool:
    """Whether the run (``row``, ``seed``) in ``directory`` has finished; UsageError if it
    finished with other flags than ``extra`` (its ``.flags``), as it would then count for
    another row than the one asked for."""
    base = directory / f"{row}_s{seed}"
    if not finished(base):
        return False
    stamp = base.with_suffix(".flags")
    if stamp.exists() and not same_networks(stamp.read_text(), asked(row, seed, extra)):
        raise UsageError(
            f"--dir={directory}: {row} seed {seed} finished with other flags "
            f"({stamp.read_text().strip()}); give --flags as it had them, or "
            f"use another --dir"
        )
    return True


def training_time(epochs: list) -> dict:
    """A network's training time from its epochs' metrics, ``{"seconds": s, "device":
    kind}``: the median epoch's ``seconds`` (a vmapped network's share) times the number of
    epochs, so that a run paused or slowed for a while (a resumed run, a machine shared for a
    time) counts as it runs alone. A run resumed on other hardware counts as trained on the
    device that trained most of its epochs (on a tie, the first), at that device's median;
    metrics written before experiments.conv recorded the device are the CPU's."""
    devices = [e.get("device", "cpu") for e in epochs]
    device = collections.Counter(devices).most_common(1)[0][0]
    seconds = [e["seconds"] for e, d in zip(epochs, devices) if d == device]
    return {"seconds": statistics.median(seconds) * len(epochs), "device": device}


def epochs_of(base: pathlib.Path) -> list:
    """A finished run's epochs, its ``.jsonl`` lines (dicts with ``network``, ``correct``,
    ...) as ``metrics_files.read_epochs`` reads them; UsageError naming the file if it is not
    experiments.conv's --metrics_out file."""
    metrics = base.with_suffix(".jsonl")
    try:
        epochs = metrics_files.read_epochs(str(metrics))
        if not all(isinstance(e.get("network"), int) for e in epochs):
            raise UsageError(f'{metrics} is not experiments.conv\'s: a line without "network"')
    except UsageError as e:
        raise UsageError(f"{e}; delete the run's files to train it again") from None
    return epochs


def result(base: pathlib.Path) -> dict:
    """A finished run's ``{"test": %, "final": % or None, "seconds": s, "device": kind}``:
    the test accuracy at its (last) best validation epoch, its final test accuracy and its
    ``training_time``."""
    epochs = [e for e in epochs_of(base) if e["network"] == 0]
    test, final = summary_of(
        summary_path(base),
        lambda r: (
            percent(r["networks"][0]["test_accuracy"]),
            percent(r["networks"][0]["final_test_accuracy"], optional=True),
        ),
    )
    return {"test": test, "final": final, **training_time(epochs)}


def ensemble_run(base: pathlib.Path) -> dict:
    """A finished ``--preset=ensemble`` run's vote, ``{"test": %, "final": None, "members":
    [training_time] per network}``."""
    test = summary_of(
        summary_path(base), lambda r: r["vote"] and percent(r["vote"]["test_accuracy"])
    )
    if not test:  # a record of one network has "vote": null
        raise UsageError(f"{summary_path(base)} holds no plurality vote")
    epochs = epochs_of(base)
    return {
        "test": test,
        "final": None,
        "members": [training_time([e for e in epochs if e["network"] == i]) for i in range(VOTERS)],
    }


def vote(seed: int, directory: pathlib.Path, extra: list):
    """The ensemble row's seed ``seed``: its ``--preset=ensemble`` run's vote if that has
    finished, else the vote of the dropout row's seeds 5k … 5k+4, else None (one of them is
    unfinished): ``{"test": %, "final": None, "members": the five networks' results}``.
    UsageError if a finished run that would count had other flags than ``extra``."""
    if finished_as_asked(ENSEMBLE, seed, directory, extra):
        return ensemble_run(directory / f"{ENSEMBLE}_s{seed}")
    if not all(finished_as_asked(MEMBER, s, directory, extra) for s in member_seeds(seed)):
        return None
    bases = [directory / f"{MEMBER}_s{s}" for s in member_seeds(seed)]
    members = [result(b) for b in bases]
    data_dir = [f for f in extra if f.startswith("--data_dir=")]
    record = directory / f"{ENSEMBLE}_s{seed}.vote.json"
    out = subprocess.run(
        command("experiments.vote", [*map(voter, bases), f"--summary_out={record}", *data_dir]),
        capture_output=True,
        text=True,
    )
    (directory / f"{ENSEMBLE}_s{seed}.vote.log").write_text(out.stdout + out.stderr)
    if out.returncode != 0:
        first, *_, last = member_seeds(seed)
        raise UsageError(
            f"the vote of {MEMBER} seeds {first}–{last} "
            f"failed: {reason(out.stderr.splitlines()) or '?'}"
        )
    accuracy = summary_of(record, lambda r: percent(r["accuracy"]))
    return {"test": accuracy, "final": None, "members": members}


def voter(base: pathlib.Path) -> str:
    """What a finished run votes with: its test predictions (``ROW_sSEED.predictions.json``,
    kept where the networks are not, as in docs/results) or else its networks (``.npz``).
    UsageError if it has neither."""
    for path in (pathlib.Path(f"{base}{PREDICTIONS}"), base.with_suffix(".npz")):
        if path.exists():
            return str(path)
    raise UsageError(
        f"{base} has finished but has neither {base.name}{PREDICTIONS} nor "
        f"{base.name}.npz to vote with"
    )


def _minutes(seconds) -> str:
    """The mean of ``seconds`` in minutes, to two significant figures under ten."""
    minutes = statistics.mean(seconds) / 60
    return f"{minutes:.2g} min" if minutes < 10 else f"{minutes:.0f} min"


def table(rows, seeds: range, directory: pathlib.Path, extra: list) -> str:
    """The Markdown table of ``rows`` over their finished runs among ``seeds``."""
    lines = [
        "| book (chapter 6) | command | test accuracy at the best validation epoch, "
        "mean ± sd | seeds | best | final test accuracy, mean | book | time per network |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        what, number, _ = ROWS[row]
        command = " ".join([presets.command(row), *map(shlex.quote, extra)])
        done = {
            s: (
                vote(s, directory, extra)
                if row == ENSEMBLE
                else finished_as_asked(row, s, directory, extra)
                and result(directory / f"{row}_s{s}")
            )
            for s in seeds
        }
        done = {s: r for s, r in done.items() if r}
        if not done:
            lines.append(f"| {what} | `{command}` | not yet run | | | | {number:.2f}% | |")
            continue
        tests = [r["test"] for r in done.values()]
        finals = [r["final"] for r in done.values() if r["final"] is not None]
        sd = f" ± {statistics.stdev(tests):.2f}" if len(tests) > 1 else ""
        networks = [m for r in done.values() for m in r.get("members", [r])]
        times = "; ".join(
            _minutes(n["seconds"] for n in networks if n["device"] == d) + f" ({d})"
            for d in sorted({n["device"] for n in networks})
        )
        lines.append(
            f"| {what} | `{command}` | {statistics.mean(tests):.2f}{sd}% | "
            f"{', '.join(map(str, done))} | {max(tests):.2f}% | "
            f"{f'{statistics.mean(finals):.2f}%' if finals else '—'} | "
            f"{number:.2f}% | {times} |"
        )
    return "\n".join(lines)
