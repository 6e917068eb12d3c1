r"""Chapter 6's table: the book's rows over several seeds, every run resumable, one table.

    python -m experiments.chapter6 --rows=conv2,relu --seeds=5      # runs what is missing
    python -m experiments.chapter6 --table_only                     # the table of what is there
    python -m experiments.chapter6 --rows=dropout --flags="--unroll=5"
    python -m experiments.chapter6 --rows=ensemble --first_seed=1 --seeds=3   # its seeds 1, 2, 3

Each (row, seed) is one ``python -m experiments.conv --preset=ROW --seed=SEED`` in a process
of its own, writing its log, metrics, networks, test predictions, figures, checkpoint and
record (``--summary_out``, which marks it finished and which the table reads) to
``--dir`` as ``ROW_sSEED.*``. A run that was interrupted resumes after its last finished
epoch when the command is given again; a finished run is not run again. The ensemble row's
seed k is the plurality vote of the networks of seeds 5k … 5k+4, either the dropout row's
runs voted by ``experiments.vote`` (``--ensemble=members``, the CPU's default: every network
also counts as a dropout seed) or one ``--preset=ensemble --seed=5k`` run,
``ensemble_sK.*``, which trains the same five networks at once (``--ensemble=together``, the
default where JAX has a GPU or TPU: vmapped, about half the time of five runs). A finished
ensemble run is used where both exist. On a CPU, ``--jobs=N`` trains N runs at once, each in
its own share of the cores.
"""

import collections
import json
import os
import pathlib
import re
import shlex
import statistics
import subprocess
import sys
import threading

from absl import app, flags

from experiments import presets
from experiments.checks import UsageError
from experiments.cli import MAX_SEED, command, core_groups, reason, run_at_once, run_guarded

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "rows",
    None,
    "Rows to run, by their experiments.conv preset names "
    "(default: all; python -m experiments.conv --list describes them).",
)
flags.DEFINE_integer("seeds", 5, "Seeds K … K+N−1 of every row (K: --first_seed).")
flags.DEFINE_integer("first_seed", 0, "The first of the --seeds seeds (K).")
flags.DEFINE_string("dir", "chapter6_runs", "Where every run's files go (and are looked for).")
flags.DEFINE_string(
    "flags", "", 'More flags for every run of experiments.conv, e.g. "--unroll=5 --data_dir=/data".'
)
flags.DEFINE_bool(
    "table_only",
    False,
    "Train nothing: print the table of the finished runs "
    "(voting the ensemble seeds whose five dropout networks have finished).",
)
flags.DEFINE_enum(
    "ensemble",
    "auto",
    ["auto", "members", "together"],
    "How to train a "
    "missing ensemble seed k: members: the dropout row's seeds 5k…5k+4, one run "
    "each, then their vote; together: one --preset=ensemble --seed=5k run "
    "(vmapped on a GPU or TPU); auto: members on a CPU, together where JAX has "
    "a GPU or TPU.",
)
flags.DEFINE_integer(
    "jobs",
    1,
    "Runs at once, on a CPU only: each is pinned to its own share "
    "of the cores (Linux). More networks per hour where one run at mini-batch "
    "10 cannot use all the cores well (2 cores: 1.1–1.2×).",
)

ROWS = presets.CHAPTER6
ENSEMBLE, MEMBER = "ensemble", "dropout"
VOTERS = ROWS[ENSEMBLE][2]["networks"]  # dropout networks per ensemble
PREDICTIONS = ".predictions.json"  # a run's test predictions, what its vote needs
SUMMARY = ".summary.json"  # a finished run's record (experiments.conv --summary_out)

OWN_FLAGS = (
    "preset",
    "seed",
    "metrics_out",
    "save",
    "predictions_out",
    "checkpoint_dir",
    "filters_png",
    "misclassified_png",
    "networks",
)
# experiments.conv's flags that say how or from where a run trains, not which networks it
# trains: a finished run counts whatever they were. (--matmul_precision is not one of them:
# a GPU's TF32 products train other networks than float32's.)
HOW_FLAGS = ("data_dir", "unroll", "convolution", "strategy", "devices")


def member_seeds(seed: int) -> list:
    """The dropout row's seeds whose vote is the ensemble row's seed ``seed``."""
    return list(range(VOTERS * seed, VOTERS * (seed + 1)))


def runs_for(rows, seeds: range, directory: pathlib.Path, together: bool, extra: list) -> list:
    """The (row, seed) runs still to train for ``rows`` × ``seeds``, in order, each once.
    An ensemble seed needs nothing if its run or all its members have finished, else its
    run (``together``) or its unfinished members' runs. UsageError, before anything trains,
    if a finished run that would count had other flags than ``extra``."""
    runs = []
    for row in rows:
        needed = [(row, s) for s in seeds]
        if row == ENSEMBLE:
            needed = []
            for s in seeds:
                if finished_as_asked(ENSEMBLE, s, directory, extra):
                    continue
                members = [(MEMBER, m) for m in member_seeds(s)]
                if not all([finished_as_asked(*run, directory, extra) for run in members]):
                    needed += [(ENSEMBLE, s)] if together else members
        runs += [
            run
            for run in needed
            if run not in runs and not finished_as_asked(*run, directory, extra)
        ]
    return runs


