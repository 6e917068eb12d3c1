"""experiments.reproduce: the book's rows as commands, and one real row."""

import json
import pathlib
import statistics

import pytest

from experiments import reproduce
from tests.helpers import run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(*flags):
    return run_module("experiments.reproduce", *flags)


def test_rows_print_as_runner_commands():
    assert (
        reproduce.command(reproduce.ROWS["ch1_30"][2]) == "python -m experiments.mnist --hidden=30"
    )
    assert reproduce.command(reproduce.ROWS["ch3_l2_100_60"][2]) == (
        "python -m experiments.mnist --hidden=100 --eval_split=validation "
        "--cost=cross_entropy --eta=0.1 --l2=5 --epochs=60"
    )
    listing = run("--list")
    assert listing.returncode == 0
    assert all(name in listing.stdout for name in reproduce.ROWS)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--rows=ch9"], "ch9"),
        (["--rows="], "--rows needs at least one of ch1_30"),  # not every row
        (["--rows=ch1_30,ch1_30"], "names ch1_30 twice"),
        (["--seeds=0"], "--seeds"),
        (["--out=/nonexistent/r.jsonl"], "--out"),
        (["ch3_overfit"], "ch3_overfit"),  # a row named without --rows= must not run them all
        (["--resume"], "--resume reads the runs of --out: give --out"),
    ],
)
def test_bad_input_is_one_line(flags, message):
    result = run(*flags)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_out_file_is_untouched_when_the_data_cannot_load(tmp_path):
    keep = tmp_path / "runs.jsonl"
    keep.write_text("an earlier table's runs\n")
    result = run("--rows=ch3_overfit", f"--out={keep}", "--data_dir=/proc/nonexistent")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "/proc/nonexistent" in result.stderr.strip().splitlines()[-1]
    assert keep.read_text() == "an earlier table's runs\n"


def test_overfitting_row_for_one_seed(tmp_path):
    """Chapter 3's 1,000-image run (book: 82.27%), seed 0: a table row and a JSON line."""
    out = tmp_path / "runs.jsonl"
    result = run("--rows=ch3_overfit", "--seeds=1", f"--out={out}")
    assert result.returncode == 0, result.stderr
    row = [l for l in result.stdout.splitlines() if l.startswith("| ch. 3, 1,000 images")][0]
    accuracy = float(row.split("|")[3].split("±")[0])
    assert 80.0 < accuracy < 90.0
    assert '"row": "ch3_overfit", "seed": 0' in out.read_text()


def test_resume_keeps_the_runs_out_holds_and_runs_the_rest(tmp_path):
    out = tmp_path / "runs.jsonl"
    row = ["--rows=ch3_init_scaled", f"--out={out}"]
    first = run(*row, "--seeds=2")
    assert first.returncode == 0, first.stderr
    assert "  seed 0: " in first.stdout and "(1 of 2 runs done, about" in first.stdout
    kept = out.read_text().splitlines()
    again = run(*row, "--seeds=3", "--resume")
    assert again.returncode == 0, again.stderr
    assert "2 of 3 seeds kept from --out" in again.stdout
    assert "seed 0:" not in again.stdout and "  seed 2: " in again.stdout
    lines = out.read_text().splitlines()
    assert lines[:2] == kept and len(lines) == 3
    table = [l for l in again.stdout.splitlines() if l.startswith("| ch. 3, N(0, 1/n_in)")]
    mean = statistics.mean(json.loads(line)["accuracy"] for line in lines)
    assert f"| {mean:.2f} ± " in table[0]


@pytest.mark.parametrize(
    "line",
    [
        '{"epoch": 0, "correct": 9000}',  # a --metrics_out file
        '{"row": ["ch1_30"], "seed": 0, "accuracy": 95.0}',
        '{"row": "ch1_30", "seed": 0, "accuracy": "95"}',
        "not json",
    ],
)
def test_resume_refuses_an_out_that_is_not_reproduces(tmp_path, line):
    out = tmp_path / "runs.jsonl"
    out.write_text(line + "\n")
    result = run("--rows=ch3_init_scaled", f"--out={out}", "--resume")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "line 1 is not a run of experiments.reproduce" in result.stderr
    assert out.read_text() == line + "\n"


def test_resume_keeps_runs_of_other_settings_in_the_file_but_runs_again(tmp_path):
    """A record of an older nnjax (no command) or of a row whose settings changed."""
    out = tmp_path / "runs.jsonl"
    old = '{"row": "ch3_init_scaled", "seed": 0, "accuracy": 99.0}'
    out.write_text(old + "\n")
    result = run("--rows=ch3_init_scaled", "--seeds=1", f"--out={out}", "--resume")
    assert result.returncode == 0, result.stderr
    assert "1 of its 1 runs are of other settings (or an older nnjax)" in result.stdout
    assert "  seed 0: " in result.stdout and "99.00" not in result.stdout
    lines = out.read_text().splitlines()
    assert lines[0] == old and len(lines) == 2 and '"command": ' in lines[1]


def test_a_row_run_equals_the_command_it_prints():
    """run_row trains in-process what the table's command column runs: the same seed gives
    the same best accuracy as ``python -m experiments.mnist`` with those flags."""
    from nnjax import data

    settings = dict(
        hidden=[30],
        epochs=2,
        train_size=1000,
        cost="cross_entropy",
        eta=0.5,
        l2=5.0,
        eval_split="validation",
    )
    accuracy = reproduce.run_row(data.load("mnist", progress=None), settings, seed=1)
    command = reproduce.command(settings).split()
    assert command[:3] == ["python", "-m", "experiments.mnist"]
    result = run_module("experiments.mnist", *command[3:], "--seed=1")
    assert result.returncode == 0, result.stderr
    best = [l for l in result.stdout.splitlines() if l.startswith("Best:")][0]
    assert f"({accuracy:.2f}%)" in best, (accuracy, best)


def test_the_settings_a_command_leaves_out_are_experiments_mnists_defaults():
    """A row's command omits a setting equal to ``reproduce.DEFAULTS``: those must be what
    experiments.mnist defaults to, or the command would run another network than the row."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys; import experiments.mnist; from absl import flags\n"
        "print(json.dumps({k: flags.FLAGS[k].default for k in sys.argv[1:]}))"
    )
    names = [n for n in reproduce.DEFAULTS]
    out = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == reproduce.DEFAULTS
