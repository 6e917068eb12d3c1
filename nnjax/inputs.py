"""What ``nnjax.fit.fit`` checks of its arguments before it compiles anything: each check
raises a ValueError (TypeError for a wrong kind of object) that names the argument and says
what is wrong, rather than an error from deep inside JAX, or a run that trains on garbage."""

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import optimizers
from nnjax.epoch import Model, is_whole  # noqa: F401 (is_whole: nnjax.inputs.is_whole too)
from nnjax.history import History


def check_model(model, tx) -> None:
    """TypeError unless ``model`` is an ``epoch.Model`` and ``tx`` an optax transformation."""
    if not isinstance(model, Model):
        hint = " (call it: network.model())" if callable(model) else ""
        raise TypeError(f"model must be an epoch.Model, got {type(model).__name__}{hint}")
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            f"tx must be an optax transformation (optimizers.make(...)), got {type(tx).__name__}"
        )


def check_key(key) -> None:
    """ValueError unless ``key`` is a PRNG key: ``jax.random.key(seed)``, or a raw
    ``jax.random.PRNGKey(seed)`` of the default implementation (uint32 (2,) for threefry)."""
    dtype, shape = getattr(key, "dtype", None), np.shape(key)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    raw = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape
    if not (typed and shape == () or dtype == np.uint32 and shape == raw):
        what = type(key).__name__ if dtype is None else f"{dtype} {shape}"
        raise ValueError(f"key must be a PRNG key, jax.random.key(seed); got {what}")


def check_runs(runs, tx) -> None:
    """ValueError unless every run has parameters and an optimizer state that ``tx`` made
    for them (the same tree, the same shapes), whose η, if it has one, is set."""
    for i, r in enumerate(runs):
        if not isinstance(r, History):
            raise TypeError(f"runs must be History objects, got {type(r).__name__}")
        if r.params is None or r.opt_state is None:
            lacking = "parameters" if r.params is None else "optimizer state"
            raise ValueError(
                f"network {i}'s History has no {lacking}: "
                "History(params, optimizers.init(tx, params, eta=...))"
            )
        expected = jax.eval_shape(tx.init, r.params)
        got = jax.tree.structure(r.opt_state)
        same = got == jax.tree.structure(expected) and all(
            np.shape(a) == b.shape
            for a, b in zip(jax.tree.leaves(r.opt_state), jax.tree.leaves(expected))
        )
        if not same:
            raise ValueError(
                f"network {i}'s optimizer state is not the one tx makes for its parameters "
                "(another optimizer's, or another network's): "
                "History(params, optimizers.init(tx, params, eta=...)) with this tx"
            )
        eta = optimizers.hyperparam(r.opt_state, "learning_rate")
        if eta is not None and not np.all(np.asarray(eta) > 0):
            raise ValueError(
                f"network {i}'s η is {np.asarray(eta).tolist()}: it must be positive "
                "(optimizers.init(tx, params, eta=...) sets it)"
            )


def check_data(data, name: str, model: Model, params, scored: bool = False) -> int:
    """The number of examples of ``data``, a pair ``(x (N, ...), y (N, ...))`` of arrays,
    N > 0, x finite, whose x the network ``params`` of ``model`` takes; where it is
    ``scored`` (evaluation and test data), y shaped like the predictions; for a classifier
    (``model.classes``), x floating point and y its integer classes (N,). ValueError naming
    ``name`` otherwise."""
    try:
        x, y = data
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (x, y)") from None
    if not (hasattr(x, "shape") and hasattr(y, "shape")):
        raise ValueError(f"{name}'s x and y must be arrays (NumPy or JAX), not lists")
    x_shape, y_shape = np.shape(x), np.shape(y)
    if not x_shape or not y_shape or x_shape[0] != y_shape[0]:
        raise ValueError(f"{name}'s x {x_shape} and y {y_shape} hold different numbers of examples")
    if y_shape[0] == 0:
        raise ValueError(f"{name} holds no examples")
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    if model.classes is not None and not floating:
        raise ValueError(
            f"{name}'s x is {x.dtype}: the networks take floating-point inputs (pixels "
            "0-255 as x / 255, say)"
        )
    xp = np if isinstance(x, np.ndarray) else jnp  # where x is: no copy made to check it
    if floating and not bool(xp.isfinite(x).all()):
        raise ValueError(f"{name}'s x holds NaN or inf")
    try:
        predicted = jax.eval_shape(
            model.predict, params, jax.ShapeDtypeStruct((1, *x_shape[1:]), x.dtype)
        )
    except (TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{name}'s x {x_shape} does not fit the network ({first})") from None
    if model.classes is not None:
        _check_labels(y, name, model.classes(params))
    if scored and y_shape[1:] != predicted.shape[1:]:  # (N, 1) would broadcast against (N,)
        raise ValueError(
            f"{name}'s y {y_shape} is not shaped like the predictions, "
            f"{(y_shape[0], *predicted.shape[1:])}: one class per example"
        )
    return y_shape[0]


def _check_labels(y, name: str, classes: int) -> None:
    if not jnp.issubdtype(y.dtype, jnp.integer) or y.ndim != 1:
        raise ValueError(
            f"{name}'s y is {y.dtype} {tuple(y.shape)}: a classifier takes one integer class "
            "per example, (N,)" + (", not one-hot vectors" if y.ndim > 1 else "")
        )
    lo, hi = int(jnp.min(y)), int(jnp.max(y))
    if lo < 0 or hi >= classes:
        raise ValueError(
            f"{name}'s labels run from {lo} to {hi}, but the network has {classes} outputs "
            f"(classes 0 to {classes - 1})"
        )
