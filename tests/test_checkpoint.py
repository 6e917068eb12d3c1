"""Saving and loading networks (the book's JSON), checkpoints, and kill-and-resume."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations, checkpoint, costs, network, saving
from nnjax.history import EpochResult, History
from tests.helpers import assert_failed_with_one_error, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_save_load_gives_the_same_predictions(tmp_path):
    params = network.init(jax.random.key(0), [20, 7, 4])
    path = tmp_path / "net.json"
    saving.save(path, params, costs.cross_entropy, activations.tanh)
    loaded, cost, activation = saving.load(path)
    assert cost is costs.cross_entropy and activation is activations.tanh
    x = jax.random.uniform(jax.random.key(1), (30, 20))
    np.testing.assert_array_equal(
        network.feedforward(loaded, x, activations.tanh),
        network.feedforward(params, x, activations.tanh),
    )
    document = json.loads(path.read_text())
    assert document["sizes"] == [20, 7, 4] and document["cost"] == "CrossEntropyCost"
    assert np.shape(document["biases"][0]) == (7, 1)  # the book's column vectors


def test_loads_a_network_saved_by_the_books_network2(tmp_path):
    rng = np.random.default_rng(0)
    sizes = [6, 4, 3]
    weights = [rng.standard_normal((y, x)) for x, y in zip(sizes[:-1], sizes[1:])]
    biases = [rng.standard_normal((y, 1)) for y in sizes[1:]]
    path = tmp_path / "book.json"
    path.write_text(
        json.dumps(
            {
                "sizes": sizes,
                "weights": [w.tolist() for w in weights],
                "biases": [b.tolist() for b in biases],
                "cost": "CrossEntropyCost",
            }
        )
    )
    params, cost, activation = saving.load(path, dtype=np.float64)
    assert cost is costs.cross_entropy and activation is activations.sigmoid
    x = rng.random(6)
    want = x[:, None]
    for w, b in zip(weights, biases):  # the book's feedforward, column vectors
        want = 1 / (1 + np.exp(-(w @ want + b)))
    with jax.enable_x64(True):
        np.testing.assert_allclose(network.feedforward(params, x), want[:, 0], rtol=1e-12)


def test_bad_files_are_reported_with_their_name(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match="bad.json"):
        saving.load(bad)
    bad.write_text(json.dumps({"sizes": [3, 2], "weights": [[[1, 2]]], "biases": [[[0]]]}))
    with pytest.raises(checkpoint.CheckpointError, match="do not match sizes"):
        saving.load(bad)
    good = {"sizes": [2, 1], "weights": [[[1, 2]]], "biases": [[0]]}
    for change, message in [
        # the book's network2 names its cost class; one nnjax lacks must not load as quadratic
        ({"cost": "LogLikelihoodCost"}, "the book's cost 'LogLikelihoodCost' is none of"),
        ({"nnjax": 5}, 'its "nnjax" entry is int, not an object'),
        ({"weights": [[[float("nan"), 2]]]}, "weights or biases hold NaN or inf"),
    ]:
        bad.write_text(json.dumps({**good, **change}))
        with pytest.raises(checkpoint.CheckpointError, match=f"bad.json.*{re.escape(message)}"):
            saving.load(bad)
    bad.write_text(json.dumps({**good, "cost": "CrossEntropyCost"}))
    assert saving.load(bad)[1] is costs.cross_entropy
    for networks in ([], network.init(jax.random.key(0), [2, 1]), [[]]):
        with pytest.raises(ValueError, match="networks must be a non-empty list of network3"):
            saving.save_layers(tmp_path / "n.npz", networks, {})
    with pytest.raises(checkpoint.CheckpointError, match="missing.npz"):
        checkpoint.read_meta(tmp_path / "missing.npz")
    damaged = tmp_path / "damaged.npz"  # np.load would offer to unpickle it
    damaged.write_bytes(b"\x80\x04not a zip archive" * 10)
    for read in (
        checkpoint.read_meta,
        lambda path: checkpoint.read_tree(path, {"a": 0}),
    ):
        with pytest.raises(
            checkpoint.CheckpointError,
            match=r"damaged.npz \(it is not an .npz file.*; delete it to start over",
        ) as e:
            read(damaged)
        assert "pickle" not in str(e.value)


def test_saved_chapter6_networks_load_ready_to_classify(tmp_path):
    """save_layers → load_networks rebuilds the layers from the settings (the softmax
    size from the arrays) and gives the same predictions, network by network."""
    from nnjax import layers, network3

    settings = {
        "layers": "conv:2:3x3,fc:6,softmax",
        "activation": "relu",
        "dropout": 0.5,
        "dropout_kind": "book",
        "init": "book",
        "dataset": "idx:somewhere",
    }
    net = tuple(layers.parse(settings["layers"], "relu", 0.5, "book", "book", 4))
    keys = jax.random.split(jax.random.key(0), 2)
    nets = [network3.init(k, net, (8, 8, 1)) for k in keys]

    def perturb(params, key):  # the softmax layer starts at zero
        leaves, treedef = jax.tree.flatten(params)
        return jax.tree.unflatten(
            treedef,
            [
                a + jax.random.normal(k, a.shape)
                for a, k in zip(leaves, jax.random.split(key, len(leaves)))
            ],
        )

    nets = [perturb(n, jax.random.key(10 + i)) for i, n in enumerate(nets)]
    x = jax.random.uniform(jax.random.key(2), (50, 64))
    saving.save_layers(tmp_path / "nets.npz", nets, settings)
    loaded_net, loaded, loaded_settings = saving.load_networks(tmp_path / "nets.npz")
    assert loaded_settings == settings and len(loaded) == 2
    assert [layer.name for layer in loaded_net] == [layer.name for layer in net]
    for original, params in zip(nets, loaded):
        want = network3.predict(original, net, x, (8, 8, 1))
        assert len(set(want.tolist())) > 1
        np.testing.assert_array_equal(network3.predict(params, loaded_net, x, (8, 8, 1)), want)
    saving.save_layers(tmp_path / "bad.npz", nets, {**settings, "layers": "fc:6,softmax"})
    with pytest.raises(checkpoint.CheckpointError, match="bad.npz"):
        saving.load_networks(tmp_path / "bad.npz")  # layers that do not fit the arrays


def test_checkpoint_round_trip_is_exact(tmp_path):
    """Two networks' parameters, optimizer states (a velocity) and best parameters come
    back bit for bit into fresh ones, with their epochs and each epoch's device."""
    sizes = [9, 5, 2]
    runs, fresh = [], []
    for seed in (3, 4):
        params = network.init(jax.random.key(seed), sizes)
        velocity = jax.tree.map(lambda p: p * 0.5, params)
        best = jax.tree.map(lambda p: p - 1, params)
        epochs = [EpochResult(e, 5 + e + seed, 10, 0.1, 3.0) for e in range(2)]
        runs.append(History(params, velocity, epochs, best_params=best))
        blank = network.init(jax.random.key(seed + 10), sizes)
        fresh.append(History(blank, jax.tree.map(jnp.zeros_like, blank)))
    run = checkpoint.Run(tmp_path / "run", {"eta": 3.0})
    assert run.resume(fresh, "cpu") == 0  # nothing saved yet
    run.save(runs, "TPU v9")
    again = checkpoint.Run(tmp_path / "run", {"eta": 3.0})
    assert again.resume(fresh, "cpu") == 2
    assert again.devices == ["TPU v9", "TPU v9"]
    for want, got in zip(runs, fresh):
        for field in ("params", "opt_state", "best_params"):
            a, b = getattr(want, field), getattr(got, field)
            for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
                np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
                assert v.dtype == u.dtype
        assert got.epochs == want.epochs
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.npz"]
    plain = checkpoint.Run(tmp_path / "plain", {})  # no best parameters: none kept
    plain.save([History(runs[0].params, runs[0].opt_state, runs[0].epochs)], "cpu")
    back = History(fresh[1].params, fresh[1].opt_state)
    assert checkpoint.Run(tmp_path / "plain", {}).resume([back], "cpu") == 2
    assert back.best_params is None and back.epochs == runs[0].epochs
    assert checkpoint.read_meta(tmp_path / "plain" / "checkpoint.npz")["best"] is False


