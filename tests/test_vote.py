"""`python -m experiments.vote`: networks trained by separate runs vote exactly as the same
networks trained by one `--networks=K` run; bad input gives one-line errors."""

import re

import jax
import numpy as np
import pytest

from tests.helpers import assert_failed_with_one_error, run_module
from tests.test_conv_cli import run_conv

COMMON = [
    "--layers=fc:30,softmax",
    "--activation=relu",
    "--eta=0.1",
    "--dropout=0.2",
    "--train_size=1000",
    "--epochs=1",
]


def run_vote(*args):
    return run_module("experiments.vote", *args)


def test_separate_runs_vote_like_one_ensemble_run(tmp_path):
    together = run_conv(*COMMON, "--networks=3", "--seed=3", f"--save={tmp_path / 'all.npz'}")
    assert together.returncode == 0, together.stderr
    for seed in (3, 4, 5):
        alone = run_conv(*COMMON, f"--seed={seed}", f"--save={tmp_path / f's{seed}.npz'}")
        assert alone.returncode == 0, alone.stderr
    from nnjax import saving

    nets, _ = saving.load_layers(tmp_path / "all.npz")
    for i, seed in enumerate((3, 4, 5)):
        (alone,), _ = saving.load_layers(tmp_path / f"s{seed}.npz")
        assert jax.tree.structure(nets[i]) == jax.tree.structure(alone)
        for a, b in zip(jax.tree.leaves(nets[i]), jax.tree.leaves(alone)):  # w and b
            np.testing.assert_array_equal(a, b)

    png = tmp_path / "wrong.png"
    out = run_vote(*(str(tmp_path / f"s{s}.npz") for s in (3, 4, 5)), f"--misclassified_png={png}")
    assert out.returncode == 0, out.stderr
    ensemble_vote = re.search(
        r"Their plurality vote: ([\d.]+)% \((\d+) test digits wrong\)", together.stdout
    )
    vote = re.search(r"Their plurality vote: ([\d.]+)% \((\d+) test digits wrong\)", out.stdout)
    assert ensemble_vote and vote, (together.stdout, out.stdout)
    assert vote.groups() == ensemble_vote.groups()
    assert len(re.findall(r"s\d\.npz: test accuracy", out.stdout)) == 3
    assert png.stat().st_size > 1000 and "misclassified digits" in out.stdout

    # One file of three networks is three voters too.
    same = run_vote(str(tmp_path / "all.npz"))
    assert same.returncode == 0, same.stderr
    assert "all.npz[2]: test accuracy" in same.stdout
    assert (
        re.search(r"Their plurality vote: ([\d.]+)% \((\d+)", same.stdout).groups() == vote.groups()
    )


VOTE = r"Their plurality vote: ([\d.]+)% \((\d+) test digits wrong\)"


def test_predictions_files_vote_like_the_networks(tmp_path):
    """experiments.conv --predictions_out and experiments.vote --predictions_out write the
    classes the saved networks give, and voting with those files (alone or beside the
    networks) gives the networks' vote."""
    from nnjax import predictions

    trained = run_conv(
        *COMMON,
        "--networks=3",
        f"--save={tmp_path / 'all.npz'}",
        f"--predictions_out={tmp_path / 'conv.json'}",
    )
    assert trained.returncode == 0, trained.stderr
    assert f"Wrote the test predictions to {tmp_path / 'conv.json'}" in trained.stdout
    by_networks = run_vote(str(tmp_path / "all.npz"), f"--predictions_out={tmp_path / 'vote.json'}")
    assert by_networks.returncode == 0, by_networks.stderr
    conv, vote = (predictions.load(tmp_path / f) for f in ("conv.json", "vote.json"))
    np.testing.assert_array_equal(conv.predictions, vote.predictions)
    assert conv.predictions.shape == (3, 10000) and conv.names[2] == "conv seed 2"
    assert vote.names[0] == f"{tmp_path / 'all.npz'}[0]"
    expected = re.search(VOTE, trained.stdout).groups()
    assert re.search(VOTE, by_networks.stdout).groups() == expected
    by_files = run_vote(str(tmp_path / "conv.json"))
    assert by_files.returncode == 0, by_files.stderr
    assert re.search(VOTE, by_files.stdout).groups() == expected
    accuracies = re.findall(r"all\.npz\[\d\]: test accuracy ([\d.]+)%", by_networks.stdout)
    assert (
        re.findall(r"conv\.json\[\d\]: test accuracy ([\d.]+)%", by_files.stdout) == accuracies
        and len(accuracies) == 3
    )
    # each network voting twice, as a file and as itself, changes no vote and no tie-break
    both = run_vote(str(tmp_path / "conv.json"), str(tmp_path / "all.npz"))
    assert both.returncode == 0, both.stderr
    assert re.search(VOTE, both.stdout).groups() == expected