def preset_seed(row: str, seed: int) -> int:
    """experiments.conv's --seed for the row's seed ``seed``: the ensemble row's seed k is
    --seed=5k, whose networks are the dropout row's seeds 5k … 5k+4."""
    return VOTERS * seed if row == ENSEMBLE else seed


def conv_flags(row: str, seed: int, base: pathlib.Path, extra: list) -> list:
    """experiments.conv's flags for one run (the row's seed ``seed``) whose files are
    ``base``.*."""
    layers = [f.split("=", 1)[1] for f in extra if f.startswith("--layers=")]
    first_conv = (layers[-1] if layers else ROWS[row][2]["layers"]).startswith("conv")
    figures = [f"--filters_png={base}.filters.png"] if first_conv else []
    return [
        f"--preset={row}",
        f"--seed={preset_seed(row, seed)}",
        f"--metrics_out={base}.jsonl",
        f"--save={base}.npz",
        f"--predictions_out={base}{PREDICTIONS}",
        f"--summary_out={base}{SUMMARY}",
        f"--checkpoint_dir={base}.ckpt",
        *figures,
        f"--misclassified_png={base}.wrong.png",
        *extra,
    ]


def finished(base: pathlib.Path) -> bool:
    """Whether the run ``base``.* trained to its end: experiments.conv wrote its record
    (``--summary_out``, the last file a finished run writes) and its metrics."""
    return base.with_suffix(".jsonl").exists() and summary_path(base).exists()


def summary_path(base: pathlib.Path) -> pathlib.Path:
    return pathlib.Path(f"{base}{SUMMARY}")


def summary_of(path: pathlib.Path, needs: str) -> dict:
    """A record written by ``--summary_out`` (experiments.conv's or experiments.vote's),
    which must hold ``needs``; UsageError naming the file otherwise."""
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or needs not in record:
            raise ValueError(f'no "{needs}"')
    except (OSError, ValueError) as e:
        raise UsageError(
            f"{path} is not a run's --summary_out record ({e}); delete the run's files to "
            "train it again"
        ) from None
    return record


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


_STDOUT = threading.Lock()