def test_a_checkpoint_resumes_whatever_its_settings_and_dtype_but_not_other_counts(tmp_path):
    """Settings are compared as the file holds them (a tuple as a list); bfloat16 leaves,
    which .npy keeps as raw bytes, come back as bfloat16; resuming with the wrong number of
    Histories is the caller's doing and says so, without advice to delete the file."""
    params = network.init(jax.random.key(0), [4, 3, 2], dtype=jnp.bfloat16)
    run = History(params, jax.tree.map(jnp.zeros_like, params), [EpochResult(0, 5, 10, 0.1, 1.0)])
    checkpoint.Run(tmp_path / "run", {"sizes": (4, 3, 2)}).save([run], "cpu")
    fresh = History(jax.tree.map(jnp.ones_like, params), jax.tree.map(jnp.ones_like, params))
    assert checkpoint.Run(tmp_path / "run", {"sizes": (4, 3, 2)}).resume([fresh], "cpu") == 1
    for u, v in zip(jax.tree.leaves(run.params), jax.tree.leaves(fresh.params), strict=True):
        assert v.dtype == jnp.bfloat16
        np.testing.assert_array_equal(np.asarray(u, np.float32), np.asarray(v, np.float32))
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.Run(tmp_path / "run", {"sizes": [4, 3, 2]}).resume([fresh, fresh], "cpu")
    assert "holds a run of 1 network, not 2: resume it with as many" in str(e.value)
    assert "delete" not in str(e.value)
    with pytest.raises(ValueError, match="a checkpoint's settings are JSON"):
        checkpoint.Run(tmp_path / "run", {"eta": float("nan")})
    # the bytes of a bfloat16 leaf are not read as another two-byte dtype
    as_half = History(jax.tree.map(lambda a: a.astype(jnp.float16), params), fresh.opt_state)
    with pytest.raises(
        checkpoint.CheckpointError, match="is bfloat16 .*, where this run has float16"
    ):
        checkpoint.Run(tmp_path / "run", {"sizes": (4, 3, 2)}).resume([as_half], "cpu")


