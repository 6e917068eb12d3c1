"""Sweeps: the grid, K networks in one program against single runs, chunking, memory, and
`python -m experiments.sweep` as a user runs it."""

import functools
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import chunks, costs, fit, grid, history, network, optimizers, parallel, sweep
from nnjax.epoch import epoch
from nnjax.history import EpochResult, History
from tests import helpers
from tests.helpers import assert_failed_with_one_error, assert_one_line, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZES = [20, 8, 4]


def problem(n, seed=0, sizes=SIZES):
    k_x, k_y = jax.random.split(jax.random.key(100 + seed))
    x = jax.random.uniform(k_x, (n, sizes[0]), jnp.float32)
    y = jax.random.randint(k_y, (n,), 0, sizes[-1]).astype(jnp.int32)
    return x, y


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


# --- the grid ----------------------------------------------------------------------------


def test_parse_seeds_ranges_and_lists():
    assert grid.parse_seeds("0:4") == [0, 1, 2, 3]
    assert grid.parse_seeds("0:3, 10,7") == [0, 1, 2, 10, 7]
    assert grid.parse_seeds("5") == [5]
    # the largest sweep in linear time (the quadratic repeat check hung on such ranges), and its
    # bounds checked before a range is expanded
    assert len(grid.parse_seeds(f"0:{grid.MAX_NETWORKS}")) == grid.MAX_NETWORKS
    assert grid.parse_seeds(f"{2**31 - 1}") == [2**31 - 1]


@pytest.mark.parametrize(
    "text",
    ["5:2", "3:3", "a", "1:2:3", "1.5", "0:3,2", "-1", "", "1,,2", str(2**31), "0:2000000000"],
)
def test_parse_seeds_rejects_in_one_line(text):
    with pytest.raises(ValueError) as e:
        grid.parse_seeds(text)
    assert_one_line(e)


def test_parse_values():
    assert grid.parse_values("0.1,0.5,3") == [0.1, 0.5, 3.0]
    assert grid.parse_values("0, 5", float, positive=False) == [0.0, 5.0]
    assert grid.parse_values("1000,3000", int) == [1000, 3000]


@pytest.mark.parametrize(
    "text, kind, positive",
    [
        ("abc", float, True),
        ("-1", float, True),
        ("0", float, True),
        ("nan", float, False),
        ("inf", float, True),
        ("0.5,0.5", float, True),
        ("-0.1", float, False),
        ("10.5", int, True),
        ("0", int, True),
        ("", float, True),
    ],
)
def test_parse_values_rejects_in_one_line(text, kind, positive):
    with pytest.raises(ValueError) as e:
        grid.parse_values(text, kind, positive)
    assert_one_line(e)


def test_grid_is_the_product_with_seeds_adjacent():
    settings = grid.grid([0, 1, 2], [0.1, 3.0], [0.0, 5.0], [100, 200])
    assert len(settings) == len(set(settings)) == 3 * 2 * 2 * 2
    assert {(s.eta, s.lmbda, s.train_size) for s in settings} == {
        (e, l, n) for e in (0.1, 3.0) for l in (0.0, 5.0) for n in (100, 200)
    }
    assert [s.seed for s in settings[:6]] == [0, 1, 2, 0, 1, 2]
    assert settings[0] == grid.Setting(0, 0.1, 0.0, 100)


def test_pick_strategy():
    assert fit.pick_strategy("auto", 16, "cpu") == "loop"
    assert fit.pick_strategy("auto", 16, "gpu") == fit.pick_strategy("auto", 4, "tpu") == "vmap"
    assert fit.pick_strategy("auto", 1, "gpu") == "loop"
    assert fit.pick_strategy("vmap", 16, "cpu") == "vmap"
    assert fit.pick_strategy("loop", 16, "gpu") == "loop"
    with pytest.raises(ValueError):
        fit.pick_strategy("threads", 2)


# --- training ----------------------------------------------------------------------------


