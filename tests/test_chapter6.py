"""`python -m experiments.chapter6`: rows over seeds with tiny settings, the ensemble row as
the vote of dropout seeds (equal to `--preset=ensemble`, also when they trained two at a
time, each on its own core), finished runs not rerun, bad input as one-line errors."""

import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time

import pytest

from experiments.jobs import command, core_groups, reason, run_at_once
from tests.helpers import assert_failed_with_one_error, run_module
from tests.test_conv_cli import run_conv

PINS = hasattr(os, "sched_setaffinity")
CORES = sorted(os.sched_getaffinity(0)) if PINS else list(range(os.cpu_count() or 1))
JOBS = min(2, len(CORES))  # CI's machine has 2 cores
TINY = "--train_size=300 --epochs=2 --layers=conv:2:5x5,fc:10,softmax --expand=none"


def run_table(*flags):
    return run_module("experiments.chapter6", *flags, timeout=600)


def row(table: str, command: str) -> list:
    """The cells of the table's row whose command is ``command``."""
    line = next(l for l in table.splitlines() if f"`{command} {TINY}`" in l)
    return [cell.strip() for cell in line.strip("|").split("|")]


def write_run(
    base,
    seconds=(60,),
    devices=None,
    flags=None,
    test_correct=98,
    networks=1,
    final=98.0,
    vote=None,
    finished=True,
):
    """The files that a run ``base``.* leaves: its networks' epochs, each ``seconds`` long
    on its ``devices`` (none recorded: None), a log, if given its ``.flags`` and, if it
    ``finished``, its record (experiments.conv's --summary_out: each network's test
    accuracy at its best epoch, ``test_correct`` of 100, its ``final`` one, the ``vote``)."""
    records = [
        {
            "network": i,
            "epoch": e,
            "correct": 99,
            "total": 100,
            "seconds": s,
            "test_correct": test_correct,
            "test_total": 100,
            **({"device": devices[e]} if devices else {}),
        }
        for e, s in enumerate(seconds)
        for i in range(networks)
    ]
    base.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    base.with_suffix(".log").write_text("nnjax: ...\nTrained in 1 s.\n" if finished else "")
    if finished:
        record = {
            "networks": [
                {"seed": i, "test_accuracy": float(test_correct), "final_test_accuracy": final}
                for i in range(networks)
            ],
            "vote": None if vote is None else {"test_accuracy": vote, "wrong": 1},
        }
        pathlib.Path(f"{base}.summary.json").write_text(json.dumps(record))
    if flags is not None:
        base.with_suffix(".flags").write_text(flags + "\n")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    where = tmp_path_factory.mktemp("ch6")
    out = run_table(
        "--rows=relu,ensemble", "--seeds=1", f"--dir={where}", f"--flags={TINY}", f"--jobs={JOBS}"
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return where, out.stdout


@pytest.mark.skipif(JOBS < 2 or not PINS, reason="needs 2 cores and os.sched_setaffinity")
def test_jobs_run_at_once_on_their_own_cores(runs):
    """--jobs=2: the first two runs start together, one on each half of the cores, and the
    next takes the cores of one that has finished."""
    _, stdout = runs
    starts = re.findall(r"^\[(\w+) seed (\d)\] \(cores ([\d,]+)\) python", stdout, re.M)
    assert len(starts) == 6
    groups = [",".join(map(str, g)) for g in core_groups(JOBS, CORES)]
    assert sorted(cores for *_, cores in starts[:2]) == sorted(groups)
    assert {cores for *_, cores in starts} == set(groups)
    first_end = min(stdout.index("[relu seed 0] Trained"), stdout.index("[dropout seed 0] Trained"))
    assert stdout.index("[relu seed 0] (cores") < first_end
    assert stdout.index("[dropout seed 0] (cores") < first_end


def test_after_a_failure_no_run_starts_and_those_under_way_finish(tmp_path):
    """--jobs=2, the first run failing a few seconds in (its checkpoint directory is a
    file): the error is the one line, said at once; no later run starts, and the run that
    had started beside it trains to its end. With one job, nothing after the failure starts."""
    (tmp_path / "relu_s0.ckpt").write_text("not a directory")
    out = run_table(
        "--rows=relu,conv1,conv2",
        "--seeds=1",
        f"--dir={tmp_path}",
        f"--flags={TINY}",
        f"--jobs={JOBS}",
    )
    assert_failed_with_one_error(out, "relu seed 0 failed")
    assert "--checkpoint_dir" in out.stderr
    assert not (tmp_path / "conv2_s0.log").exists()
    if JOBS == 2:
        assert "Stopping: relu seed 0 failed" in out.stdout
        assert "\nTrained in " in (tmp_path / "conv1_s0.log").read_text()
    else:
        assert not (tmp_path / "conv1_s0.log").exists()


def test_a_run_that_fails_says_why_in_the_one_line(tmp_path):
    """A bad --flags value fails the run at once, in experiments.conv's flag parsing: the
    error quotes the line that says why, not the run's last line (absl's help hint)."""
    out = run_table("--rows=relu", "--seeds=1", f"--dir={tmp_path}", "--flags=--eta=abc")
    assert_failed_with_one_error(
        out, "relu seed 0 failed (error: flag --eta=abc: could not convert"
    )


@pytest.mark.parametrize(
    "lines, why",
    [
        (["nnjax: ...\n", "Epoch 0: ...\n", "error: --x is bad\n", "\n"], "error: --x is bad"),
        (
            [
                "FATAL Flags parsing error: flag --eta=abc: ...\n",
                "Pass --helpshort or --helpfull to see help on flags.\n",
            ],
            "FATAL Flags parsing error: flag --eta=abc: ...",
        ),
        (
            [
                "Traceback (most recent call last):\n",
                '  File "x.py"\n',
                "jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: out of memory\n",
            ],
            "jax.errors.JaxRuntimeError: RESOURCE_EXHAUSTED: out of memory",
        ),
        (["Epoch 0: ...\n", "interrupted\n"], "interrupted"),
        ([], ""),
    ],
)
def test_reason_is_the_line_that_says_why(lines, why):
    assert reason(lines) == why


def test_a_file_that_cannot_be_written_is_a_one_line_error(tmp_path):
    """One job at a time (the default): the run's own files are written here, in this
    process; a failure to write one names it."""
    (tmp_path / "relu_s0.flags").mkdir()
    out = run_table("--rows=relu", "--seeds=1", f"--dir={tmp_path}", f"--flags={TINY}")
    assert_failed_with_one_error(out, "relu_s0.flags")


@pytest.mark.parametrize(
    "text, why",
    [
        ('{"epoch": 0}\n', 'a line without "network"'),  # a metrics file, but not conv's
        ("Epoch 0: 9000 / 10000\n", "line 1 is not JSON"),
        ("", "has no epochs"),
    ],
)
def test_a_metrics_file_that_is_not_one_is_a_one_line_error(tmp_path, text, why):
    base = tmp_path / "relu_s0"
    base.with_suffix(".jsonl").write_text(text)
    pathlib.Path(f"{base}.summary.json").write_text('{"networks": []}')
    out = run_table("--table_only", "--rows=relu", "--seeds=1", f"--dir={tmp_path}")
    assert_failed_with_one_error(out, "relu_s0.jsonl")
    assert why in out.stderr and "delete the run's files" in out.stderr


@pytest.mark.skipif(not PINS, reason="needs os.sched_setaffinity")
def test_command_runs_a_module_pinned_to_cores(tmp_path):
    (tmp_path / "where.py").write_text(
        "import os, sys; print(sorted(os.sched_getaffinity(0)), sys.argv[1:], __name__)"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for cores in ([CORES[-1]], CORES, None):
        out = subprocess.run(
            command("where", ["--a=1", "b"], cores),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.split("] [", 1) == [
            f"{CORES if cores is None else cores}"[:-1],
            "'--a=1', 'b'] __main__\n",
        ], out.stderr


def test_run_at_once_runs_tasks_together_each_with_a_group_of_its_own():
    both_running = threading.Barrier(2, timeout=30)  # broken unless two calls overlap
    held, calls, lock = set(), [], threading.Lock()

    def work(task, group):
        with lock:
            assert group not in held
            held.add(group)
            calls.append((task, group))
        if task < 2:
            both_running.wait()
        with lock:
            held.remove(group)

    run_at_once(list(range(5)), ["a", "b"], work)
    assert sorted(t for t, _ in calls) == [0, 1, 2, 3, 4]
    assert {g for t, g in calls if t < 2} == {"a", "b"}


def test_run_at_once_after_a_failure_starts_nothing_and_lets_the_others_finish():
    """Task 0 fails while task 1 runs; task 1 is told nothing and finishes; tasks 2 and 3
    never start; ``failed`` hears of it at once, and the failure is raised at the end."""
    one_started, told = threading.Event(), threading.Event()
    done, heard = [], []

    def work(task, group):
        if task == 0:
            assert one_started.wait(30)
            raise ValueError("task 0 broke")
        one_started.set()
        if task == 1:
            assert told.wait(30)  # still running when the failure is reported
        done.append(task)

    def failed(e):
        heard.append(str(e))
        told.set()

    with pytest.raises(ValueError, match="task 0 broke"):
        run_at_once([0, 1, 2, 3], ["a", "b"], work, failed=failed)
    assert done == [1] and heard == ["task 0 broke"]


def test_run_at_once_on_ctrl_c_cancels_the_calls_under_way():
    """Ctrl-C's signal, delivered to a worker thread (as the kernel may), stops everything at
    once: the calls under way are cancelled and no other starts."""
    cancelled, started = threading.Event(), []
    begun = time.monotonic()

    def work(task, group):
        started.append(task)
        if task == 0:
            time.sleep(0.5)  # the main thread is waiting by now
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        assert cancelled.wait(30)
        raise RuntimeError("cancelled")  # as a terminated run does

    heard = []
    # Python's own Ctrl-C handler, even where pytest was started with SIGINT ignored (as
    # a shell starts its background jobs); without it the signal does nothing here
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_at_once([0, 1, 2, 3], ["a", "b"], work, cancel=cancelled.set, failed=heard.append)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - begun < 10
    assert cancelled.is_set() and 2 not in started and 3 not in started and not heard


def test_core_groups_split_the_cores_evenly():
    assert core_groups(2, [0, 1]) == [[0], [1]]
    assert core_groups(2, [0, 1, 2, 3, 4]) == [[0, 1], [2, 3, 4]]
    assert core_groups(3, list(range(8))) == [[0, 1], [2, 3, 4], [5, 6, 7]]
    assert core_groups(1, [4, 6]) == [[4, 6]]


def test_rows_run_and_tabulate(runs):
    where, stdout = runs
    for name in ["relu_s0", *(f"dropout_s{s}" for s in range(5))]:
        for suffix in (
            ".log",
            ".jsonl",
            ".npz",
            ".predictions.json",
            ".wrong.png",
            ".filters.png",
            ".flags",
        ):
            assert (where / (name + suffix)).exists(), name + suffix
    assert "[dropout seed 4] Epoch 1: validation accuracy" in stdout
    # each run is announced with its place among them, in the order they start
    started = re.findall(r"^Run (\d+)/(\d+): (\w+) seed (\d)$", stdout, re.M)
    assert sorted(int(i) for i, _, _, _ in started) == list(range(1, len(started) + 1))
    assert {n for _, n, _, _ in started} == {str(len(started))} and len(started) == 6
    cells = row(stdout, "python -m experiments.conv --preset=relu")
    assert cells[3] == "0" and cells[6] == "99.23%"
    log = (where / "relu_s0.log").read_text()
    best = re.search(
        r"the corresponding test accuracy is ([\d.]+)%\. Final test accuracy "
        r"([\d.]+)%",
        log,
    )
    assert cells[2] == f"{best.group(1)}%" and cells[5] == f"{best.group(2)}%"
    epochs = [json.loads(l) for l in (where / "relu_s0.jsonl").read_text().splitlines()]
    assert {e["device"] for e in epochs} == {"cpu"}
    assert cells[7] == f"{2 * statistics.median(e['seconds'] for e in epochs) / 60:.2g} min (cpu)"


def test_time_column_is_per_network_and_per_device(tmp_path):
    """Runs trained on different hardware are timed apart, the ensemble row by its members;
    metrics from before the device was recorded count as the CPU's. A run's time is its
    median epoch's times its epochs: a paused epoch does not count. A run resumed on other
    hardware counts as trained on the device of most of its epochs, at its median there."""
    h200 = "NVIDIA H200"
    for seed, (devices, seconds) in enumerate(
        [
            (None, [200, 9000, 200]),
            ([h200] * 3, [10, 10, 10]),
            ([h200] * 3, [30, 30, 30]),
            (["cpu", h200, h200], [9000, 30, 30]),
        ]
    ):
        write_run(tmp_path / f"relu_s{seed}", seconds, devices)
    out = run_table("--table_only", "--rows=relu", "--seeds=4", f"--dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if "--preset=relu" in l)
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[2:4] == ["98.00 ± 0.00%", "0, 1, 2, 3"]
    assert cells[7] == "1.2 min (NVIDIA H200); 10 min (cpu)"  # (30 + 90 + 90) / 3 s


def test_ensemble_row_is_the_ensemble_presets_vote(runs):
    """Seed 0 of the ensemble row (the vote of dropout seeds 0–4) equals what
    `--preset=ensemble --seed=0` reports, which trains those five networks in one process."""
    _, stdout = runs
    cells = row(stdout, "python -m experiments.conv --preset=ensemble")
    together = run_conv("--preset=ensemble", "--seed=0", *TINY.split())
    assert together.returncode == 0, together.stderr
    vote = re.search(r"Their plurality vote: ([\d.]+)%", together.stdout).group(1)
    assert cells[2] == f"{vote}%" and cells[6] == "99.67%"
    assert f"Their plurality vote: {vote}%" in (runs[0] / "ensemble_s0.vote.log").read_text()
    where = runs[0]
    seconds = [
        2
        * statistics.median(
            json.loads(l)["seconds"]
            for l in (where / f"dropout_s{s}.jsonl").read_text().splitlines()
        )
        for s in range(5)
    ]
    assert cells[7] == f"{sum(seconds) / 5 / 60:.2g} min (cpu)"  # per network


def test_ensemble_together_is_one_ensemble_run_per_seed(runs, tmp_path):
    """--ensemble=together trains seed k as one `--preset=ensemble --seed=5k` run (no
    dropout runs); its seed 0 is the members' vote above. A finished ensemble run is not
    run again, and is what the table shows."""
    out = run_table(
        "--rows=ensemble",
        "--seeds=2",
        "--ensemble=together",
        f"--dir={tmp_path}",
        f"--flags={TINY}",
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert not list(tmp_path.glob("dropout_*"))
    assert (tmp_path / "ensemble_s1.flags").read_text().split()[:2] == [
        "--preset=ensemble",
        "--seed=5",
    ]
    cells = row(out.stdout, "python -m experiments.conv --preset=ensemble")
    assert cells[3] == "0, 1"
    votes = [
        float(
            re.search(
                r"Their plurality vote: ([\d.]+)%", (tmp_path / f"ensemble_s{s}.log").read_text()
            ).group(1)
        )
        for s in (0, 1)
    ]
    assert votes[0] == float(row(runs[1], "python -m experiments.conv --preset=ensemble")[2][:-1])
    assert cells[2] == f"{(votes[0] + votes[1]) / 2:.2f} ± {statistics.stdev(votes):.2f}%"
    again = run_table("--rows=ensemble", "--seeds=2", f"--dir={tmp_path}", f"--flags={TINY}")
    assert again.returncode == 0 and "Epoch" not in again.stdout, again.stderr
    assert row(again.stdout, "python -m experiments.conv --preset=ensemble") == cells


def test_kept_records_alone_make_the_same_table(runs, tmp_path):
    """A run's log, metrics, flags, record and test predictions (what docs/results keeps: no
    networks, no checkpoint, no figures) make the same table as the whole runs; a finished
    member run with nothing to vote with is a one-line error."""
    where, stdout = runs
    kept = (".log", ".jsonl", ".flags", ".predictions.json", ".summary.json")
    for path in where.iterdir():
        if path.name.endswith(kept) and not path.name.endswith(".vote.log"):
            shutil.copy(path, tmp_path / path.name)
    assert len(list(tmp_path.glob("dropout_s*.predictions.json"))) == 5
    out = run_table(
        "--table_only", "--rows=relu,ensemble", "--seeds=1", f"--dir={tmp_path}", f"--flags={TINY}"
    )
    assert out.returncode == 0, out.stderr
    for preset in ("relu", "ensemble"):
        command = f"python -m experiments.conv --preset={preset}"
        assert row(out.stdout, command) == row(stdout, command)
    assert (
        "dropout_s0.predictions.json: test accuracy"
        in (tmp_path / "ensemble_s0.vote.log").read_text()
    )
    # a run from before --predictions_out votes with its networks
    (tmp_path / "dropout_s3.predictions.json").unlink()
    shutil.copy(where / "dropout_s3.npz", tmp_path / "dropout_s3.npz")
    out = run_table(
        "--table_only", "--rows=ensemble", "--seeds=1", f"--dir={tmp_path}", f"--flags={TINY}"
    )
    assert out.returncode == 0, out.stderr
    command = "python -m experiments.conv --preset=ensemble"
    assert row(out.stdout, command) == row(stdout, command)
    assert "dropout_s3.npz: test accuracy" in (tmp_path / "ensemble_s0.vote.log").read_text()
    (tmp_path / "dropout_s3.npz").unlink()
    out = run_table(
        "--table_only", "--rows=ensemble", "--seeds=1", f"--dir={tmp_path}", f"--flags={TINY}"
    )
    assert_failed_with_one_error(out, f"{tmp_path / 'dropout_s3'} has finished but has neither")


def test_finished_runs_are_not_rerun_and_other_flags_are_refused(runs):
    where, stdout = runs
    again = run_table("--rows=relu", "--seeds=1", f"--dir={where}", f"--flags={TINY}")
    assert again.returncode == 0, again.stderr
    assert "Epoch" not in again.stdout
    assert row(again.stdout, "python -m experiments.conv --preset=relu") == row(
        stdout, "python -m experiments.conv --preset=relu"
    )
    other = run_table(
        "--rows=relu",
        "--seeds=1",
        f"--dir={where}",
        f"--flags={TINY.replace('--epochs=2', '--epochs=3')}",
    )
    assert other.returncode != 0 and "Traceback" not in other.stderr
    assert "relu seed 0 finished with other flags" in other.stderr


def test_first_seed_picks_the_seeds_to_run_and_tabulate(tmp_path):
    """--first_seed=K --seeds=N: seeds K … K+N−1, in training and in the table."""
    for seed in (1, 2):
        write_run(tmp_path / f"relu_s{seed}", test_correct=97 + seed)
    out = run_table(
        "--rows=relu", "--first_seed=2", "--seeds=2", f"--dir={tmp_path}", f"--flags={TINY}"
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert re.findall(r"^\[relu seed (\d)\] python", out.stdout, re.M) == ["3"]
    assert not (tmp_path / "relu_s0.jsonl").exists()
    cells = row(out.stdout, "python -m experiments.conv --preset=relu")
    assert cells[3] == "2, 3"
    table = run_table(
        "--table_only", "--rows=relu", "--first_seed=1", "--seeds=2", f"--dir={tmp_path}"
    )
    line = next(l for l in table.stdout.splitlines() if "--preset=relu" in l)
    assert "| 98.50 ± 0.71% | 1, 2 |" in line, line


def test_runs_that_count_must_have_been_asked_the_same_networks(tmp_path):
    """Every finished run that a row would count is checked against --flags, also the
    ensemble row's members and in --table_only: other flags are a one-line error. Flags
    that say only how or from where a run trains (--data_dir, --unroll, ...), and their
    order, do not matter."""
    for seed in range(5):
        write_run(
            tmp_path / f"dropout_s{seed}",
            flags=f"--preset=dropout --seed={seed} --epochs=1 --train_size=100",
        )
    out = run_table("--table_only", "--rows=ensemble", f"--dir={tmp_path}")
    assert_failed_with_one_error(out, "dropout seed 0 finished with other flags")
    out = run_table("--rows=ensemble", f"--dir={tmp_path}", "--ensemble=members")
    assert_failed_with_one_error(out, "dropout seed 0 finished with other flags")
    assert "Epoch" not in out.stdout
    write_run(
        tmp_path / "ensemble_s0",
        vote=99.0,
        flags="--preset=ensemble --seed=0 --epochs=1",
        networks=5,
    )
    out = run_table("--table_only", "--rows=ensemble", f"--dir={tmp_path}", "--flags=--epochs=2")
    assert_failed_with_one_error(out, "ensemble seed 0 finished with other flags")
    out = run_table(
        "--table_only", "--rows=ensemble", "--seeds=1", f"--dir={tmp_path}", "--flags=--epochs=1"
    )
    assert out.returncode == 0 and "| 99.00% | 0 |" in out.stdout, out.stderr
    write_run(
        tmp_path / "relu_s0",
        flags="--preset=relu --seed=0 --data_dir=/elsewhere --epochs=1 --unroll=5",
    )
    out = run_table(
        "--table_only",
        "--rows=relu",
        "--seeds=1",
        f"--dir={tmp_path}",
        "--flags=--convolution=xla --epochs=1",
    )
    assert out.returncode == 0, out.stderr
    assert "| 98.00% | 0 |" in out.stdout
    out = run_table(
        "--table_only", "--rows=relu", "--seeds=1", f"--dir={tmp_path}", "--flags=--epochs=2"
    )
    assert_failed_with_one_error(out, "relu seed 0 finished with other flags")


def test_a_run_counts_once_it_wrote_its_record(tmp_path):
    """experiments.conv's --summary_out record is the last file a finished run writes: a run
    without it (stopped, or started again and not finished yet) is not counted, whatever
    its metrics hold; the table reads a finished run's final accuracy from its record."""
    write_run(tmp_path / "relu_s0", final=97.0)
    write_run(tmp_path / "relu_s1", final=99.0, finished=False)
    out = run_table("--table_only", "--rows=relu", "--seeds=2", f"--dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if "--preset=relu" in l)
    cells = [cell.strip() for cell in line.strip("|").split("|")]
    assert cells[3] == "0" and cells[5] == "97.00%", line
    pathlib.Path(f"{tmp_path / 'relu_s0'}.summary.json").write_text("{")
    out = run_table("--table_only", "--rows=relu", "--seeds=1", f"--dir={tmp_path}")
    assert_failed_with_one_error(out, "relu_s0.summary.json")


@pytest.mark.parametrize(
    "record, why",
    [
        ({"networks": "x"}, "string indices"),
        ({"networks": []}, "list index out of range"),
        ({"networks": [{"test_accuracy": 99.0}]}, 'no "final_test_accuracy"'),
        ({"networks": [{"test_accuracy": None, "final_test_accuracy": 99.0}]}, "accuracy of None"),
    ],
    ids=["text", "empty", "missing", "null"],
)
def test_a_record_that_is_not_a_runs_is_a_one_line_error(tmp_path, record, why):
    """A finished run's --summary_out record edited or written by something else: the one
    line names it and what is wrong, never a traceback from the table's arithmetic."""
    write_run(tmp_path / "relu_s0")
    pathlib.Path(f"{tmp_path / 'relu_s0'}.summary.json").write_text(json.dumps(record))
    out = run_table("--table_only", "--rows=relu", "--seeds=1", f"--dir={tmp_path}")
    assert_failed_with_one_error(out, "relu_s0.summary.json")
    assert why in out.stderr and "delete the run's files" in out.stderr


def test_table_only_shows_rows_not_yet_run(tmp_path):
    out = run_table("--table_only", "--rows=conv1,dropout", f"--dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("not yet run") == 2 and "Epoch" not in out.stdout
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--rows=conv9"], "--rows"),
        (["--seeds=0"], "--seeds"),
        (["--first_seed=-1"], "--first_seed"),
        (
            ["--rows=ensemble", "--first_seed=429496729", "--seeds=1"],
            "--first_seed",
        ),  # 5k + 4 > 2^31 − 1
        (["--rows=relu", "--first_seed=2147483647", "--seeds=2"], "--first_seed"),
        (["--flags=--seed=3"], "--flags"),
        (["--flags=--epochs='2"], "--flags"),
        (["--flags=--data_dir /data"], "--flags"),
        (["--dir=/proc/nope/runs"], "--dir"),
        (["--dir=README.md"], "--dir=README.md is not a directory"),
        (["--ensemble=both"], "--ensemble"),
        (["--jobs=0"], "--jobs"),
        ([f"--jobs={len(CORES) + 1}"], "--jobs"),
    ],
)
def test_bad_input_is_a_one_line_error(flags, names):
    out = run_table(*flags)
    assert_failed_with_one_error(out, names)
