"""Figures from --metrics_out files."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import run_module

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
    return run_module("experiments.plots", *flags)


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
            "--against_label needs labels that are positive numbers",
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
    assert "line 4, the last, is cut off; reading the 3 complete lines before it" in result.stderr
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], '{"epoch": 1, "accur', *lines[2:3]]) + "\n")
    result = plots(f"--run=a={path}", f"--out={tmp_path / 'y.png'}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "line 2 is not JSON" in result.stderr.strip().splitlines()[-1]


def norms_file(path, epochs, layers, before=True):
    """A --metrics_out file of a run with --gradient_norms: layer l's norm after epoch k is
    (l + 1) / (k + 2), before training (l + 1) (recorded in epoch 0's line if ``before``)."""
    with open(path, "w") as f:
        for k in range(epochs):
            line = {"epoch": k, "correct": 100, "total": 1000, "accuracy": 0.1}
            line["gradient_norms"] = [(l + 1) / (k + 2) for l in range(layers)]
            if before and k == 0:
                line["gradient_norms_before_training"] = [float(l + 1) for l in range(layers)]
            f.write(json.dumps(line) + "\n")
    return path


# experiments.plots defines absl flags that other runners share (--out): drawn in a process
# of its own, which reports the lines of the gradient_norms panel.
DRAWN_LINES = """
import json, sys
from matplotlib.figure import Figure
from experiments import plots
ax = Figure().subplots()
plots.draw_gradient_norms(ax, plots.read_runs(sys.argv[1:]))
print(json.dumps({"yscale": ax.get_yscale(), "lines": [
    [line.get_label(), [float(v) for v in line.get_xdata()], [float(v) for v in line.get_ydata()]]
    for line in ax.get_lines()]}))
"""


def drawn_lines(*runs):
    result = subprocess.run(
        [sys.executable, "-c", DRAWN_LINES, *runs],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_gradient_norms_draw_one_line_per_hidden_layer(tmp_path):
    drawn = drawn_lines(f"3={norms_file(tmp_path / 'a.jsonl', 5, 3)}")
    assert drawn["yscale"] == "log"
    assert [label for label, _, _ in drawn["lines"]] == [f"hidden layer {l}" for l in (1, 2, 3)]
    for l, (_, x, y) in enumerate(drawn["lines"]):
        assert x == [0, 1, 2, 3, 4, 5]  # epochs of training: before, then after each epoch
        assert y == pytest.approx([l + 1] + [(l + 1) / (k + 2) for k in range(5)])
    # Without the before-training record the curves start after the first epoch; with two
    # runs each line names its run.
    drawn = drawn_lines(
        f"old={norms_file(tmp_path / 'b.jsonl', 4, 2, before=False)}",
        f"new={norms_file(tmp_path / 'c.jsonl', 4, 2)}",
    )
    labels = [label for label, _, _ in drawn["lines"]]
    assert labels == [
        "old: hidden layer 1",
        "old: hidden layer 2",
        "new: hidden layer 1",
        "new: hidden layer 2",
    ]
    assert drawn["lines"][0][1] == [1, 2, 3, 4] and drawn["lines"][2][1] == [0, 1, 2, 3, 4]
    out = tmp_path / "speed.png"
    result = plots(f"--run=3={tmp_path / 'a.jsonl'}", "--y=gradient_norms,accuracy", f"--out={out}")
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


@pytest.mark.parametrize(
    "line, message",
    [
        ({"epoch": 0, "accuracy": 0.1}, "has no gradient_norms (train it with --gradient_norms"),
        ({"epoch": 0, "accuracy": 0.1, "gradient_norms": []}, "has no hidden layers"),
        ({"epoch": 0, "accuracy": 0.1, "gradient_norms": 0.5}, "is 0.5, not a list of numbers"),
        (
            {"epoch": 0, "gradient_norms": [0.1], "gradient_norms_before_training": [1, 2]},
            "different numbers of hidden layers",
        ),
    ],
)
def test_bad_gradient_norms_are_one_line(tmp_path, line, message):
    (tmp_path / "n.jsonl").write_text(json.dumps(line) + "\n")
    result = plots(
        f"--run=a={tmp_path / 'n.jsonl'}", "--y=gradient_norms", f"--out={tmp_path / 'x.png'}"
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x.png").exists()


def test_mnist_records_the_norms_before_training_in_epoch_0_also_when_resumed(tmp_path):
    """experiments.mnist --gradient_norms writes the norms before training into epoch 0's
    line (the book's figures start there), also when a run resumes from its checkpoint: the
    norms of the initial network, recomputed here by the book's backprop (BP1-BP4)."""
    import jax

    from nnjax import backprop, costs, data, network

    metrics = tmp_path / "m.jsonl"
    flags = [
        "--hidden=5,4",
        "--train_size=100",
        "--gradient_norms=50",
        "--cost=cross_entropy",
        "--init=scaled",
        "--seed=3",
        f"--metrics_out={metrics}",
        f"--checkpoint_dir={tmp_path / 'run'}",
    ]
    for epochs in (1, 2):  # the second run resumes after epoch 0
        result = run_module("experiments.mnist", *flags, f"--epochs={epochs}")
        assert result.returncode == 0, result.stderr
    assert "Resuming" in result.stdout
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert "gradient_norms_before_training" not in rows[1]
    for other in ("--gradient_norms=0", "--monitor"):  # epochs 0-1 would lack or hold them
        result = run_module("experiments.mnist", *flags, other, "--epochs=3")
        assert result.returncode != 0, result.stdout
        assert other.split("=")[0] in result.stderr.splitlines()[-1]
        assert "other settings" in result.stderr.splitlines()[-1]
    assert [json.loads(line) for line in metrics.read_text().splitlines()] == rows
    train = data.load("mnist", progress=None).train
    init_key, _ = jax.random.split(jax.random.key(3))
    params = network.init(init_key, [784, 5, 4, 10], init="scaled")
    nabla = backprop.backprop(
        params, train.x[:50], costs.one_hot(train.y[:50], 10), costs.cross_entropy
    )
    expected = [float(np.linalg.norm(b)) for b in nabla["biases"][:-1]]
    assert rows[0]["gradient_norms_before_training"] == pytest.approx(expected, rel=1e-4)
    result = plots(f"--run=a={metrics}", "--y=gradient_norms", f"--out={tmp_path / 'x.png'}")
    assert result.returncode == 0, result.stderr
