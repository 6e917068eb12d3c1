"""`python -m experiments.vote`: networks trained by separate runs vote exactly as the same
networks trained by one `--networks=K` run; bad input gives one-line errors."""

import re
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.helpers import assert_failed_with_one_error
from tests.test_conv_cli import ROOT, run_conv

COMMON = ["--layers=fc:30,softmax", "--activation=relu", "--eta=0.1", "--dropout=0.2",
          "--train_size=1000", "--epochs=1"]


def run_vote(*args):
    return subprocess.run([sys.executable, "-m", "experiments.vote", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_separate_runs_vote_like_one_ensemble_run(tmp_path):
    together = run_conv(*COMMON, "--networks=3", "--seed=3", f"--save={tmp_path / 'all.npz'}")
    assert together.returncode == 0, together.stderr
    for seed in (3, 4, 5):
        alone = run_conv(*COMMON, f"--seed={seed}", f"--save={tmp_path / f's{seed}.npz'}")
        assert alone.returncode == 0, alone.stderr
    from nnjax import checkpoint
    nets, _ = checkpoint.load_layers(tmp_path / "all.npz")
    for i, seed in enumerate((3, 4, 5)):
        (alone,), _ = checkpoint.load_layers(tmp_path / f"s{seed}.npz")
        assert jax.tree.structure(nets[i]) == jax.tree.structure(alone)
        for a, b in zip(jax.tree.leaves(nets[i]), jax.tree.leaves(alone)):   # w and b
            np.testing.assert_array_equal(a, b)

    png = tmp_path / "wrong.png"
    out = run_vote(*(str(tmp_path / f"s{s}.npz") for s in (3, 4, 5)),
                   f"--misclassified_png={png}")
    assert out.returncode == 0, out.stderr
    ensemble_vote = re.search(r"Their plurality vote: ([\d.]+)% \((\d+) test digits wrong\)",
                              together.stdout)
    vote = re.search(r"Their plurality vote: ([\d.]+)% \((\d+) test digits wrong\)",
                     out.stdout)
    assert ensemble_vote and vote, (together.stdout, out.stdout)
    assert vote.groups() == ensemble_vote.groups()
    assert len(re.findall(r"s\d\.npz: test accuracy", out.stdout)) == 3
    assert png.stat().st_size > 1000 and "misclassified digits" in out.stdout

    # One file of three networks is three voters too.
    same = run_vote(str(tmp_path / "all.npz"))
    assert same.returncode == 0, same.stderr
    assert "all.npz[2]: test accuracy" in same.stdout
    assert re.search(r"Their plurality vote: ([\d.]+)% \((\d+)", same.stdout).groups() == \
        vote.groups()


def test_vote_on_the_validation_split(tmp_path):
    out = run_conv(*COMMON, f"--save={tmp_path / 'a.npz'}")
    assert out.returncode == 0, out.stderr
    out = run_vote(str(tmp_path / "a.npz"), "--split=validation")
    assert out.returncode == 0, out.stderr
    assert re.search(r"a\.npz: validation accuracy [\d.]+%", out.stdout), out.stdout
    assert re.search(r"vote: [\d.]+% \(\d+ validation digits wrong\)", out.stdout), out.stdout


def _mixed_datasets(tmp_path):
    from nnjax import checkpoint
    nets, settings = checkpoint.load_layers(tmp_path / "a.npz")
    checkpoint.save_layers(tmp_path / "b.npz", nets, {**settings, "dataset": "tfds:kmnist"})
    return [str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]


def _no_dataset(tmp_path):
    from nnjax import checkpoint
    nets, settings = checkpoint.load_layers(tmp_path / "a.npz")
    del settings["dataset"]
    checkpoint.save_layers(tmp_path / "c.npz", nets, settings)
    return [str(tmp_path / "c.npz")]


@pytest.mark.parametrize("args, names", [
    (lambda tmp: [], "a.npz"),
    (lambda tmp: [str(tmp / "missing.npz")], "missing.npz"),
    (lambda tmp: [str(tmp / "a.npz"), str(tmp / "a.npz") + ".txt"], "a.npz.txt is not an .npz"),
    (lambda tmp: [str(tmp / "a.npz"), "--misclassified_png=/nonexistent/dir/w.png"],
     "--misclassified_png"),
    (lambda tmp: [str(tmp / "a.npz"), "--split=train"], "--split"),
    (_mixed_datasets, "different datasets"),
    (_no_dataset, "c.npz: not networks saved by experiments.conv"),
])
def test_bad_input_is_a_one_line_error(tmp_path, args, names):
    from nnjax import checkpoint
    checkpoint.save_layers(tmp_path / "a.npz", [[{"w": np.zeros((784, 10), np.float32),
                                                  "b": np.zeros(10, np.float32)}]],
                           {"layers": "softmax", "activation": "sigmoid", "dropout": 0.0,
                            "dropout_kind": "book", "init": "book", "dataset": "mnist"})
    (tmp_path / "a.npz.txt").write_text("not networks")
    out = run_vote(*args(tmp_path))
    assert_failed_with_one_error(out, names)
