"""Data parallel training on 8 virtual CPU devices, and on 2 processes with CPU collectives.

JAX fixes its devices when it starts, so every check runs in a fresh Python process with
JAX_NUM_CPU_DEVICES set (the ``jax_num_cpu_devices`` option).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def env_with(devices: int) -> dict:
    return {**os.environ, "JAX_NUM_CPU_DEVICES": str(devices), "PYTHONUNBUFFERED": "1"}


def run_python(code: str, devices: int = 8, timeout: int = 300):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_with(devices),
    )


def test_data_parallel_epoch_matches_single_device_epoch():
    """N = 1, 2, 4, 8 devices against one (``nnjax.epoch.epoch`` with and without a mesh):
    203 examples in mini-batches of 8 (the last of 3, not divisible by N); then, on 4
    devices, L2 + momentum and L1 + cross-entropy + ReLU; then ``fit`` with and without a
    mesh."""
    result = run_python("""
        import json
        import jax, jax.numpy as jnp, numpy as np
        from nnjax import activations, costs, network, optimizers, parallel
        from tests import helpers

        k_params, k_x, k_y = jax.random.split(jax.random.key(0), 3)
        params = network.init(k_params, [12, 6, 4])
        x = jax.random.uniform(k_x, (203, 12))
        y = jax.random.randint(k_y, (203,), 0, 4)
        key = jax.random.key(7)
        cases = [dict(), dict(lmbda=5.0, momentum=0.5),
                 dict(lmbda=2.0, regularization="l1", cost=costs.cross_entropy,
                      activation=activations.relu)]
        out = {"devices": len(jax.devices()), "epoch": []}
        for case in cases:
            want = helpers.sgd_epoch(params, x, y, key, 2.0, 8, **case)
            for n in ((1, 2, 4, 8) if not case else (4,)):
                got = helpers.sgd_epoch(
                    params, x, y, key, 2.0, 8, mesh=parallel.make_mesh(n), **case)
                out["epoch"].append([n, len(jax.tree.leaves(got)), max(
                    float(jnp.max(jnp.abs(np.asarray(g) - np.asarray(w))))
                    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)))])
        runs = {}
        for name, mesh in (("single", None), ("mesh", parallel.make_mesh(4))):
            p, _, history = helpers.train(params, (x, y), epochs=3, mini_batch_size=8, eta=2.0,
                                        key=key, eval_data=(x, y), kernel="jax", mesh=mesh)
            runs[name] = ([r.correct for r in history.epochs],
                          [np.asarray(a).tolist() for a in jax.tree.leaves(p)])
        out["train"] = runs
        out["initial"] = [np.asarray(a).tolist() for a in jax.tree.leaves(params)]
        print(json.dumps(out))
    """)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert out["devices"] == 8
    assert len(out["epoch"]) == 6
    for n, leaves, diff in out["epoch"]:
        assert leaves >= 4 and diff < 1e-5, (n, diff)
    (single_correct, single), (mesh_correct, mesh) = out["train"]["single"], out["train"]["mesh"]
    assert len(single_correct) == 3 and single_correct == mesh_correct
    for a, b in zip(single, mesh):
        np.testing.assert_allclose(np.array(b), np.array(a), atol=1e-5)
    # Training changed the parameters: the comparison is not of two untouched copies.
    assert (
        max(
            float(np.max(np.abs(np.array(a) - np.array(w)))) for a, w in zip(single, out["initial"])
        )
        > 1e-2
    )


def run_mnist(*flags, devices=8, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "experiments.mnist", *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env_with(devices),
    )


SMALL_RUN = ("--train_size=1000", "--epochs=2", "--mini_batch_size=20", "--eta=3.0")


def load_network(path):
    return [np.array(w) for w in json.loads(pathlib.Path(path).read_text())["weights"]]


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory):
    """The reference: the small run on one device, pure-JAX epoch."""
    out = tmp_path_factory.mktemp("single")
    result = run_mnist(
        *SMALL_RUN, "--kernel=jax", f"--save={out}/net.json", f"--metrics_out={out}/m.jsonl"
    )
    assert result.returncode == 0, result.stderr
    return out


def assert_same_run(run_dir, reference_dir):
    want = [json.loads(l) for l in (reference_dir / "m.jsonl").read_text().splitlines()]
    got = [json.loads(l) for l in (run_dir / "m.jsonl").read_text().splitlines()]
    assert [g["epoch"] for g in got] == [w["epoch"] for w in want] == [0, 1]
    # Float summation order may move an example or two across a decision boundary.
    assert all(abs(g["correct"] - w["correct"]) <= 3 for g, w in zip(got, want)), (got, want)
    for g, w in zip(load_network(run_dir / "net.json"), load_network(reference_dir / "net.json")):
        np.testing.assert_allclose(g, w, atol=1e-4)


def test_runner_with_four_devices_matches_one_device(tmp_path, single_device_run):
    result = run_mnist(
        *SMALL_RUN,
        "--devices=4",
        f"--save={tmp_path}/net.json",
        f"--metrics_out={tmp_path}/m.jsonl",
    )
    assert result.returncode == 0, result.stderr
    assert "on 4 cpu devices" in result.stdout
    assert_same_run(tmp_path, single_device_run)


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--devices=3"], "--devices=3"),  # mini-batch 10
        (["--devices=16", "--mini_batch_size=16"], "--devices=16"),  # 8 devices
        (["--devices=all", "--mini_batch_size=12"], "--mini_batch_size=12"),
        (["--devices=two"], "--devices"),
        (["--devices=0"], "--devices"),
        (["--devices=2", "--kernel=blocked"], "--kernel=blocked trains on one device"),
        (["--num_processes=2"], "--coordinator_address"),
        (
            ["--coordinator_address=localhost:1", "--num_processes=2", "--process_id=2"],
            "--process_id",
        ),
    ],
)
def test_bad_device_flags_are_one_line_errors(flags, names):
    result = run_mnist(*flags, "--epochs=1", timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [l for l in result.stderr.splitlines() if l.startswith("error:")]
    assert errors and names in errors[0], result.stderr


def test_one_device_is_one_device():
    result = run_python(
        """
        from nnjax import parallel
        try:
            parallel.make_mesh(2)
        except ValueError as e:
            print(e)
        """,
        devices=1,
    )
    assert result.stdout.strip() == "devices=2 but only 1 cpu device is available", result.stderr


def test_library_rejects_bad_device_counts():
    result = run_python("""
        import jax
        from nnjax import network, optimizers, parallel
        from nnjax.fit import fit
        from nnjax.history import History

        x, y = jax.numpy.zeros((40, 4)), jax.numpy.zeros(40, int)
        params = network.init(jax.random.key(0), [4, 2])
        tx = optimizers.make("sgd")
        run = History(params, optimizers.init(tx, params, eta=1.0))
        for call in (lambda: parallel.make_mesh(16), lambda: parallel.make_mesh(0),
                     lambda: parallel.check_mini_batch(10, 3),
                     lambda: fit(network.model(), tx, run, (x, y), epochs=1, mini_batch_size=10,
                                 key=jax.random.key(0), mesh=parallel.make_mesh(4))):
            try:
                call()
            except ValueError as e:
                print(e)
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4 and lines[3] == "mini_batch_size=10 is not divisible by devices=4"
    assert lines[0] == "devices=16 but only 8 cpu devices are available"
    assert "devices" in lines[1]
    assert "mini_batch_size=10" in lines[2] and "devices=3" in lines[2]


