"""The chapter 6 runs kept in docs/results/chapter6 say what its README says: each run's
best validation epoch and test accuracy there (from its metrics and its kept predictions,
scored against the real MNIST test labels), and each ensemble seed's vote."""

import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "chapter6"
README = (RESULTS / "README.md").read_text()

# | `dropout_s5` | 1 | 32 (99.60%) | 99.57% | 99.60% |
ROWS = {
    int(seed): (int(ensemble), int(epoch), float(validation), float(test))
    for seed, ensemble, epoch, validation, test in re.findall(
        r"^\| `dropout_s(\d+)` \| (\d+) \| (\d+) \(([\d.]+)%\) \| ([\d.]+)% \|", README, re.M
    )
}
# Ensemble seed 1, the plurality vote of `dropout_s5` … `dropout_s9`: **99.67%, 33 test
# digits wrong**
VOTES = {
    int(k): (int(first), int(last), float(accuracy), int(wrong))
    for k, first, last, accuracy, wrong in re.findall(
        r"Ensemble seed (\d+), the plurality vote of `dropout_s(\d+)` … `dropout_s(\d+)`:"
        r"\s+\*\*([\d.]+)%, (\d+)\s+test\s+digits\s+wrong\*\*",
        README,
    )
}


def test_the_readme_lists_every_kept_run_and_vote():
    kept = {
        int(p.name[len("dropout_s") : -len(".predictions.json")])
        for p in RESULTS.glob("dropout_s*.predictions.json")
    }
    assert kept and set(ROWS) == kept
    assert set(VOTES) == {e for e, *_ in ROWS.values() if all(5 * e + i in kept for i in range(5))}


@pytest.mark.parametrize("seed", sorted(ROWS))
def test_a_runs_best_validation_epoch_is_its_rows(seed):
    _, epoch, validation, _ = ROWS[seed]
    lines = (RESULTS / f"dropout_s{seed}.jsonl").read_text().splitlines()
    epochs = [json.loads(line) for line in lines]
    assert [e["epoch"] for e in epochs] == list(range(40))
    best = max(epochs, key=lambda e: (e["correct"], e["epoch"]))  # the last of ties
    assert (best["epoch"], round(100 * best["correct"] / best["total"], 2)) == (epoch, validation)
    # the run's record (what experiments.chapter6 reads) says the same
    record = json.loads((RESULTS / f"dropout_s{seed}.summary.json").read_text())["networks"][0]
    assert (record["seed"], record["best_epoch"], record["validation_accuracy"]) == (
        seed,
        epoch,
        validation,
    )
    assert record["test_accuracy"] == ROWS[seed][3]
    assert record["test_accuracy"] == round(100 * best["test_correct"] / best["test_total"], 2)


@pytest.mark.parametrize("ensemble", sorted(VOTES))
def test_the_kept_predictions_vote_as_the_readme_says(ensemble, tmp_path):
    first, last, accuracy, wrong = VOTES[ensemble]
    assert last == first + 4 and first == 5 * ensemble
    files = [RESULTS / f"dropout_s{s}.predictions.json" for s in range(first, last + 1)]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.vote",
            *map(str, files),
            f"--summary_out={tmp_path / 'vote.json'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    for seed, path in zip(range(first, last + 1), files):
        assert f"{path}: test accuracy {ROWS[seed][3]:.2f}%" in out.stdout
        assert ROWS[seed][0] == ensemble
    assert f"Their plurality vote: {accuracy:.2f}% ({wrong} test digits wrong)." in out.stdout
    record = json.loads((tmp_path / "vote.json").read_text())  # what experiments.chapter6 reads
    assert (round(record["accuracy"], 2), record["wrong"]) == (accuracy, wrong)
    assert [round(a, 2) for a in record["networks"]] == [ROWS[s][3] for s in range(first, last + 1)]