def say(line: str) -> None:
    """Prints ``line`` whole: print() writes the text and its newline apart, so lines of
    runs echoed by different threads could run into each other."""
    with _STDOUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def train(
    row: str, seed: int, base: pathlib.Path, extra: list, cores=None, live=None, label=""
) -> None:
    """Runs (or resumes) one run unless it has finished, on the CPU cores ``cores`` where
    given, echoing its epochs; its process is in the set ``live`` (if given) while it runs.
    ``label`` (e.g. "run 2/5") is said first. UsageError if it fails, or if it finished with
    other flags."""
    if finished_as_asked(row, seed, base.parent, extra):
        return
    if label:
        say(f"{label[0].upper()}{label[1:]}: {row} seed {seed}")
    base.with_suffix(".flags").write_text(asked(row, seed, extra) + "\n")
    where = f" (cores {','.join(map(str, cores))})" if cores is not None else ""
    say(
        f"[{row} seed {seed}]{where} python -m experiments.conv "
        f"{shlex.join(conv_flags(row, seed, base, extra))}"
    )
    with open(base.with_suffix(".log"), "a") as log:
        process = subprocess.Popen(
            command("experiments.conv", conv_flags(row, seed, base, extra), cores),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if live is not None:
            live.add(process)
        said = []
        for line in process.stdout:
            log.write(line)
            log.flush()
            if re.match(r"(Epoch|Network \d+, epoch|Best|Resuming|Trained)", line):
                say(f"[{row} seed {seed}] {line.rstrip()}")
            said.append(line)
        code = process.wait()
        if live is not None:
            live.discard(process)
        if code != 0:
            raise UsageError(
                f"{row} seed {seed} failed ({reason(said)}); its log is {base.with_suffix('.log')}"
            )


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
    ...); UsageError naming the file if it is not such a file."""
    metrics = base.with_suffix(".jsonl")
    try:
        epochs = [json.loads(line) for line in metrics.read_text().splitlines()]
        if not epochs or not all(isinstance(e.get("network"), int) for e in epochs):
            raise ValueError("no epochs" if not epochs else 'a line without "network"')
    except (ValueError, AttributeError) as e:
        raise UsageError(
            f"{metrics} is not experiments.conv's --metrics_out file ({e}); "
            "delete the run's files to train it again"
        ) from None
    return epochs


def result(base: pathlib.Path) -> dict:
    """A finished run's ``{"test": %, "final": % or None, "seconds": s, "device": kind}``:
    the test accuracy at its (last) best validation epoch, its final test accuracy and its
    ``training_time``."""
    epochs = [e for e in epochs_of(base) if e["network"] == 0]
    network = summary_of(summary_path(base), "networks")["networks"][0]
    return {
        "test": network["test_accuracy"],
        "final": network["final_test_accuracy"],
        **training_time(epochs),
    }


def ensemble_run(base: pathlib.Path) -> dict:
    """A finished ``--preset=ensemble`` run's vote, ``{"test": %, "final": None, "members":
    [training_time] per network}``."""
    vote = summary_of(summary_path(base), "vote")["vote"]
    epochs = epochs_of(base)
    if not vote:
        raise UsageError(f"{summary_path(base)} holds no plurality vote")
    return {
        "test": vote["test_accuracy"],
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
    return {"test": summary_of(record, "accuracy")["accuracy"], "final": None, "members": members}


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
        command = shlex.join(["python", "-m", "experiments.conv", f"--preset={row}", *extra])
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


def run() -> None:
    rows = FLAGS.rows or list(ROWS)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise UsageError(f"--rows: unknown {', '.join(unknown)} (one of {', '.join(ROWS)})")
    if FLAGS.seeds <= 0:
        raise UsageError(f"--seeds must be positive, got {FLAGS.seeds}")
    if FLAGS.first_seed < 0:
        raise UsageError(f"--first_seed must be 0 or more, got {FLAGS.first_seed}")
    seeds = range(FLAGS.first_seed, FLAGS.first_seed + FLAGS.seeds)
    last = max(preset_seed(row, seeds[-1]) + (VOTERS - 1) * (row == ENSEMBLE) for row in rows)
    if last > MAX_SEED:
        raise UsageError(
            f"--first_seed={FLAGS.first_seed} --seeds={FLAGS.seeds}: "
            f"experiments.conv's seeds would go past 2^31 − 1"
        )
    try:
        extra = shlex.split(FLAGS.flags)
    except ValueError as e:
        raise UsageError(f"--flags={FLAGS.flags}: {e}") from None
    loose = [f for f in extra if not f.startswith("--")]
    if loose:  # "--data_dir /data" would reach conv, but not vote or the stamps
        raise UsageError(f"--flags: {loose[0]!r} is not a flag; write each flag as --name=value")
    own = [f for f in extra if f.lstrip("-").split("=")[0] in OWN_FLAGS]
    if own:
        raise UsageError(f"--flags: {', '.join(own)} is set by experiments.chapter6 itself")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if FLAGS.jobs < 1:
        raise UsageError(f"--jobs must be positive, got {FLAGS.jobs}")
    usable = len(cores) if cores else os.cpu_count() or 1
    if FLAGS.jobs > usable:
        raise UsageError(f"--jobs={FLAGS.jobs}: this process may use {usable} CPU cores")
    directory = pathlib.Path(FLAGS.dir)
    if FLAGS.table_only and not directory.is_dir():
        raise UsageError(f"--dir={FLAGS.dir}: no such directory, so no runs to tabulate")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--dir={FLAGS.dir}: {e.strerror}") from None
    if not FLAGS.table_only:
        backend = (
            backend_name()
            if FLAGS.jobs > 1 or (FLAGS.ensemble == "auto" and ENSEMBLE in rows)
            else "cpu"
        )
        if FLAGS.jobs > 1 and backend != "cpu":
            raise UsageError(
                f"--jobs={FLAGS.jobs}: the runs would share one {backend}; "
                f"--jobs is for CPUs (a GPU trains an ensemble's networks at "
                f"once: --ensemble=together)"
            )
        together = FLAGS.ensemble == "together" or (FLAGS.ensemble == "auto" and backend != "cpu")
        train_all(
            runs_for(rows, seeds, directory, together, extra), directory, extra, FLAGS.jobs, cores
        )
    print(table(rows, seeds, directory, extra))


def backend_name() -> str:
    """``jax.default_backend()`` as a fresh process sees it: asking here would make this
    process hold on to the GPU (and most of its memory) while the runs train."""
    out = subprocess.run(
        [sys.executable, "-c", "import jax; print(jax.default_backend())"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0 or not out.stdout.split():
        said = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise UsageError(f"JAX failed to start: {said}")
    return out.stdout.split()[-1]


def train_all(runs: list, directory: pathlib.Path, extra: list, jobs: int, cores) -> None:
    """Trains ``runs`` ((row, seed) pairs), ``jobs`` at a time, each pinned to its own group
    of ``cores`` (unpinned where the system cannot pin). After a failure no new run starts;
    the runs under way finish, then the first failure is raised. Ctrl-C stops them all
    (each resumes from its last epoch)."""
    jobs = min(jobs, len(runs))
    labels = {run: f"run {i + 1}/{len(runs)}" for i, run in enumerate(runs)}
    if jobs <= 1:
        for row, seed in runs:
            train(row, seed, directory / f"{row}_s{seed}", extra, label=labels[row, seed])
        return
    live = set()

    def work(run, group):
        row, seed = run
        try:
            train(row, seed, directory / f"{row}_s{seed}", extra, group, live, labels[run])
        except OSError as e:
            raise UsageError(f"{row} seed {seed}: {e}") from None

    def failed(e):
        say(f"Stopping: {e}. No new run starts; the runs under way finish first.")

    def cancel():
        for process in list(live):
            process.terminate()

    groups = core_groups(jobs, cores) if cores else [None] * jobs
    run_at_once(runs, groups, work, cancel, failed)


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main)