def gloo_missing() -> str:
    """Why 2 CPU processes cannot train together here, or "" if they can."""
    try:
        from jax._src.lib import _jax
    except ImportError:
        return "jaxlib has no jax._src.lib._jax to look for CPU collectives in"
    if not hasattr(_jax, "make_gloo_tcp_collectives"):
        return "this jaxlib has no gloo CPU collectives (_jax.make_gloo_tcp_collectives)"
    return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(bool(gloo_missing()), reason=gloo_missing() or "gloo present")
def run_two_processes(module, flags, outputs, tmp_path):
    """``python -m module`` as two processes of 2 CPU devices each on localhost, as two hosts
    would run it (one mesh of 4 devices); each is given its own output paths
    (``outputs(directory)``, a list of flags) to see which writes. Returns each one's
    stdout, after checking that both succeeded."""
    address = f"localhost:{free_port()}"
    procs = []
    for pid in (0, 1):
        out = tmp_path / f"p{pid}"
        out.mkdir()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    module,
                    *flags,
                    "--devices=all",
                    f"--coordinator_address={address}",
                    "--num_processes=2",
                    f"--process_id={pid}",
                    *outputs(out),
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env_with(2),
            )
        )
    try:
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stderr
    assert list((tmp_path / "p1").iterdir()) == []  # only process 0 writes
    return [stdout for stdout, _ in results]


