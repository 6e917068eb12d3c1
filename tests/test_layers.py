"""Chapter 6's layers: values against direct NumPy loops, gradients against finite
differences, the dropout identity, and one-line errors for bad specifications."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import conv, layers, network3
from tests.helpers import assert_one_line


def conv_pool_loop(x, w, b, pool, act):
    """network3's ConvPoolLayer by plain loops: valid cross-correlation, max-pool
    (ignore_border), bias, activation. x (N, H, W, C), w (kh, kw, C, F)."""
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    out = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j, :] = np.einsum("nabc,abcf->nf", x[:, i : i + kh, j : j + kw, :], w)
    ph, pw = pool
    pooled = np.zeros((n, oh // ph, ow // pw, f))
    for i in range(oh // ph):
        for j in range(ow // pw):
            pooled[:, i, j, :] = out[:, i * ph : (i + 1) * ph, j * pw : (j + 1) * pw, :].max(
                axis=(1, 2)
            )
    return act(pooled + b)


@pytest.mark.parametrize(
    "shape, filters, kernel, pool",
    [
        ((2, 8, 8, 1), 3, (5, 5), (2, 2)),
        ((3, 9, 7, 2), 4, (3, 2), (2, 2)),  # ragged pool border, non-square everything
        ((1, 6, 6, 3), 2, (3, 3), (1, 1)),
    ],
)
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "linear"])
def test_conv_pool_matches_numpy_loop(shape, filters, kernel, pool, activation):
    layer = layers.conv_pool(filters, kernel, pool, activation)
    params, out_shape = layer.init(jax.random.key(0), shape[1:])
    x = np.asarray(jax.random.normal(jax.random.key(1), shape))
    y = jax.jit(lambda p, x: layer.apply(p, x, None, False))(params, jnp.asarray(x))
    act = {
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "relu": lambda z: np.maximum(z, 0),
        "linear": lambda z: z,
    }[activation]
    expected = conv_pool_loop(x, np.asarray(params["w"]), np.asarray(params["b"]), pool, act)
    assert y.shape == (shape[0], *out_shape) == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "x_shape, w_shape",
    [
        ((4, 12, 12, 20), (5, 5, 20, 40)),
        ((3, 28, 28, 1), (5, 5, 1, 20)),  # one channel: the offset-major product
        ((2, 9, 7, 1), (3, 2, 1, 4)),
    ],
)
def test_conv2d_paths_agree(x_shape, w_shape):
    """The CPU's im2col product and XLA's convolution compute the same thing, and so do
    their gradients."""
    x = jax.random.normal(jax.random.key(0), x_shape)
    w = jax.random.normal(jax.random.key(1), w_shape)
    np.testing.assert_allclose(
        conv.conv2d_im2col(x, w), conv.conv2d_xla(x, w), rtol=1e-4, atol=1e-4
    )

    def grad(f):
        return jax.grad(lambda w, x: jnp.sum(jnp.sin(f(x, w))), argnums=(0, 1))(w, x)

    for a, b in zip(grad(conv.conv2d_im2col), grad(conv.conv2d_xla)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def test_conv_layers_convolve_as_asked():
    """Every ``convolution`` gives the same network (loss and gradients): they differ in
    speed and float rounding only. The layer really uses the one asked for: its lowered
    program holds a convolution for xla and none for im2col (on the CPU, auto is im2col)."""
    spec, shape = "conv:3:5x5,conv:4:3x3,fc:8,softmax", (14, 14, 1)
    x = jax.random.uniform(jax.random.key(1), (6, 196))
    y = jnp.arange(6) % 10
    params = network3.init(jax.random.key(0), tuple(layers.parse(spec)), shape)
    results = {}
    for convolution in conv.CONVOLUTIONS:
        net = tuple(layers.parse(spec, "relu", convolution=convolution))

        def loss(p, net=net):
            return network3.loss(p, net, x, y, shape, jax.random.key(2))

        results[convolution] = jax.value_and_grad(loss)(params)
        hlo = jax.jit(loss).lower(params).as_text()
        assert ("convolution" in hlo) == (convolution == "xla"), convolution
    for convolution in ("xla", "im2col"):
        np.testing.assert_allclose(results[convolution][0], results["auto"][0], rtol=1e-5)
        for a, b in zip(
            jax.tree.leaves(results[convolution][1]), jax.tree.leaves(results["auto"][1])
        ):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_auto_convolution_is_im2col_on_cpus_and_cuda_gpus():
    """``auto`` lowers to im2col (no convolution op) for the CPU and CUDA GPUs, where it is
    the faster, and to XLA's convolution for TPUs and ROCm; exported for each platform
    without needing its hardware."""
    x, w = jnp.ones((2, 12, 12, 3)), jnp.ones((5, 5, 3, 4))
    for platform, convolves in (("cpu", False), ("cuda", False), ("tpu", True), ("rocm", True)):
        exported = jax.export.export(jax.jit(conv.conv2d), platforms=(platform,))(x, w)
        assert ("stablehlo.convolution" in exported.mlir_module()) == convolves, platform


def finite_difference_check(f, params, eps=1e-6, samples=6, seed=0):
    """Compares jax.grad(f) with central differences at a few random coordinates of every
    leaf of ``params`` (float64)."""
    f = jax.jit(f)
    grads = jax.jit(jax.grad(f))(params)
    leaves, tree = jax.tree.flatten(params)
    rng = np.random.default_rng(seed)
    for index, (leaf, g) in enumerate(zip(leaves, jax.tree.leaves(grads))):
        for flat in rng.choice(leaf.size, min(samples, leaf.size), replace=False):
            pos = np.unravel_index(flat, leaf.shape)
            bumped = [
                [l.at[pos].add(s * eps) if i == index else l for i, l in enumerate(leaves)]
                for s in (1, -1)
            ]
            plus, minus = (f(jax.tree.unflatten(tree, b)) for b in bumped)
            numeric = (plus - minus) / (2 * eps)
            assert abs(float(g[pos]) - float(numeric)) <= 1e-6 + 1e-5 * abs(float(numeric)), (
                index,
                pos,
                float(g[pos]),
                float(numeric),
            )


@pytest.mark.parametrize(
    "layer, in_shape",
    [
        (layers.conv_pool(3, (3, 3), (2, 2), "sigmoid"), (8, 8, 2)),
        (layers.conv_pool(2, (3, 3), (2, 2), "tanh"), (7, 6, 1)),
        (layers.fully_connected(5, "sigmoid"), (6,)),
        (layers.fully_connected(4, "tanh", p_dropout=0.5), (3, 3, 1)),
        (layers.fully_connected(4, "relu", p_dropout=0.3, dropout="inverted"), (6,)),
        (layers.softmax(3, p_dropout=0.5), (6,)),
    ],
)
def test_layer_gradients_match_finite_differences_float64(layer, in_shape):
    with jax.enable_x64(True):
        params, _ = layer.init(jax.random.key(0), in_shape)
        params = jax.tree.map(
            lambda p: p + 0.3 * jax.random.normal(jax.random.key(2), p.shape, jnp.float64), params
        )
        x = jax.random.normal(jax.random.key(1), (3, *in_shape), jnp.float64)
        key = jax.random.key(3)  # the same dropout mask in every evaluation

        def f(p):
            return jnp.sum(jnp.sin(layer.apply(p, x, key, True)))

        finite_difference_check(f, params)


def test_network_loss_gradient_matches_finite_differences_float64():
    """The whole of network3's training cost (dropout, softmax log-likelihood)."""
    with jax.enable_x64(True):
        net = layers.parse("conv:2:3x3,fc:5,softmax:3", "sigmoid", p_dropout=0.2)
        params = network3.init(jax.random.key(0), net, (8, 8, 1))
        params = jax.tree.map(
            lambda p: p + 0.1 * jax.random.normal(jax.random.key(4), p.shape, jnp.float64), params
        )
        x = jax.random.uniform(jax.random.key(1), (4, 64), jnp.float64)
        y = jnp.array([0, 1, 2, 1])
        finite_difference_check(
            lambda p: network3.loss(p, net, x, y, (8, 8, 1), jax.random.key(2)), params
        )