def single_run(seed, x, y, eta, lmbda, epochs, m, cost, init="normal"):
    """What experiments.mnist does for one seed, on the pure-JAX epoch."""
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = network.init(init_key, SIZES, init=init)
    for k in range(epochs):
        params = helpers.sgd_epoch(
            params, x, y, jax.random.fold_in(shuffle_key, k), eta, m, cost, lmbda=lmbda
        )
    return params


def test_vmapped_epoch_equals_single_runs():
    """Three networks, each its own seed, η and λ, on the first 53 of 60 examples in
    mini-batches of 5 (the last one partial), two epochs: each equals its own single run up
    to rounding, and the rows past the training-set size are never read."""
    x, y = problem(60)
    x = x.at[53:].set(jnp.nan)
    seeds, etas, lmbdas = [0, 7, 3], [0.5, 3.0, 1.0], [0.0, 5.0, 0.5]
    params, keys = sweep.init_networks(seeds, SIZES, "scaled")
    tx = optimizers.make("sgd")
    state = jax.vmap(tx.init)(params)
    state = optimizers.set_hyperparams(
        state, learning_rate=jnp.asarray(etas), weight_decay=jnp.asarray(lmbdas) / 53
    )
    model = network.model(costs.cross_entropy)
    for k in range(2):
        epoch_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, k)
        params, state = epoch(
            params,
            state,
            x[:53],
            y[:53],
            epoch_keys,
            model=model,
            tx=tx,
            mini_batch_size=5,
            stacked=True,
        )
    for i, (seed, eta, lmbda) in enumerate(zip(seeds, etas, lmbdas)):
        want = single_run(seed, x[:53], y[:53], eta, lmbda, 2, 5, costs.cross_entropy, "scaled")
        assert_trees_close(jax.tree.map(lambda a, i=i: a[i], params), want)


@functools.cache
def run(settings, strategy, **kwargs):
    x, y = problem(90)
    return sweep.run(
        settings,
        SIZES,
        (x, y),
        problem(40, seed=1),
        epochs=2,
        mini_batch_size=10,
        cost=costs.cross_entropy,
        strategy=strategy,
        keep_params=True,
        **kwargs,
    )


SETTINGS = tuple(grid.grid([0, 1], [0.5, 2.0], [0.0, 1.0], [90, 47]))


def test_loop_equals_vmap_in_the_order_of_the_settings():
    loop, vmapped = run(SETTINGS, "loop"), run(SETTINGS, "vmap")
    assert [s for s, _ in loop] == [s for s, _ in vmapped] == list(SETTINGS)
    for (_, a), (_, b) in zip(loop, vmapped):
        a_correct, b_correct = [r.correct for r in a.epochs], [r.correct for r in b.epochs]
        assert a.epochs[0].total == b.epochs[0].total == 40 and len(a_correct) == 2
        assert np.abs(np.subtract(a_correct, b_correct)).max() <= 1
        assert_trees_close(a.params, b.params)
    # Networks really differ: η, λ, seed and n each change the result.
    distinct = {tuple(np.asarray(r.params["biases"][0]).round(5)) for _, r in loop}
    assert len(distinct) == len(SETTINGS)


def test_chunked_equals_unchunked():
    progress = []
    whole = run(SETTINGS, "vmap")
    chunked = sweep.run(
        SETTINGS[:8],
        SIZES,
        problem(90),
        problem(40, seed=1),
        epochs=2,
        mini_batch_size=10,
        cost=costs.cross_entropy,
        strategy="vmap",
        chunk=3,
        keep_params=True,
        progress=progress.append,
    )
    assert [s for s, _ in chunked] == list(SETTINGS[:8])
    for (_, a), (_, b) in zip(whole, chunked):
        assert [r.correct for r in a.epochs] == [r.correct for r in b.epochs]
        assert_trees_close(a.params, b.params)
    assert any("chunk 3/3" in line for line in progress), progress
    # one program, compiled for the first epoch; the time left on every line but the last
    assert ["compile included" in line for line in progress] == [True] + [False] * 5
    assert all("left)" in line for line in progress[:-1]) and "left" not in progress[-1]


