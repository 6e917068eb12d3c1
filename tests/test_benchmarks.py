"""The benchmarks' bad input: one line naming the flag, before any timing starts; and
benchmarks.backprop_speed run tiny."""

import pytest

from tests.helpers import assert_failed_with_one_error, run_module


@pytest.mark.parametrize(
    "module, flags, names",
    [
        ("conv_speed", ["--images=0"], "--images"),
        ("conv_speed", ["--repeats=0"], "--repeats"),
        ("conv_speed", ["--nets=nosuch"], "--nets: unknown 'nosuch'; choose from fc100"),
        ("epoch_speed", ["--epochs=0"], "--epochs"),
        ("epoch_speed", ["--seed=-1"], "--seed"),
        ("epoch_speed", ["--data_dir=/proc/nonexistent"], "/proc/nonexistent"),
        ("epoch_speed", ["--programs=2,3"], "--programs must be powers of two up to 32"),
        ("expand_speed", ["--repeats=0"], "--repeats"),
        ("data_parallel", ["--mini_batch_sizes=abc"], "--mini_batch_sizes"),
        ("data_parallel", ["--device_counts=2,0"], "--device_counts"),
        ("sweep_speed", ["--k=a,2"], "--k must be comma-separated integers, got 'a,2'"),
        ("sweep_speed", ["--strategies=foo"], "--strategies"),
        ("sweep_speed", ["--hidden=30,0"], "--hidden"),
        (
            "sweep_speed",
            ["--kernels=jax,cpp"],
            "--kernels: unknown 'cpp'; choose from jax, blocked",
        ),
        ("sweep_speed", ["--kernels=blocked", "--block=8,0"], "--block"),
        ("sweep_speed", ["--data_dtype=float32,float16"], "--data_dtype: unknown 'float16'"),
        ("sweep_speed", ["--kernels=jax", "--block=4"], "--block is for --kernels=blocked"),
        ("sweep_speed", ["--strategies=vmap,vmap"], "--strategies=vmap,vmap names vmap twice"),
        ("conv_speed", ["--unroll=1,,5"], "--unroll='1,,5' has an empty item"),
        ("flax_speed", ["--k=0"], "--k"),
        ("flax_speed", ["--flax_steps=0"], "--flax_steps"),
        ("expand_speed", ["--book_images=60000"], "--book_images"),
        ("conv_speed", ["stray"], "stray"),
        ("backprop_speed", ["--sizes=784"], "--sizes"),
        ("backprop_speed", ["--sizes=784,0,10"], "--sizes"),
        ("backprop_speed", ["--sizes=784,,10"], "--sizes"),
        ("backprop_speed", ["--mini_batch_sizes=0"], "--mini_batch_sizes"),
        ("backprop_speed", ["--mini_batch_sizes=ten"], "--mini_batch_sizes"),
        ("backprop_speed", ["--repeats=0"], "--repeats"),
        ("backprop_speed", ["--round_seconds=-1"], "--round_seconds"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(module, flags, names):
    result = run_module(f"benchmarks.{module}", *flags, timeout=120)
    assert_failed_with_one_error(result, names)
    assert len((result.stdout + result.stderr).strip().splitlines()) <= 2  # no docstring dump


def run_backprop_speed(*flags):
    return run_module("benchmarks.backprop_speed", *flags)


def test_backprop_speed_times_every_variant_for_every_mini_batch_size():
    result = run_backprop_speed(
        "--sizes=6,5,4,3", "--mini_batch_sizes=1,4", "--repeats=1", "--round_seconds=0"
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line[:5].strip().isdigit()]
    variants = ["book", "per-example", "matrix", "jax.grad"]
    assert [(r[0], r[1]) for r in rows] == [(m, v) for m in "14" for v in variants], rows


def test_backprop_speed_check_prints_each_layers_difference_in_float64():
    result = run_backprop_speed("--check", "--sizes=7,6,5,4", "--mini_batch_sizes=3,10")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line[:5].strip().isdigit()]
    assert [(r[0], r[1]) for r in rows] == [(m, l) for m in ("3", "10") for l in "234"], rows
    for _, _, w, dw, b, db in rows:
        assert float(w) > 0 and float(b) > 0
        assert float(dw) <= 1e-9 * float(w) and float(db) <= 1e-9 * float(b)


def test_backprop_speed_loops_give_the_batch_gradient():
    """The two per-example loops the benchmark times, against jax.grad of the mean cost."""
    import jax
    import numpy as np

    from benchmarks import backprop_speed
    from nnjax import backprop

    with jax.enable_x64(True):
        params, x, y = backprop_speed.problem([6, 5, 4, 3], 7, jax.numpy.float64, seed=0)
        reference = backprop.grad(params, x, y)
        calls = []

        def one_example(params, xi, yi):  # the loop must hand over single examples
            assert xi.shape == (6,) and yi.shape == (3,)
            calls.append(xi)
            return backprop.backprop(params, xi, yi)

        loops = [
            backprop_speed.per_example_loop(one_example)(params, x, y),
            backprop_speed.book_loop(params, x, y)(),
        ]
        assert len(calls) == 7
        np.testing.assert_array_equal(np.stack(calls), x)  # each example once, in order
        for got in loops:
            for u, v in zip(jax.tree.leaves(got), jax.tree.leaves(reference)):
                np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-10, atol=1e-14)


def test_backprop_speed_refuses_a_gradient_that_differs():
    import numpy as np

    from benchmarks import backprop_speed

    good = {"weights": [np.ones((3, 2)), np.ones((2, 3))], "biases": [np.ones(3), np.ones(2)]}
    bad = {**good, "biases": [np.ones(3), np.array([1.0, 1.01])]}
    np.testing.assert_allclose(backprop_speed.max_differences(bad, good), [(0, 0), (0, 0.01)])
    backprop_speed.check_same_gradient("same", good, good)
    with pytest.raises(SystemExit, match="layer 3: .*max \\|Δ ∂C/∂b\\| 0.01"):
        backprop_speed.check_same_gradient("bad", bad, good)


def table(stdout):
    """The rows of a benchmark's table: the lines that start with a number, split."""
    return [line.split() for line in stdout.splitlines() if line[:6].strip().isdigit()]


def test_traffic_model_counts_the_first_layer_and_the_mini_batch():
    from benchmarks.networks import SIZES, traffic

    x, w = 10 * 784 * 4, 784 * 30 * 4
    assert traffic(SIZES, 10) == 4 * x + 5 * w == 595_840
    assert traffic(SIZES, 10, block=8) == 5 * x + 5 * w // 8 == 215_600
    assert traffic(SIZES, 10, block=1) > traffic(SIZES, 10)  # blocking costs X reads
    # bfloat16 images: X's bytes halve, w's do not
    assert traffic(SIZES, 10, data_bytes=2) == 4 * x // 2 + 5 * w == 533_120
    assert traffic(SIZES, 10, block=16, data_bytes=2) == 5 * x // 2 + 5 * w // 16 == 107_800


def test_sweep_speed_times_each_kernel_block_and_data_dtype_with_its_bound():
    from benchmarks.networks import SIZES, traffic

    result = run_module(
        "benchmarks.sweep_speed", "--k=2", "--strategies=vmap", "--kernels=jax,blocked",
        "--block=2,4", "--train_size=200", "--epochs=1", "--bandwidth=100",
        "--data_dtype=float32,bfloat16",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    kernels = [(None, "jax"), (2, "blocked(2)"), (4, "blocked(4)")]
    dtypes = [(4, "float32"), (2, "bfloat16")]
    assert [(r[2], r[3]) for r in rows] == [(k, d) for _, k in kernels for _, d in dtypes], rows
    for r, (block, data_bytes) in zip(rows, [(b, n) for b, _ in kernels for n, _ in dtypes]):
        kb, bound = float(r[8]), float(r[9])
        assert float(r[4]) > 0
        assert kb == round(traffic(SIZES, 10, block, data_bytes=data_bytes) / 1000)
        assert bound == pytest.approx(100e9 / (kb * 1000 * 20), rel=0.01)  # 20 steps


def test_sweep_speed_refuses_images_that_bfloat16_would_round():
    import numpy as np

    from benchmarks import networks  # no flags: importing sweep_speed here would define them

    pixels = np.arange(256, dtype=np.float32) / 256  # the book's k/256: exact
    np.testing.assert_array_equal(np.asarray(networks.stored(pixels, "bfloat16")), pixels)
    with pytest.raises(ValueError, match="^bfloat16: 128 of 256 training pixels"):
        networks.stored(pixels + 1 / 512, "bfloat16")


def test_flax_speed_times_nnjax_and_flax_where_it_is_installed():
    result = run_module(
        "benchmarks.flax_speed", "--k=1,2", "--train_size=300", "--flax_steps=5", "--repeats=1"
    )
    assert result.returncode == 0, result.stderr
    variants = [(r[0], " ".join(r[1:-3] if r[0] == "1" else r[1:-2])) for r in table(result.stdout)]
    want = [("1", "nnjax"), ("2", "nnjax"), ("2", "nnjax, blocked(8)")]
    try:
        import flax  # noqa: F401
    except ImportError:
        assert "Flax not installed: its rows are left out" in result.stdout
        assert variants == want, variants
    else:
        assert [v for v in variants if v[1].startswith("nnjax")] == want, variants
        assert len(variants) == 7, variants