def test_two_processes_train_together_and_only_process_0_reports(tmp_path, single_device_run):
    out0, out1 = run_two_processes(
        "experiments.mnist",
        SMALL_RUN,
        lambda out: [f"--save={out}/net.json", f"--metrics_out={out}/m.jsonl"],
        tmp_path,
    )
    assert "on 4 cpu devices of 2 processes" in out0
    assert "Epoch 0:" in out0 and "Epoch 1:" in out0 and "Best:" in out0
    assert "Epoch" not in out1 and "nnjax:" not in out1
    assert_same_run(tmp_path / "p0", single_device_run)


def test_conv_and_sweep_run_on_two_processes_like_one(tmp_path):
    """experiments.conv and experiments.sweep take the same multi-host flags: two processes
    of 2 devices each train what one process does, and only process 0 prints and writes."""
    conv = ["--layers=fc:20,softmax", "--train_size=496", "--mini_batch_size=8", "--epochs=1"]
    one = subprocess.run(
        [sys.executable, "-m", "experiments.conv", *conv, "--activation=relu"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env_with(1),
    )
    assert one.returncode == 0, one.stderr
    for name in ("conv", "sweep"):
        (tmp_path / name).mkdir()
    out0, out1 = run_two_processes(
        "experiments.conv",
        [*conv, "--activation=relu"],
        lambda out: [f"--save={out}/nets.npz", f"--metrics_out={out}/m.jsonl"],
        tmp_path / "conv",
    )
    assert "(4 devices, data parallel)" in out0 and "nnjax:" not in out1 and "Epoch" not in out1
    final = [o.split("Final test accuracy")[1].split("%")[0] for o in (one.stdout, out0)]
    assert final[0] == final[1]
    assert (tmp_path / "conv" / "p0" / "nets.npz").exists()
    sweep = ["--seeds=0:2", "--train_size=1000", "--mini_batch_size=20", "--epochs=1"]
    out0, out1 = run_two_processes(
        "experiments.sweep", sweep, lambda out: [f"--jsonl={out}/s.jsonl"], tmp_path / "sweep"
    )
    assert "(4 devices, data parallel)" in out0 and "nnjax" not in out1 and "seed" not in out1
    assert len((tmp_path / "sweep" / "p0" / "s.jsonl").read_text().splitlines()) == 2


def test_chapter6_networks_train_data_parallel_like_one_device():
    """fit on a mesh of 1, 2, 4 devices (dropout and random shifts on, two networks by
    loop and by vmap) against one device: the same networks up to float rounding, and each
    device really gets m/N rows of every mini-batch."""
    result = run_python("""
        import json
        import jax, jax.numpy as jnp
        from nnjax import layers, network3, optimizers, parallel
        from nnjax.epoch import epoch
        from nnjax.fit import fit
        from nnjax.history import History

        net = tuple(layers.parse("conv:4:3x3,fc:16,softmax:4", activation="relu",
                                 p_dropout=0.3))
        shape = (8, 8, 1)
        x = jax.random.uniform(jax.random.key(1), (96, 64))
        y = jax.random.randint(jax.random.key(2), (96,), 0, 4)

        model, tx = network3.model(net, shape, random_shifts=True), optimizers.make("sgd")

        def trained(mesh, strategy):
            nets = [History(p, optimizers.init(tx, p, 0.1, 1.0 / 96)) for p in
                    (network3.init(jax.random.key(s), net, shape) for s in (0, 1))]
            fit(model, tx, nets, (x, y), eval_data=(x, y), epochs=2, mini_batch_size=8,
                keys=[jax.random.key(5), jax.random.key(6)], drop_last=True,
                strategy=strategy, mesh=mesh)
            return [n.params for n in nets]

        reference = trained(None, "loop")
        out = {}
        for n, strategy in ((1, "loop"), (2, "vmap"), (4, "loop")):
            params = trained(parallel.make_mesh(n), strategy)
            out[f"{n}-{strategy}"] = max(float(jnp.abs(a - b).max()) for a, b in
                                         zip(jax.tree.leaves(params), jax.tree.leaves(reference)))
        mesh = parallel.make_mesh(4)
        p = network3.init(jax.random.key(0), net, shape)
        hlo = epoch.lower(*parallel.replicate((p, optimizers.init(tx, p, 0.1), x, y), mesh),
                          jax.random.key(3), model=model, tx=tx, mini_batch_size=8,
                          drop_last=True, mesh=mesh).compile().as_text()
        out["split"] = "f32[2,8,8,1]" in hlo and "all-reduce" in hlo
        print(json.dumps(out))
    """)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out.pop("split") is True
    for case, difference in out.items():
        assert difference < 1e-5, (case, difference)


def run_with_devices(module, flags, devices_flags, devices=4):
    """``python -m module *flags --devices=D`` for each D of ``devices_flags``, on
    ``devices`` virtual CPU devices: the finished processes."""
    return [
        subprocess.run(
            [sys.executable, "-m", module, *flags, f"--devices={d}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env=env_with(devices),
        )
        for d in devices_flags
    ]


def assert_bad_devices(out, names):
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert out.returncode != 0 and errors and names in errors[0], out.stderr


def test_conv_runner_devices_flag():
    flags = [
        "--layers=fc:20,softmax",
        "--train_size=496",
        "--mini_batch_size=8",
        "--epochs=1",
        "--activation=relu",
    ]
    outs = run_with_devices("experiments.conv", flags, (4, 1, 3, 8))
    assert outs[0].returncode == 0 and outs[1].returncode == 0, outs[0].stderr + outs[1].stderr
    assert "4 devices" in outs[0].stdout
    final = [o.stdout.split("Final test accuracy")[1].split("%")[0] for o in outs[:2]]
    assert final[0] == final[1]
    assert_bad_devices(outs[2], "--devices=3")
    assert_bad_devices(outs[3], "--devices=8")


def test_sweep_runner_devices_flag():
    """experiments.sweep --devices=4 (vmap of 3 networks, each mini-batch split over 4
    devices) scores every network as on one device; a --devices that does not divide the
    mini-batch is one line naming both."""
    flags = ["--seeds=0:3", "--train_size=1000", "--mini_batch_size=20", "--epochs=2"]
    outs = run_with_devices("experiments.sweep", [*flags, "--strategy=vmap"], (4, 1, 3))
    assert outs[0].returncode == 0 and outs[1].returncode == 0, outs[0].stderr + outs[1].stderr
    assert "(4 devices, data parallel)" in outs[0].stdout

    def rows(out):
        return [line for line in out.stdout.splitlines() if line[:6].strip() in ("0", "1", "2")]

    assert len(rows(outs[0])) == 3 and rows(outs[0]) == rows(outs[1])
    assert_bad_devices(outs[2], "--devices=3")