def test_killed_run_resumes_to_exactly_the_uninterrupted_result(tmp_path, flags=None):
    flags = flags or [
        "--hidden=100",
        "--epochs=10",
        "--cost=cross_entropy",
        "--eta=0.5",
        "--l2=5",
        "--halve_eta_after=2",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def run(*extra):
        return subprocess.run(
            [sys.executable, "-m", "experiments.mnist", *flags, *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    whole = run(f"--save={tmp_path / 'whole.json'}")
    assert whole.returncode == 0, whole.stderr

    ckpt = tmp_path / "ckpt"
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.mnist", *flags, f"--checkpoint_dir={ckpt}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in process.stdout:
        if line.startswith("Epoch 3:"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    resumed = run(f"--checkpoint_dir={ckpt}", f"--save={tmp_path / 'resumed.json'}")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming from" in resumed.stdout
    a = json.loads((tmp_path / "whole.json").read_text())
    b = json.loads((tmp_path / "resumed.json").read_text())
    assert a["weights"] == b["weights"] and a["biases"] == b["biases"]
    assert (
        whole.stdout.splitlines()[-1].split(". ")[:2]
        == resumed.stdout.splitlines()[-1].split(". ")[:2]
    )


@pytest.mark.parametrize(
    "optimizer",
    [["--momentum=0.5"], ["--optimizer=nesterov", "--momentum=0.5"], ["--optimizer=adam"]],
)
def test_killed_run_of_every_optimizer_resumes_exactly(tmp_path, optimizer):
    """The optimizer's whole state (velocities, Adam's moments and step count, η) is
    checkpointed, so a killed run of any optimizer resumes to the same bits."""
    eta = "--eta=0.001" if "--optimizer=adam" in optimizer else "--eta=0.1"
    test_killed_run_resumes_to_exactly_the_uninterrupted_result(
        tmp_path,
        [
            "--hidden=20",
            "--epochs=16",
            "--cost=cross_entropy",
            eta,
            "--train_size=20000",
            *optimizer,
        ],
    )


def test_run_resumes_only_with_the_same_settings(tmp_path):
    params = network.init(jax.random.key(0), [4, 3, 2])
    checkpoint.Run(tmp_path / "run", {"eta": 0.5}).save([History(params)], "cpu")
    with pytest.raises(checkpoint.CheckpointError, match=r"other settings \(eta\)"):
        checkpoint.Run(tmp_path / "run", {"eta": 0.1}).resume([History(params)], "cpu")
    with pytest.raises(checkpoint.CheckpointError, match=r"other settings \(seed\)"):
        checkpoint.Run(tmp_path / "run", {"eta": 0.5, "seed": 1}).resume([History(params)], "cpu")


def test_mnist_refuses_a_checkpoint_of_more_epochs_than_asked(tmp_path):
    flags = ["--train_size=500", f"--checkpoint_dir={tmp_path / 'run'}"]
    assert run_module("experiments.mnist", *flags, "--epochs=2").returncode == 0
    fewer = run_module("experiments.mnist", *flags, "--epochs=1")
    assert_failed_with_one_error(fewer, "--epochs=1")
    assert "already holds 2 epochs" in fewer.stderr


def test_mnist_resumes_only_with_the_same_arithmetic(tmp_path):
    """--kernel, --kernel=blocked's --block and the resolved --matmul_precision round
    differently, so a checkpoint resumes only with the same; --matmul_precision=auto is
    float32 on a CPU, the same arithmetic as the default."""
    flags = ["--train_size=500", "--hidden=10"]
    blocked = [*flags, f"--checkpoint_dir={tmp_path / 'blocked'}", "--kernel=blocked"]
    assert run_module("experiments.mnist", *blocked, "--block=4", "--epochs=1").returncode == 0
    other_block = run_module("experiments.mnist", *blocked, "--epochs=2")
    assert_failed_with_one_error(other_block, "other settings (--block)")
    plain = [*flags, f"--checkpoint_dir={tmp_path / 'plain'}"]
    assert run_module("experiments.mnist", *plain, "--epochs=1").returncode == 0
    other_kernel = run_module("experiments.mnist", *plain, "--epochs=2", "--kernel=blocked")
    assert_failed_with_one_error(other_kernel, "other settings (--block, --kernel)")
    auto = run_module("experiments.mnist", *plain, "--epochs=2", "--matmul_precision=auto")
    assert auto.returncode == 0 and "Resuming from" in auto.stdout, auto.stderr
    tf32 = run_module("experiments.mnist", *plain, "--epochs=3", "--matmul_precision=default")
    assert_failed_with_one_error(tf32, "other settings (--matmul_precision)")