def test_vote_on_the_validation_split(tmp_path):
    out = run_conv(*COMMON, f"--save={tmp_path / 'a.npz'}")
    assert out.returncode == 0, out.stderr
    out = run_vote(str(tmp_path / "a.npz"), "--split=validation")
    assert out.returncode == 0, out.stderr
    assert re.search(r"a\.npz: validation accuracy [\d.]+%", out.stdout), out.stdout
    assert re.search(
        r"1 network, validation accuracy [\d.]+% \(\d+ validation digits wrong\)", out.stdout
    ), out.stdout


def test_one_network_is_reported_without_a_vote(tmp_path):
    from nnjax import data, predictions

    labels = data.load("mnist", progress=None).test.y
    guesses = labels.copy()
    guesses[:7] = (guesses[:7] + 1) % 10
    predictions.save(tmp_path / "one.json", guesses[None], labels, "mnist", "test")
    out = run_vote(str(tmp_path / "one.json"))
    assert out.returncode == 0, out.stderr
    assert "1 network, test accuracy 99.93% (7 test digits wrong)." in out.stdout, out.stdout
    assert "plurality" not in out.stdout


def _mixed_datasets(tmp_path):
    from nnjax import saving

    nets, settings = saving.load_layers(tmp_path / "a.npz")
    saving.save_layers(tmp_path / "b.npz", nets, {**settings, "dataset": "tfds:kmnist"})
    return [str(tmp_path / "a.npz"), str(tmp_path / "b.npz")]


def _more_outputs(tmp_path):
    from nnjax import saving

    _, settings = saving.load_layers(tmp_path / "a.npz")
    wide = {"w": np.zeros((784, 12), np.float32), "b": np.arange(12, dtype=np.float32)}
    saving.save_layers(tmp_path / "w.npz", [[wide]], settings)
    return [str(tmp_path / "w.npz")]


def _no_dataset(tmp_path):
    from nnjax import saving

    nets, settings = saving.load_layers(tmp_path / "a.npz")
    del settings["dataset"]
    saving.save_layers(tmp_path / "c.npz", nets, settings)
    return [str(tmp_path / "c.npz")]


def _assert_one_line_error(tmp_path, args, names):
    from nnjax import saving

    saving.save_layers(
        tmp_path / "a.npz",
        [[{"w": np.zeros((784, 10), np.float32), "b": np.zeros(10, np.float32)}]],
        {
            "layers": "softmax",
            "activation": "sigmoid",
            "dropout": 0.0,
            "dropout_kind": "book",
            "init": "book",
            "dataset": "mnist",
        },
    )
    (tmp_path / "a.npz.txt").write_text("not networks")
    out = run_vote(*args(tmp_path))
    assert_failed_with_one_error(out, names)


@pytest.mark.parametrize(
    "args, names",
    [
        (lambda tmp: [], "a.npz"),
        (lambda tmp: [str(tmp / "missing.npz")], "missing.npz"),
        (lambda tmp: [str(tmp / "a.npz"), str(tmp / "a.npz") + ".txt"], "a.npz.txt is not an .npz"),
        (
            lambda tmp: [str(tmp / "a.npz"), "--misclassified_png=/nonexistent/dir/w.png"],
            "--misclassified_png",
        ),
        (lambda tmp: [str(tmp / "a.npz"), "--split=train"], "--split"),
        (_mixed_datasets, "different datasets"),
        (_no_dataset, "c.npz: not networks saved by experiments.conv"),
        # every image its class 11 (the largest bias), which is no MNIST class
        (_more_outputs, "w.npz: has 12 outputs, but mnist has 10 classes"),
    ],
)
def test_bad_input_is_a_one_line_error(tmp_path, args, names):
    _assert_one_line_error(tmp_path, args, names)


def _validation_predictions(tmp_path):
    from nnjax import predictions

    labels = np.zeros(10000, np.int64)
    predictions.save(tmp_path / "v.json", labels[None], labels, "mnist", "validation")
    return [str(tmp_path / "a.npz"), str(tmp_path / "v.json")]


def _other_labels(tmp_path):
    from nnjax import predictions

    labels = np.zeros(10000, np.int64)
    predictions.save(tmp_path / "t.json", labels[None], labels, "mnist", "test")
    return [str(tmp_path / "t.json")]


def _class_out_of_range(tmp_path):
    from nnjax import data, predictions

    labels = data.load("mnist").test.y
    predictions.save(tmp_path / "r.json", np.full((1, len(labels)), 10), labels, "mnist", "test")
    return [str(tmp_path / "r.json")]


