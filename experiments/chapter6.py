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

import os
import pathlib
import re
import shlex
import subprocess
import sys
import threading

from absl import app, flags

from experiments.chapter6_runs import (
    ENSEMBLE,
    MEMBER,
    PREDICTIONS,
    ROWS,
    SUMMARY,
    VOTERS,
    asked,
    finished_as_asked,
    member_seeds,
    preset_seed,
    table,
)
from experiments.checks import UsageError, check_directory, refuse_given
from experiments.cli import MAX_SEED, parse_flags, run_guarded
from experiments.devices import backend_name
from experiments.flag_lists import parse_names
from experiments.jobs import command, core_groups, reason, run_at_once

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
    "10 cannot use all the cores well (docs/chapter6.md).",
)

# experiments.conv's flags that experiments.chapter6 sets itself, for every run.
OWN_FLAGS = (
    "preset",
    "seed",
    "metrics_out",
    "save",
    "predictions_out",
    "summary_out",
    "checkpoint_dir",
    "filters_png",
    "misclassified_png",
    "networks",
)


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


def conv_args(row: str, seed: int, base: pathlib.Path, extra: list) -> list:
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
        f"{shlex.join(conv_args(row, seed, base, extra))}"
    )
    with open(base.with_suffix(".log"), "a") as log:
        process = subprocess.Popen(
            command("experiments.conv", conv_args(row, seed, base, extra), cores),
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


def run() -> None:
    rows = list(ROWS) if FLAGS.rows is None else parse_names("rows", FLAGS.rows, ROWS)
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
    if FLAGS.table_only:
        refuse_given(["jobs", "ensemble"], "is for training: leave it out with --table_only")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    if FLAGS.jobs < 1:
        raise UsageError(f"--jobs must be positive, got {FLAGS.jobs}")
    usable = len(cores) if cores else os.cpu_count() or 1
    if FLAGS.jobs > usable:
        raise UsageError(f"--jobs={FLAGS.jobs}: this process may use {usable} CPU cores")
    directory = pathlib.Path(FLAGS.dir)
    if FLAGS.table_only and not directory.is_dir():
        raise UsageError(f"--dir={FLAGS.dir}: no such directory, so no runs to tabulate")
    if not FLAGS.table_only:
        check_directory("dir", FLAGS.dir)  # a file, or read-only: refused before any run
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"--dir={FLAGS.dir}: {e.strerror}") from None
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
    app.run(main, flags_parser=parse_flags)