def test_the_time_left_is_at_the_rate_of_the_epochs_that_did_not_compile():
    work = sweep._Work(100)
    assert work.tick(10, 5.0, first=True) == "; about 45 s left"  # all it knows yet
    assert work.tick(10, 1.0, first=False) == "; about 8 s left"  # 0.1 s a unit
    assert work.tick(30, 3.0, first=True) == "; about 5 s left"  # another size compiles
    assert work.tick(50, 5.0, first=False) == ""


def test_split_evenly():
    assert chunks.split_evenly(5, 2) == [range(0, 2), range(2, 4), range(4, 5)]
    assert chunks.split_evenly(10, 4) == [range(0, 4), range(4, 8), range(8, 10)]
    assert chunks.split_evenly(7, 7) == [range(0, 7)]
    assert chunks.split_evenly(9, 8) == [range(0, 5), range(5, 9)]


def test_chunk_size_fits_the_budget():
    per = chunks.bytes_per_network([784, 30, 10], 10, 50000)
    base = chunks.EVAL_BATCH_BYTES
    assert chunks.chunk_size(1000, [784, 30, 10], 10, 50000, budget=base + 10 * per + 1) == 10
    assert chunks.chunk_size(1000, [784, 30, 10], 10, 50000, budget=base) == 1
    assert chunks.chunk_size(8, [784, 30, 10], 10, 50000, budget=1 << 40) == 8
    assert chunks.bytes_per_network([784, 100, 10], 10, 50000) > per
    assert chunks.available_bytes() > 0


def test_free_memory_reads_the_device_then_the_host():
    class Device:
        platform = "gpu"

        def memory_stats(self):
            return {"bytes_limit": 1000, "bytes_in_use": 300}

        def __str__(self):
            return "gpu:0"

    assert parallel.free_memory(Device()) == (700, "gpu:0")
    assert chunks.available_bytes(Device()) == 490
    have, where = parallel.free_memory()  # the CPU: the host's memory
    assert have > 0 and "machine" in where


def test_no_per_network_copy_of_the_data():
    """The compiled epoch of K networks needs far less than K copies of the training data
    (the naive vmap of ``x[perm]`` needs K × n × n_in floats), and no more than the
    estimate that sizes the chunks."""
    k, n, sizes = 32, 4000, [784, 30, 10]
    x, y = jnp.zeros((n, 784)), jnp.zeros((n,), jnp.int32)
    params, keys = sweep.init_networks(range(k), sizes)
    tx = optimizers.make("sgd")
    compiled = epoch.lower(
        params,
        jax.vmap(tx.init)(params),
        x,
        y,
        keys,
        model=network.model(),
        tx=tx,
        mini_batch_size=10,
        stacked=True,
    ).compile()
    memory = compiled.memory_analysis()
    if memory is None:
        pytest.skip("this backend gives no memory analysis")
    assert memory.temp_size_in_bytes < k * n * 784 * 4 / 10
    assert memory.temp_size_in_bytes <= k * chunks.bytes_per_network(sizes, 10, n)