@pytest.mark.parametrize("kind", ["book", "inverted"])
def test_dropout_expected_training_output_equals_test_output(kind):
    """Averaged over dropout masks, the training-time output of a linear layer is its
    test-time output (the book scales w by 1 − p at test time; inverted dropout scales the
    kept inputs by 1/(1 − p) while training)."""
    layer = layers.fully_connected(3, "linear", p_dropout=0.4, dropout=kind, init="corrected")
    params, _ = layer.init(jax.random.key(0), (20,))
    x = jax.random.uniform(jax.random.key(1), (2, 20))
    keys = jax.random.split(jax.random.key(2), 20000)
    train = jax.vmap(lambda k: layer.apply(params, x, k, True))(keys)
    test = layer.apply(params, x, None, False)
    spread = float(jnp.std(train, axis=0).max()) / np.sqrt(len(keys))
    np.testing.assert_allclose(train.mean(axis=0), test, atol=5 * spread)
    # and it is not trivially so: one mask differs from the test output
    assert float(jnp.abs(train[0] - test).max()) > 10 * spread


def test_dropout_drops_inputs_with_probability_p():
    x = jnp.ones((200, 500))
    kept = layers.drop(x, jax.random.key(0), 0.3, "book")
    assert set(np.unique(kept)) == {0.0, 1.0}
    assert abs(float(kept.mean()) - 0.7) < 0.01
    inverted = layers.drop(x, jax.random.key(0), 0.3, "inverted")
    np.testing.assert_allclose(inverted, kept / 0.7)


