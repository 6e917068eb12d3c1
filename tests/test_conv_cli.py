"""`python -m experiments.conv` as a user runs it: presets, bad input, a short real run that
learns, and an ensemble whose reported vote is recomputed from its saved networks."""

import json
import pathlib
import re
import struct

import jax
import numpy as np
import pytest

from tests.helpers import assert_failed_with_one_error, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run_conv(*flags, timeout=600):
    return run_module("experiments.conv", *flags, timeout=timeout)


def test_list_names_every_book_row():
    from experiments import presets

    out = run_conv("--list")
    assert out.returncode == 0, out.stderr
    for name, (_, number, _) in presets.CHAPTER6.items():
        assert f"--preset={name}" in out.stdout and f"{number:.2f}%" in out.stdout


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--preset=resnet"], "--preset"),
        (["--layers=conv:20,fc:100"], "--layers"),
        (["--layers=conv:x,softmax"], "--layers"),
        (["--layers=fc:100,conv:20,softmax"], "--layers"),
        (["--activation=swish"], "--activation"),
        (["--epochs=0"], "--epochs"),
        (["--eta=-0.1"], "--eta"),
        (["--l2=-1"], "--l2"),
        (["--dropout=1"], "--dropout"),
        (["--networks=0"], "--networks"),
        (["--unroll=0"], "--unroll"),
        (["--train_size=0"], "--train_size"),
        (["--expand=rotate"], "--expand"),
        (["--save=/nonexistent/dir/nets.npz"], "--save"),
        (
            ["--predictions_out={tmp}/p.txt"],
            "--predictions_out={tmp}/p.txt: a predictions file's name must end in .json",
        ),
        (["--predictions_out=/nonexistent/dir/p.json"], "--predictions_out"),
        (["--checkpoint_dir=/proc", "--train_size=100", "--epochs=1"], "--checkpoint_dir"),
        (["--layers=fc:100,softmax", "--filters_png={tmp}/f.png"], "--filters_png"),
        (["--dataset=idx:/nonexistent/dir"], "/nonexistent/dir"),
        (
            ["--layers=fc:10,softmax:5", "--train_size=100", "--epochs=1"],
            "--layers=fc:10,softmax:5: the softmax layer has 5 outputs, but mnist has 10 classes",
        ),
        (["--layers=fc:10,softmax:12", "--train_size=100", "--epochs=1"], "has 12 outputs"),
        (["--seed=-1"], "--seed"),
        (["--seed=2147483647", "--networks=2"], "--seed=2147483647 with --networks=2"),
    ],
)
def test_bad_flags_are_one_line_errors(flags, names, tmp_path):
    # {tmp}: where a regression that trains after all would leave its files
    out = run_conv(*(f.format(tmp=tmp_path) for f in flags))
    assert_failed_with_one_error(out, names.format(tmp=tmp_path))


def write_idx(directory, classes=3):
    """An IDX dataset of random 8×8 images in ``directory``: 600 training images (the last
    100, a sixth, are validation) and 50 test images, labels in [0, classes)."""
    rng = np.random.default_rng(0)
    for stem, n in (("train", 600), ("t10k", 50)):
        images = rng.integers(0, 256, size=(n, 8, 8), dtype=np.uint8)
        labels = rng.integers(0, classes, size=n, dtype=np.uint8)
        for kind, arr in (("images", images), ("labels", labels)):
            header = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
            (directory / f"{stem}-{kind}-idx{arr.ndim}-ubyte").write_bytes(header + arr.tobytes())


def test_softmax_takes_the_number_of_classes_of_the_data(tmp_path):
    """A 3-class IDX dataset (8×8 images): "softmax" has 3 outputs and trains; "softmax:10",
    right for MNIST, is refused there, naming --layers."""
    write_idx(tmp_path)
    small = [f"--dataset=idx:{tmp_path}", "--train_size=100", "--epochs=1"]
    out = run_conv("--layers=fc:10,softmax", *small)
    assert out.returncode == 0, out.stderr
    assert "fully connected 10, sigmoid → softmax 3;" in out.stdout, out.stdout
    out = run_conv("--layers=fc:10,softmax:10", *small)
    assert_failed_with_one_error(out, "the softmax layer has 10 outputs, but idx:")