def test_summarise_and_best_epoch():
    s = [grid.Setting(seed, 0.5, 0.0, 100) for seed in range(3)] + [grid.Setting(0, 3.0, 0.0, 100)]

    def run_of(correct):
        return History(
            None, epochs=[EpochResult(e, c, 10, 0.0, 0.5) for e, c in enumerate(correct)]
        )

    results = [
        (s[0], run_of((5, 8, 8, 7))),
        (s[1], run_of((6, 6, 9, 9))),
        (s[2], run_of((7, 7, 7, 7))),
        (s[3], run_of((1, 2, 3, 4))),
    ]
    assert [r.best.epoch for _, r in results] == [1, 2, 0, 3]
    d = grid.record(*results[0])
    assert (d["best_accuracy"], d["best_epoch"], d["final_accuracy"]) == (0.8, 1, 0.7)
    assert d["accuracies"] == [0.5, 0.8, 0.8, 0.7] and d["eta"] == 0.5
    first, second = grid.summarise(results)
    assert (first.eta, first.seeds, second.eta, second.seeds) == (0.5, 3, 3.0, 1)
    assert first.best_mean == pytest.approx(0.8) and first.best_sd == pytest.approx(0.1)
    assert first.final_mean == pytest.approx(np.mean([0.7, 0.9, 0.7]))
    assert first.final_sd == pytest.approx(np.std([0.7, 0.9, 0.7], ddof=1))
    assert first.epoch_means == pytest.approx((0.6, 0.7, 0.8, 0.7666667))
    assert second.best_sd == 0.0 and second.epoch_sds == (0.0,) * 4


# --- the runner --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--seeds=5:2"], "--seeds"),
        (["--eta=abc"], "--eta"),
        (["--eta=-1"], "--eta"),
        (["--l2=0.1,0.1"], "--l2"),
        (["--train_size=1000,60000"], "--train_size"),
        (["--chunk=0"], "--chunk"),
        (["--png=/nonexistent/dir/a.png"], "--png"),
        (["--strategy=threads"], "--strategy"),
    ],
)
def test_bad_flags_are_one_line_naming_the_flag(flags, names):
    result = run_module("experiments.sweep", *flags, "--epochs=1", timeout=120)
    assert_failed_with_one_error(result, names)


def test_sweep_learns_and_each_network_is_its_single_run(tmp_path):
    """Two η × two seeds on 2,000 images: every network learns, the files are written, and
    a network's accuracies are those of `experiments.mnist` with its flags."""
    jsonl, png = tmp_path / "sweep.jsonl", tmp_path / "sweep.png"
    flags = ["--cost=cross_entropy", "--init=scaled", "--train_size=2000", "--epochs=3"]
    result = run_module(
        "experiments.sweep",
        *flags,
        "--eta=0.1,0.5",
        "--seeds=0:2",
        "--strategy=vmap",
        "--chunk=3",
        f"--jsonl={jsonl}",
        f"--png={png}",
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(l) for l in jsonl.read_text().splitlines()]
    assert sorted((r["eta"], r["seed"]) for r in rows) == [(0.1, 0), (0.1, 1), (0.5, 0), (0.5, 1)]
    for r in rows:
        assert r["total"] == 10000 and len(r["accuracies"]) == 3 and r["train_size"] == 2000
        assert r["best_accuracy"] == max(r["accuracies"]) == r["accuracies"][r["best_epoch"]]
        assert r["final_accuracy"] == r["accuracies"][-1]
        assert r["best_accuracy"] > 0.75, r  # 10% is chance
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "chunk 2/2" in result.stdout and "± " in result.stdout

    single = run_module("experiments.mnist", *flags, "--eta=0.5", "--seed=1", "--kernel=jax")
    assert single.returncode == 0, single.stderr
    correct = [int(l.split()[2]) for l in single.stdout.splitlines() if l.startswith("Epoch ")]
    swept = next(r for r in rows if (r["eta"], r["seed"]) == (0.5, 1))
    assert np.abs(np.subtract(correct, [round(a * 10000) for a in swept["accuracies"]])).max() <= 2