def _unknown_dataset(tmp_path):
    from nnjax import predictions

    labels = np.zeros(10, np.int64)
    predictions.save(tmp_path / "u.json", labels[None], labels, "no_such_set", "test")
    return [str(tmp_path / "u.json")]


def _not_predictions(tmp_path):
    (tmp_path / "n.json").write_text('{"networks": []}')
    return [str(tmp_path / "a.npz"), str(tmp_path / "n.json")]


@pytest.mark.parametrize(
    "args, names",
    [
        (_validation_predictions, "v.json: predictions of mnist's validation images, not of"),
        (_other_labels, "t.json: predictions of 10000 test images whose labels differ"),
        (_not_predictions, "n.json: not a predictions file"),
        (_unknown_dataset, "u.json names the dataset no_such_set, which does not load: unknown"),
        (_class_out_of_range, "r.json: a class 10, but mnist has 10 classes"),
        (
            lambda tmp: [str(tmp / "a.npz"), "--predictions_out=/nonexistent/dir/p.json"],
            "--predictions_out",
        ),
        (
            lambda tmp: [str(tmp / "a.npz"), f"--predictions_out={tmp / 'p.npz'}"],
            "--predictions_out=" + "{tmp}/p.npz: a predictions file's name must end in .json",
        ),
        (
            lambda tmp: [
                str(tmp / "a.npz"),
                str(tmp / "a.json"),
                f"--predictions_out={tmp / 'a.json'}",
            ],
            "a.json is one of the files to vote",
        ),
    ],
)
def test_bad_predictions_are_a_one_line_error(tmp_path, args, names):
    from nnjax import data, predictions

    labels = data.load("mnist").test.y
    predictions.save(tmp_path / "a.json", labels[None], labels, "mnist", "test")
    before = (tmp_path / "a.json").read_bytes()
    _assert_one_line_error(tmp_path, args, names.format(tmp=tmp_path))
    assert (tmp_path / "a.json").read_bytes() == before  # nothing overwritten


def test_an_output_that_is_the_voted_datasets_file_is_refused(tmp_path):
    """vote learns its dataset from the files it votes, so an IDX file of that dataset
    named as an output is refused once they are read, before anything is written."""
    from nnjax import predictions

    idx = tmp_path / "idx"
    idx.mkdir()
    labels_file = idx / "t10k-labels-idx1-ubyte"
    labels_file.write_bytes(b"the user's only copy")
    labels = np.arange(20) % 10
    predictions.save(tmp_path / "p.json", labels[None], labels, f"idx:{idx}", "test")
    out = run_vote(str(tmp_path / "p.json"), f"--summary_out={labels_file}")
    assert_failed_with_one_error(out, f"--summary_out={labels_file} would overwrite the data")
    assert labels_file.read_bytes() == b"the user's only copy"


def test_each_network_is_reported_as_soon_as_it_is_classified():
    """classify() hands each voter's classes to ``report`` before it classifies the next
    one, so a long vote shows its progress and a bad file late in the list still leaves
    the accuracies of those before it on the screen."""
    import types

    from experiments import cli, voters
    from nnjax import predictions

    labels = np.array([0, 1, 2, 1])
    split = types.SimpleNamespace(x=np.zeros((4, 2, 2, 1), np.float32), y=labels)
    dataset = types.SimpleNamespace(test=split, num_classes=3, image_shape=(2, 2, 1))

    def record(rows, digest_of=labels):
        return predictions.Record(
            "mnist",
            "test",
            predictions.labels_digest(digest_of),
            np.asarray(rows, np.int32),
            tuple(map(str, range(len(rows)))),
        )

    good = record([[0, 1, 2, 0], [2, 1, 2, 1]])
    members = [voters.Voter(f"g[{i}]", str(i), record=good, index=i) for i in range(2)]
    reported = []
    classes = voters.classify(
        members,
        dataset,
        "mnist",
        "test",
        report=lambda v, p: reported.append((v.label, p.tolist())),
    )
    assert reported == [("g[0]", [0, 1, 2, 0]), ("g[1]", [2, 1, 2, 1])]
    np.testing.assert_array_equal(classes, good.predictions)
    bad = voters.Voter("bad", "bad", record=record([[0, 0, 0, 0]], digest_of=labels[::-1]))
    reported.clear()
    with pytest.raises(cli.UsageError, match="bad: "):
        voters.classify(
            [members[1], bad],
            dataset,
            "mnist",
            "test",
            report=lambda v, p: reported.append(v.label),
        )
    assert reported == ["g[1]"]
