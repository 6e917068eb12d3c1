"""Chapter 6's networks: a list of ``nnjax.layers`` composed the way ``network3.py``'s
layer list is, as pure functions over a list of per-layer parameter dicts.

    layers = nnjax.layers.parse("conv:20:5x5,conv:40:5x5,fc:100,softmax", activation="relu")
    params = init(key, layers, (28, 28, 1))       # [{"w": ..., "b": ...}, ...]
    z = apply(params, layers, x, (28, 28, 1))     # x (N, 784) → z (N, 10)

The input ``x`` is a batch of flattened examples (N, prod(input_shape)), as ``nnjax.data``
gives them; the network reshapes it to (N, *input_shape) (NHWC for images).
"""

import functools
import math

import jax
import jax.numpy as jnp

from nnjax import costs, expand, inputs
from nnjax import layers as layers_lib
from nnjax.epoch import Model

Params = list  # [{"w": array, "b": array}, ...], one dict per layer


def init(key, layers, input_shape) -> Params:
    """Each layer's initial parameters, in order, for examples of shape ``input_shape``
    (e.g. (28, 28, 1)); raises ``layers.LayerError`` (one line, naming the layer) if a
    layer cannot take its input."""
    inputs.check_key(key)
    _check_layers(layers)
    shape = layers_lib.check_input_shape(input_shape)
    params = []
    for i, (layer, k) in enumerate(zip(layers, jax.random.split(key, len(layers)))):
        try:
            p, shape = layer.init(k, shape)
        except layers_lib.LayerError as e:
            raise layers_lib.LayerError(f"layer {i + 1}: {e}") from None
        params.append(p)
    return params


def _check_layers(layers) -> None:
    if isinstance(layers, str) or not all(isinstance(a, layers_lib.Layer) for a in layers):
        raise TypeError("layers must be a sequence of Layers: layers.parse(text) gives one")


def apply(params: Params, layers, x, input_shape, key=None, training: bool = False):
    """The output layer's weighted input z (N, n_out) for ``x`` (N, prod(input_shape)).

    With ``training=True`` the layers apply dropout, each with its own key split from ``key``;
    otherwise they scale as at test time and ``key`` is not used.
    """
    if jnp.ndim(x) != 2 or x.shape[1] != math.prod(input_shape):
        raise ValueError(
            f"x {jnp.shape(x)} must be a batch (N, {math.prod(input_shape)}) of flattened "
            f"{tuple(input_shape)} examples"
        )
    if training and key is None:
        raise ValueError("training=True draws dropout: it needs a PRNG key")
    a = x.reshape((x.shape[0], *input_shape))
    keys = jax.random.split(key, len(layers)) if training else [None] * len(layers)
    for layer, p, k in zip(layers, params, keys):
        a = layer.apply(p, a, k, training)
    return a


def loss(params: Params, layers, x, y, input_shape, key, cost: costs.Cost = costs.log_likelihood):
    """The training cost on the mini-batch ``x`` (m, n_in), labels ``y`` (m,), dropout drawn
    with ``key``: a scalar, ``cost`` of the last layer's weighted input z (network3's is the
    log-likelihood of softmax(z); any ``nnjax.costs`` cost applies its own output activation
    to z). network3's L2 term ½ (λ / number of mini-batches) Σ‖w‖² is the optimizer's weight
    decay (``nnjax.optimizers``)."""
    z = apply(params, layers, x, input_shape, key, training=True)
    return cost.fn(z, cost.output.fn(z), costs.one_hot(y, z.shape[-1], z.dtype))


def model(
    layers, input_shape, random_shifts: bool = False, cost: costs.Cost = costs.log_likelihood
) -> Model:
    """The network of ``layers`` (a sequence, as ``layers.parse`` returns) for examples of
    shape ``input_shape``, trained on ``cost`` (``loss``), as an ``epoch.Model``. With
    ``random_shifts`` each image of each mini-batch is first replaced by itself or one of its
    four one-pixel shifts, drawn afresh (``expand.random_shifts``). The same arguments give
    the same object, so compiled epochs are reused."""
    _check_layers(layers)
    return _model(tuple(layers), tuple(input_shape), random_shifts, cost)


@functools.cache
def _model(layers, input_shape, random_shifts, cost) -> Model:

    def train_loss(params, x, y, key):
        if random_shifts:
            key, shift_key = jax.random.split(key)
            x = expand.random_shifts(shift_key, x)
        return loss(params, layers, x, y, input_shape, key, cost)

    return Model(
        loss=train_loss,
        predict=lambda params, x: predict_all(params, x, layers=layers, input_shape=input_shape),
        name=layers_lib.describe(layers),
        classes=lambda params: jax.eval_shape(
            lambda p: apply(p, layers, jnp.zeros((1, math.prod(input_shape))), input_shape),
            params,
        ).shape[-1],
    )


def predict(params: Params, layers, x, input_shape):
    """The class the network assigns to each example of ``x`` (N, n_in): int (N,)."""
    return jnp.argmax(apply(params, layers, x, input_shape), axis=-1)


def predict_all(params: Params, x, *, layers, input_shape, batch: int = 500):
    """``predict`` over a large ``x`` (N, n_in) in chunks of ``batch`` examples (so the
    convolutions' unrolled patches stay small): int32 (N,)."""
    if not (inputs.is_whole(batch) and batch > 0):
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    return _predict_all(
        params, x, layers=tuple(layers), input_shape=tuple(input_shape), batch=batch
    )


@functools.partial(jax.jit, static_argnames=("layers", "input_shape", "batch"))
def _predict_all(params: Params, x, *, layers, input_shape, batch):
    n = x.shape[0]
    full = (n // batch) * batch
    out = []
    if full:
        chunks = x[:full].reshape(full // batch, batch, -1)
        out.append(
            jax.lax.map(lambda c: predict(params, layers, c, input_shape), chunks).reshape(-1)
        )
    if n - full:
        out.append(predict(params, layers, x[full:], input_shape))
    return jnp.concatenate(out).astype(jnp.int32)