# --- networks that diverge ---------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["vmap", "loop"])
def test_a_diverged_network_stops_and_the_others_go_on(strategy):
    """λ = 1e30 sends one network's weights to inf in epoch 0: it stops there with the
    parameters it started from, named last to ``on_result``; the other networks train as
    they would alone."""
    settings = grid.grid([0, 1], [0.5], [0.0, 1e30], [90])
    seen = []
    results = sweep.run(
        settings, SIZES, problem(90), problem(40, seed=1), epochs=2, mini_batch_size=10,
        strategy=strategy, keep_params=True, on_result=lambda s, r: seen.append(s),
    )  # fmt: skip
    bad = [(s, r) for s, r in results if s.lmbda]
    good = [(s, r) for s, r in results if not s.lmbda]
    assert [s for s, _ in results] == list(settings)
    for s, r in bad:
        assert r.diverged == 0 and r.epochs == [] and "diverged in epoch 0" in r.stopped
        start, _ = sweep.init_networks([s.seed], SIZES)
        assert_trees_close(r.params, jax.tree.map(lambda a: a[0], start), rtol=0, atol=0)
    for _, r in good:
        assert r.diverged is None and len(r.epochs) == 2 and not r.stopped
    alone = sweep.run([good[1][0]], SIZES, problem(90), problem(40, seed=1), epochs=2,
                      mini_batch_size=10, keep_params=True)  # fmt: skip
    assert_trees_close(good[1][1].params, alone[0][1].params)
    assert seen[:2] == [s for s, _ in good] and sorted(seen[2:]) == sorted(s for s, _ in bad)


def test_a_sweep_whose_every_network_diverges_raises_naming_the_first():
    settings = grid.grid([0, 1], [0.5], [1e30], [90])
    with pytest.raises(history.Diverged) as e:
        sweep.run(settings, SIZES, problem(90), problem(40, seed=1), epochs=2,
                  mini_batch_size=10)  # fmt: skip
    assert assert_one_line(e) == (
        "training diverged in epoch 0: all 2 networks (the first: seed 0, η = 0.5, "
        "λ = 1e+30) have inf or NaN parameters; try a smaller η (or λ)"
    )


@pytest.mark.parametrize(
    "settings, eval_data, message",
    [
        ([grid.Setting(-1, 0.5, 0.0, 90)], True, "setting 0's seed -1 is outside 0"),
        ([grid.Setting(True, 0.5, 0.0, 90)], True, "setting 0's seed True is not an integer"),
        ([grid.Setting(0, -0.5, 0.0, 90)], True, "setting 0's η -0.5 is not positive"),
        ([grid.Setting(0, 0.5, -1.0, 90)], True, "setting 0's λ -1.0 is negative"),
        ([grid.Setting(0, 0.5, 0.0, 90)], False, "a sweep scores every network on eval_data"),
    ],
)
def test_a_setting_no_network_can_train_by_is_named(settings, eval_data, message):
    evaluation = problem(40, seed=1) if eval_data else None
    with pytest.raises(ValueError, match=message):
        sweep.run(settings, SIZES, problem(90), evaluation, epochs=1, mini_batch_size=10)
    with pytest.raises(TypeError, match="setting 1 is a tuple, not a grid.Setting"):
        sweep.run([grid.Setting(0, 0.5, 0.0, 90), (1, 0.5, 0.0, 90)], SIZES, problem(90),
                  problem(40, seed=1), epochs=1, mini_batch_size=10)  # fmt: skip


def test_record_and_summary_leave_out_diverged_networks():
    s = [grid.Setting(seed, 0.5, 0.0, 100) for seed in range(3)]
    finished = History(None, epochs=[EpochResult(e, c, 10, 0.0, 0.5) for e, c in enumerate((6, 8))])
    later = History(None, epochs=[EpochResult(0, 9, 10, 0.0, 0.5)], diverged=1)
    at_once = History(None, diverged=0)
    d = grid.record(s[1], later)
    assert (d["best_accuracy"], d["final_accuracy"], d["diverged_epoch"]) == (0.9, 0.9, 1)
    d = grid.record(s[2], at_once)
    assert (d["best_accuracy"], d["best_epoch"], d["final_accuracy"], d["accuracies"]) == (
        None, None, None, []
    )  # fmt: skip
    assert "diverged_epoch" not in grid.record(s[0], finished)
    (summary,) = grid.summarise(list(zip(s, [finished, later, at_once])))
    assert (summary.seeds, summary.diverged, summary.best_mean) == (1, 2, 0.8)
    assert summary.epoch_means == pytest.approx((0.6, 0.8))
    (none,) = grid.summarise([(s[2], at_once)])
    assert (none.seeds, none.diverged, none.epoch_means) == (0, 1, ())
    assert np.isnan(none.best_mean)