def test_expand_trains_on_shifted_images(tmp_path):
    """--expand=book trains on the 100 images and their four one-pixel shifts (500, taken
    after --train_size); --expand=random on 100 images shifted afresh each epoch, so its
    network differs from --expand=none's with the same seed."""
    from nnjax import saving

    write_idx(tmp_path)
    small = [
        f"--dataset=idx:{tmp_path}",
        "--layers=fc:10,softmax",
        "--train_size=100",
        "--epochs=1",
        "--seed=3",
    ]
    trained = {}
    for expand, says in (
        ("book", "500 training images (expanded)"),
        ("random", "100 training images, random shifts"),
        ("none", "100 training images;"),
    ):
        saved = tmp_path / f"{expand}.npz"
        out = run_conv(*small, f"--expand={expand}", f"--save={saved}")
        assert out.returncode == 0, out.stderr
        assert says in out.stdout.replace("\n", ";"), out.stdout
        trained[expand] = saving.load_layers(saved)[0][0]
    for other in ("book", "random"):
        assert not np.allclose(trained[other][0]["w"], trained["none"][0]["w"])


def test_training_flags_reach_the_training(tmp_path):
    """Each of --dropout_kind, --init, --momentum and --shuffle, changed alone, trains
    another network than the same run without it: none is silently ignored."""
    from nnjax import saving

    write_idx(tmp_path)
    base = [
        f"--dataset=idx:{tmp_path}",
        "--layers=fc:10,softmax",
        "--dropout=0.2",
        "--train_size=100",
        "--epochs=2",
        "--seed=1",
    ]
    trained, said = {}, {}
    for change in (
        "",
        "--dropout_kind=inverted",
        "--init=corrected",
        "--momentum=0.5",
        "--noshuffle",
    ):
        saved = tmp_path / f"{change.strip('-').replace('=', '_') or 'base'}.npz"
        out = run_conv(*base, *([change] if change else []), f"--save={saved}")
        assert out.returncode == 0, out.stderr
        trained[change] = saving.load_layers(saved)[0][0][0]["w"]
        said[change] = out.stdout.splitlines()[0]
    assert "dropout 0.2 (book)" in said[""]
    assert "dropout 0.2 (inverted)" in said["--dropout_kind=inverted"]
    for change in ("--dropout_kind=inverted", "--init=corrected", "--momentum=0.5", "--noshuffle"):
        assert not np.allclose(trained[change], trained[""]), change


def test_matmul_precision_auto_is_tf32_on_gpus_only():
    from experiments.cli import matmul_precision

    assert matmul_precision("auto", "gpu") == "default"
    assert matmul_precision("auto", "cpu") == matmul_precision("auto", "tpu") == "highest"
    assert matmul_precision("highest", "gpu") == "highest"
    assert matmul_precision("default", "cpu") == "default"
    with pytest.raises(ValueError, match="bf16"):
        matmul_precision("bf16", "gpu")


