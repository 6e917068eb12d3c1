"""Figures from --metrics_out files."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def metrics_file(path, epochs, monitored=True):
    with open(path, "w") as f:
        for k in range(epochs):
            line = {
                "epoch": k,
                "correct": 900 + k,
                "total": 1000,
                "accuracy": (900 + k) / 1000,
                "seconds": 0.1,
                "eta": 0.5,
            }
            if monitored:
                line.update(
                    training_cost=1.0 / (k + 1),
                    evaluation_cost=1.2 / (k + 1),
                    training_accuracy=0.95,
                )
            f.write(json.dumps(line) + "\n")
    return path


def plots(*flags):
    return subprocess.run(
        [sys.executable, "-m", "experiments.plots", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )


def test_curves_and_summary_figures_are_written(tmp_path):
    a, b = metrics_file(tmp_path / "a.jsonl", 20), metrics_file(tmp_path / "b.jsonl", 10)
    out = tmp_path / "curves.png"
    result = plots(
        f"--run=λ = 0 (1,000 images)={a}",
        f"--run=λ = 0.1={b}",
        "--y=training_cost,accuracy",
        f"--out={out}",
        "--title=test",
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    out = tmp_path / "size.png"
    result = plots(f"--run=1000={a}", f"--run=10000={b}", "--against_label", f"--out={out}")
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000


@pytest.mark.parametrize(
    "make_flags, message",
    [
        (lambda d: [f"--run={d / 'missing.jsonl'}", f"--out={d / 'x.png'}"], "LABEL=PATH"),
        (lambda d: [f"--run=a={d / 'missing.jsonl'}", f"--out={d / 'x.png'}"], "missing.jsonl"),
        (
            lambda d: [f"--run=a={d / 'plain.jsonl'}", "--y=training_cost", f"--out={d / 'x.png'}"],
            "--monitor",
        ),
        (lambda d: [f"--run=a={d / 'plain.jsonl'}", "--y=loss", f"--out={d / 'x.png'}"], "--y"),
        (lambda d: [f"--run=a={d / 'plain.jsonl'}", f"--out={d / 'x.jpg'}"], "--out"),
        (
            lambda d: [
                f"--run=small={d / 'plain.jsonl'}",
                "--against_label",
                f"--out={d / 'x.png'}",
            ],
            "numeric",
        ),
        (lambda d: [f"--run=a={d / 'plain.jsonl'}", "--y=", f"--out={d / 'x.png'}"], "--y"),
        (
            lambda d: [f"--run=a={d / 'sweep.jsonl'}", f"--out={d / 'x.png'}"],  # JSON, not epochs
            "sweep.jsonl is not a --metrics_out file",
        ),
        (
            lambda d: [f"--run=a={d / 'binary.jsonl'}", f"--out={d / 'x.png'}"],
            "binary.jsonl is not a --metrics_out file",
        ),
        (
            lambda d: [f"--run=a={d / 'plain.jsonl'}", "--from_epoch=3", f"--out={d / 'x.png'}"],
            "--from_epoch=3: run 'a' ends at epoch 2",
        ),
    ],
)
def test_bad_input_is_one_line(tmp_path, make_flags, message):
    metrics_file(tmp_path / "plain.jsonl", 3, monitored=False)
    (tmp_path / "sweep.jsonl").write_text('{"seed": 0, "eta": 3.0, "best_accuracy": 0.95}\n')
    (tmp_path / "binary.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    result = plots(*make_flags(tmp_path))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.png").exists()


def test_a_run_without_accuracy_is_not_sent_to_monitor(tmp_path):
    """Every run records its accuracy; --monitor only adds the costs and training accuracy."""
    (tmp_path / "bare.jsonl").write_text('{"epoch": 0}\n')
    result = plots(f"--run=a={tmp_path / 'bare.jsonl'}", f"--out={tmp_path / 'x.png'}")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "error: run 'a' has no accuracy"


def test_a_metrics_file_cut_off_mid_line_draws_its_complete_lines(tmp_path):
    """A disk that filled (or a run killed) mid-line leaves a partial last line: the complete
    epochs are drawn and the cut line is reported as such; a bad line elsewhere is an error
    naming its number."""
    path = tmp_path / "cut.jsonl"
    metrics_file(path, 3, monitored=False)
    with open(path, "a") as f:
        f.write('{"epoch": 3, "accur')
    result = plots(f"--run=a={path}", f"--out={tmp_path / 'x.png'}")
    assert result.returncode == 0, result.stderr
    assert "line 4, the last, is cut off; drawing the 3 complete lines before it" in result.stderr
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], '{"epoch": 1, "accur', *lines[2:3]]) + "\n")
    result = plots(f"--run=a={path}", f"--out={tmp_path / 'y.png'}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "line 2 is not JSON" in result.stderr.strip().splitlines()[-1]