def test_sweep_runner_reports_diverged_networks_and_goes_on(tmp_path):
    jsonl, png = tmp_path / "s.jsonl", tmp_path / "s.png"
    result = run_module(
        "experiments.sweep", "--train_size=1000", "--epochs=1", "--seeds=0:2", "--l2=0,1e30",
        f"--jsonl={jsonl}", f"--png={png}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("diverged in epoch 0 (inf or NaN parameters)") == 2
    assert "(2 diverged, not counted)" in result.stdout
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert sorted((r["lmbda"], r.get("diverged_epoch")) for r in rows) == [
        (0.0, None), (0.0, None), (1e30, 0), (1e30, 0)
    ]  # fmt: skip
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("strategy", ["vmap", "loop"])
def test_a_network_that_diverges_later_keeps_its_last_finite_epoch(strategy):
    """λ = 1e5 diverges in epoch 1: the network keeps exactly what one epoch of training
    left (parameters and optimizer state), and its first epoch's result."""
    settings = grid.grid([0], [0.5], [0.0, 1e5], [90])
    kwargs = dict(mini_batch_size=10, strategy=strategy, keep_params=True)
    both = sweep.run(settings, SIZES, problem(90), problem(40, seed=1), epochs=3, **kwargs)
    (_, good), (_, bad) = both
    assert (good.diverged, bad.diverged, len(bad.epochs)) == (None, 1, 1)
    (_, one), _ = sweep.run(
        [settings[1], settings[0]], SIZES, problem(90), problem(40, seed=1), epochs=1, **kwargs
    )
    assert [(e.epoch, e.correct) for e in bad.epochs] == [(e.epoch, e.correct) for e in one.epochs]
    assert_trees_close((bad.params, bad.opt_state), (one.params, one.opt_state), rtol=0, atol=0)


def test_progress_names_diverged_networks_and_chunks_that_all_diverged():
    settings = grid.grid([0, 1], [0.5], [0.0, 1e30], [90])
    said = []
    sweep.run(settings, SIZES, problem(90), problem(40, seed=1), epochs=1, mini_batch_size=10,
              strategy="vmap", chunk=4, progress=said.append)  # fmt: skip
    assert len(said) == 1 and "epoch 1/1, 2 networks (2 diverged), accuracy" in said[0]
    said.clear()
    sweep.run(settings, SIZES, problem(90), problem(40, seed=1), epochs=1, mini_batch_size=10,
              strategy="vmap", chunk=2, progress=said.append)  # fmt: skip
    assert "chunk 1/2: epoch 1/1, 2 networks, accuracy" in said[0]
    assert said[1] == "n=90, chunk 2/2: all 2 networks diverged (from epoch 0)"


def test_stopping_diverged_networks_is_not_checkpointed():
    """A checkpoint would not keep a network's stop, so fit refuses the two together."""
    params = network.init(jax.random.key(0), SIZES)
    tx = optimizers.make("sgd")
    run = History(params, optimizers.init(tx, params, eta=0.5))
    common = dict(epochs=1, mini_batch_size=10, key=jax.random.key(0))
    with pytest.raises(ValueError, match="cannot be checkpointed"):
        fit.fit(network.model(), tx, run, problem(20), on_divergence="stop",
                after_epoch=lambda runs: None, **common)  # fmt: skip
    with pytest.raises(ValueError, match="on_divergence must be raise or stop"):
        fit.fit(network.model(), tx, run, problem(20), on_divergence="ignore", **common)