def test_short_real_run_learns_and_writes_its_outputs(tmp_path):
    """The relu preset's settings (η = 0.03, --l2=1.0: network3's λ = 0.1) on a small conv
    net, 4,000 images, 2 epochs: clearly learning, with the protocol's numbers, metrics,
    networks and figures. It convolves by XLA's convolution, TPUs' path (auto is im2col on
    CPUs and CUDA GPUs)."""
    files = {name: tmp_path / name for name in ("m.jsonl", "nets.npz", "f.png", "w.png")}
    out = run_conv(
        "--preset=relu",
        "--layers=conv:20:5x5,fc:100,softmax",
        "--train_size=4000",
        "--epochs=2",
        "--convolution=xla",
        f"--metrics_out={files['m.jsonl']}",
        f"--save={files['nets.npz']}",
        f"--filters_png={files['f.png']}",
        f"--misclassified_png={files['w.png']}",
    )
    assert out.returncode == 0, out.stderr
    assert "η=0.03, λ=1," in out.stdout  # from the preset (network3's λ = 0.1)
    best = re.search(
        r"the corresponding test accuracy is ([\d.]+)%\. Final test accuracy "
        r"([\d.]+)%",
        out.stdout,
    )
    assert best, out.stdout
    assert float(best.group(1)) > 85, out.stdout
    epochs = [json.loads(line) for line in files["m.jsonl"].read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [0, 1] and epochs[0]["test_total"] == 10000
    from PIL import Image

    for png in ("f.png", "w.png"):
        assert Image.open(files[png]).size[0] > 300
    from nnjax import saving

    networks, settings = saving.load_layers(files["nets.npz"])
    assert settings["layers"] == "conv:20:5x5,fc:100,softmax" and settings["l2"] == 1.0
    assert networks[0][0]["w"].shape == (5, 5, 1, 20)


def test_ensemble_vote_is_recomputed_from_the_saved_networks(tmp_path):
    import jax

    from nnjax import data, ensemble, layers, network3, saving

    saved = tmp_path / "nets.npz"
    out = run_conv(
        "--layers=fc:30,softmax",
        "--activation=relu",
        "--eta=0.1",
        "--networks=3",
        "--train_size=1000",
        "--epochs=2",
        "--seed=5",
        f"--save={saved}",
    )
    assert out.returncode == 0, out.stderr
    assert (
        len(re.findall(r"Network 0, epoch \d: .*\(\d+\.\d s for the 3 networks;", out.stdout)) == 2
    ), out.stdout  # each epoch's time, once
    vote = re.search(r"Their plurality vote: ([\d.]+)%", out.stdout)
    assert vote, out.stdout
    networks, settings = saving.load_layers(saved)
    assert len(networks) == 3 and settings["seed"] == 5
    net = tuple(layers.parse(settings["layers"], settings["activation"]))
    test = data.load("mnist", progress=None).test
    predictions = np.stack(
        [
            network3.predict_all(
                jax.tree.map(jax.numpy.asarray, p), test.x, layers=net, input_shape=(28, 28, 1)
            )
            for p in networks
        ]
    )
    votes = ensemble.plurality_vote(predictions, 10)
    assert f"{100 * ensemble.vote_accuracy(votes, test.y):.2f}" == vote.group(1)
    assert not np.array_equal(predictions[0], predictions[1])


def test_checkpointed_run_resumes_exactly(tmp_path):
    """Two epochs, then the same command with --epochs=3 resumes for the third; the networks
    and the metrics equal those of an uninterrupted three-epoch run (which unrolls its loop
    two steps an iteration: the same steps). Each epoch's metrics name the device that
    trained it, here as if the first two had run elsewhere. A checkpoint with more epochs
    than --epochs, or other settings, is refused."""
    from nnjax import checkpoint, saving

    common = [
        "--layers=fc:20,softmax",
        "--dropout=0.2",
        "--train_size=500",
        "--networks=2",
        "--activation=relu",
        "--eta=0.1",
    ]
    ckpt = tmp_path / "ckpt"
    first = run_conv(*common, "--epochs=2", f"--checkpoint_dir={ckpt}")
    assert first.returncode == 0, first.stderr
    saved = ckpt / "checkpoint.npz"
    assert checkpoint.read_meta(saved)["devices"] == ["cpu", "cpu"]
    with np.load(saved) as archive:
        arrays = dict(archive)
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "devices": ["TPU v9", "TPU v9"]}))
    np.savez(saved, **arrays)
    resumed = run_conv(
        *common,
        "--epochs=3",
        f"--checkpoint_dir={ckpt}",
        f"--save={tmp_path / 'a.npz'}",
        f"--metrics_out={tmp_path / 'a.jsonl'}",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" in resumed.stdout and "Network 0, epoch 0" not in resumed.stdout
    assert [json.loads(line)["device"] for line in (tmp_path / "a.jsonl").open()] == [
        "TPU v9"
    ] * 4 + ["cpu"] * 2
    assert checkpoint.read_meta(saved)["devices"] == ["TPU v9", "TPU v9", "cpu"]
    fewer = run_conv(*common, "--epochs=2", f"--checkpoint_dir={ckpt}")
    assert_failed_with_one_error(fewer, "--epochs=2")
    assert "already holds 3 epochs" in fewer.stderr
    whole = run_conv(
        *common,
        "--epochs=3",
        "--unroll=2",
        f"--save={tmp_path / 'b.npz'}",
        f"--metrics_out={tmp_path / 'b.jsonl'}",
    )
    assert whole.returncode == 0, whole.stderr
    (a, _), (b, _) = (saving.load_layers(tmp_path / f) for f in ("a.npz", "b.npz"))
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):  # every w and b
        np.testing.assert_array_equal(u, v)

    def strip(f):
        return [
            {k: v for k, v in json.loads(line).items() if k not in ("seconds", "device")}
            for line in (tmp_path / f).read_text().splitlines()
        ]

    assert strip("a.jsonl") == strip("b.jsonl") and len(strip("a.jsonl")) == 6
    other = run_conv(*common, "--epochs=3", "--eta=0.2", f"--checkpoint_dir={ckpt}")
    assert other.returncode != 0 and "--eta" in other.stderr and "Traceback" not in other.stderr
    # settings that change the checkpoint's arrays are named too, not "holds N arrays"
    more = run_conv(*common, "--epochs=3", "--networks=3", f"--checkpoint_dir={ckpt}")
    assert_failed_with_one_error(more, "--networks")
    # experiments.mnist given this checkpoint says it is another runner's
    mnist = run_module("experiments.mnist", "--epochs=3", f"--checkpoint_dir={ckpt}", timeout=120)
    assert_failed_with_one_error(mnist, "holds a run of another runner")
    assert "--layers" in mnist.stderr and "--eta" not in mnist.stderr