def test_book_initialisation():
    """network3's: conv std √(1/(F·kh·kw/pool area)), fully connected std √(1/n_out) (its bug),
    or √(1/n_in) corrected; biases N(0, 1); softmax zero."""
    key = jax.random.key(0)
    c, _ = layers.conv_pool(40, (5, 5), (2, 2)).init(key, (12, 12, 20))
    assert abs(float(jnp.std(c["w"])) - np.sqrt(4 / (40 * 25))) < 0.003
    assert abs(float(jnp.std(c["b"])) - 1) < 0.4
    book, _ = layers.fully_connected(1000).init(key, (640,))
    fixed, _ = layers.fully_connected(1000, init="corrected").init(key, (640,))
    assert abs(float(jnp.std(book["w"])) - np.sqrt(1 / 1000)) < 0.0005
    assert abs(float(jnp.std(fixed["w"])) - np.sqrt(1 / 640)) < 0.0005
    assert abs(float(jnp.std(book["b"])) - 1) < 0.1
    s, _ = layers.softmax(10).init(key, (1000,))
    assert not jnp.any(s["w"]) and not jnp.any(s["b"])


def test_network_shapes_follow_the_layers():
    net = layers.parse("conv:20:5x5,conv:40:5x5,fc:100,softmax")
    params = network3.init(jax.random.key(0), net, (28, 28, 1))
    assert [p["w"].shape for p in params] == [(5, 5, 1, 20), (5, 5, 20, 40), (640, 100), (100, 10)]
    z = network3.apply(params, net, jnp.zeros((3, 784)), (28, 28, 1))
    assert z.shape == (3, 10)
    # The softmax layer starts at zero (every prediction 0): perturb every parameter so
    # that the predictions differ and a chunk out of order would show.
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    params = jax.tree.unflatten(
        treedef, [p + 0.3 * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
    )
    x = jax.random.uniform(jax.random.key(1), (1203, 784))
    expected = np.argmax(np.asarray(network3.apply(params, net, x, (28, 28, 1))), axis=1)
    assert len(set(expected[:500].tolist())) > 1 and len(set(expected[1000:].tolist())) > 1
    chunked = network3.predict_all(params, x, layers=tuple(net), input_shape=(28, 28, 1))
    assert chunked.dtype == jnp.int32
    np.testing.assert_array_equal(chunked, expected)  # 2 chunks of 500 and 203 left over


@pytest.mark.parametrize(
    "spec, words",
    [
        ("", "empty"),
        ("conv:20,,softmax", "empty"),
        ("pool:2,softmax", "unknown layer"),
        ("conv:twenty,softmax", "not a size"),
        ("conv:20:5x5x5,softmax", "KxK"),
        ("conv:0,softmax", "positive"),
        ("fc,softmax", "fc:SIZE"),
        ("fc:-3,softmax", "positive"),
        ("conv:20,fc:100", "last layer"),
        ("softmax,fc:100,softmax", "last layer"),
        ("softmax:2:3", "softmax"),
    ],
)
def test_bad_layer_specifications_are_one_line_errors(spec, words):
    with pytest.raises(layers.LayerError) as e:
        layers.parse(spec)
    assert words in assert_one_line(e)


@pytest.mark.parametrize(
    "spec, shape, words",
    [
        ("fc:10,conv:20,softmax", (28, 28, 1), "layer 2"),
        ("conv:20:30x30,softmax", (28, 28, 1), "does not fit"),
        ("conv:20,softmax", (784,), "image inputs"),
    ],
)
def test_layers_that_cannot_take_their_input_are_one_line_errors(spec, shape, words):
    with pytest.raises(layers.LayerError) as e:
        network3.init(jax.random.key(0), layers.parse(spec), shape)
    assert words in assert_one_line(e)


def test_bad_layer_options_are_one_line_errors():
    for make, words in (
        (lambda: layers.fully_connected(10, p_dropout=1.0), "dropout probability"),
        (lambda: layers.fully_connected(10, dropout="gaussian"), "dropout 'gaussian'"),
        (lambda: layers.fully_connected(10, init="xavier"), "initialisation 'xavier'"),
        (
            lambda: layers.parse("fc:10,softmax", activation="no_such_activation"),
            "activation 'no_such_activation'",
        ),
        (lambda: layers.parse("conv:2,softmax", convolution="fft"), "convolution 'fft'"),
        (lambda: layers.conv_pool(4, kernel=5), "kernel and pool are pairs, got 5, (2, 2)"),
        (
            lambda: layers.conv_pool(4, pool=(2, 0)),
            "sizes are positive integers, got 4 filters of (5, 5), pool (2, 0)",
        ),
        (lambda: layers.fully_connected(2.5), "got a fully connected layer of 2.5"),
        (lambda: layers.softmax("10"), "got a softmax layer of '10'"),
    ):
        with pytest.raises(ValueError) as e:
            make()
        assert words in assert_one_line(e)


def test_the_network_functions_name_what_they_were_given_wrong():
    net = layers.parse("fc:5,softmax")
    params = network3.init(jax.random.key(0), net, (4,))
    x = jnp.zeros((3, 4))
    for call, error, words in (
        (lambda: network3.init(jax.random.key(0), "fc:5,softmax", (4,)), TypeError, "layers.parse"),
        (lambda: network3.model("fc:5,softmax", (4,)), TypeError, "sequence of Layers"),
        (lambda: network3.predict(params, net, x[0], (4,)), ValueError, "x (4,) must be a batch"),
        (lambda: network3.apply(params, net, x, (4,), training=True), ValueError, "PRNG key"),
        (
            lambda: network3.predict_all(params, x, layers=net, input_shape=(4,), batch=0),
            ValueError,
            "batch must be a positive integer",
        ),
    ):
        with pytest.raises(error) as e:
            call()
        assert words in assert_one_line(e)
    # a list for a shape is as good as a tuple
    got = network3.predict_all(params, x, layers=net, input_shape=[4], batch=2)
    np.testing.assert_array_equal(got, network3.predict(params, net, x, (4,)))


def test_numpy_integers_are_sizes():
    assert layers.fully_connected(np.int64(10)).name.startswith("fully connected 10")
    assert layers.softmax(np.int32(10)).name == "softmax 10"
    params = network3.init(jax.random.key(0), [layers.conv_pool(np.int64(2))], (8, 8, 1))
    assert params[0]["w"].shape == (5, 5, 1, 2)
