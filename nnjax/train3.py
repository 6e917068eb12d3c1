"""Training chapter 6's networks: network3's SGD as one compiled program per epoch, its
best-validation protocol, and ensembles of networks trained side by side.

Each step is network3's: w → w − η ∂C/∂w with C the mini-batch's mean negative
log-likelihood (dropout active) plus ½ (λ / number of mini-batches) Σ‖w‖² — so its λ = 0.1
is network2's λ = 1.0 at m = 10 (``nnjax.sgd.optimizer`` is network2's convention).
Optionally with the book's momentum (chapter 3's exercise; network3 has none).

network3 walks its mini-batches in the same order every epoch and drops a last partial one;
nnjax shuffles every epoch by default (``shuffle=False`` gives network3's order) and also
drops the partial mini-batch.
"""

import dataclasses
import functools
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nnjax import expand, network3, sgd, stopping
from nnjax.train import EpochResult


def optimizer(eta, l2_per_batch=0.0, momentum: float = 0.0) -> optax.GradientTransformation:
    """network3's update as an optax transformation of the mean mini-batch gradient: weight
    decay l2_per_batch · w on every layer's ``"w"`` (the gradient of ½ λ' Σ‖w‖²), then SGD
    with learning rate ``eta`` (or the book's momentum μ)."""

    def weights_only(params):
        return [{"w": True, "b": False} for _ in params]

    step = sgd.book_momentum(eta, momentum) if momentum else optax.sgd(eta)
    return optax.chain(optax.add_decayed_weights(l2_per_batch, mask=weights_only), step)


def init_state(params, momentum: float = 0.0):
    """The optimiser state ``sgd_epoch`` carries: empty, or zero velocities with momentum."""
    return optimizer(0.0, 0.0, momentum).init(params)


@functools.partial(
    jax.jit,
    static_argnames=(
        "layers",
        "input_shape",
        "mini_batch_size",
        "momentum",
        "shuffle",
        "random_shifts",
        "mesh",
        "unroll",
    ),
)
def sgd_epoch(
    params,
    opt_state,
    x,
    y,
    key,
    eta,
    lmbda,
    *,
    layers,
    input_shape,
    mini_batch_size: int,
    momentum: float = 0.0,
    shuffle: bool = True,
    random_shifts: bool = False,
    mesh=None,
    unroll: int = 1,
):
    """One epoch of network3's SGD over ``x`` (n, n_in), labels ``y`` (n,).

    ``key`` decides the shuffle, the dropout masks and (``random_shifts``: each image of each
    mini-batch replaced by itself or one of its four one-pixel shifts, drawn afresh) the data
    augmentation. ``lmbda`` is network3's λ: each step shrinks the weights by
    the factor 1 − η·λ / (n // m), n // m being the number of mini-batches.

    With a ``mesh`` (``nnjax.parallel.make_mesh``), every mini-batch is split over its
    devices along the batch axis and XLA partitions the step (GSPMD): each device computes
    its rows' share of the gradient and the shares are summed across devices. The dropout
    masks and shifts are the single-device ones (JAX's random bits do not depend on how an
    array is split), so the result is the single-device epoch's up to the order of float
    additions. ``mini_batch_size`` must be divisible by the number of devices.
    ``unroll`` steps are compiled into each iteration of the loop (``lax.scan``'s): the same
    result, fewer loop iterations — on a GPU at m = 10 each iteration's fixed cost counts.
    Returns ``(params, opt_state)``.
    """
    n = x.shape[0]
    steps = n // mini_batch_size
    shuffle_key, step_key = jax.random.split(key)
    if shuffle:
        batches, _ = sgd.mini_batches(shuffle_key, n, mini_batch_size)
    else:
        batches = jnp.arange(steps * mini_batch_size).reshape(steps, mini_batch_size)
    tx = optimizer(eta, lmbda / steps, momentum)
    grad = jax.grad(network3.loss)

    def step(carry, inputs):
        params, state = carry
        i, idx = inputs
        k = jax.random.fold_in(step_key, i)
        xb, yb = x[idx], y[idx]
        if mesh is not None:
            xb, yb = _split_over(mesh, xb), _split_over(mesh, yb)
        if random_shifts:
            k, shift_key = jax.random.split(k)
            xb = expand.random_shifts(shift_key, xb)
        g = grad(params, layers, xb, yb, input_shape, k)
        updates, state = tx.update(g, state, params)
        return (optax.apply_updates(params, updates), state), None

    (params, opt_state), _ = jax.lax.scan(
        step, (params, opt_state), (jnp.arange(steps), batches), unroll=unroll
    )
    return params, opt_state


@dataclasses.dataclass
class Network:
    """One network's training: its parameters now and at its best validation epoch, and
    every epoch's ``train.EpochResult`` (``correct``/``total`` on the validation data;
    ``test_correct``/``test_total`` in the epochs whose validation accuracy was at least
    the best so far — network3's protocol)."""

    params: list
    opt_state: object
    epochs: list = dataclasses.field(default_factory=list)
    best: Optional[EpochResult] = None  # the last epoch of best validation (network3's >=)
    best_params: Optional[list] = None  # the params after that epoch

    def record(self, result: EpochResult) -> None:
        """Appends an epoch; it becomes ``best`` if its validation score is at least the
        best so far."""
        self.epochs.append(result)
        if self.best is None or result.correct >= self.best.correct:
            self.best, self.best_params = result, self.params


def _on(mesh, *spec):
    """A sharding over ``mesh``'s devices, with XLA left to partition what follows (its
    axes as ``Auto``, whatever ``mesh`` says): ``spec`` as in ``PartitionSpec``."""
    auto = jax.sharding.Mesh(mesh.devices, mesh.axis_names)
    return jax.sharding.NamedSharding(auto, jax.sharding.PartitionSpec(*spec))


def _split_over(mesh, a):
    """``a`` constrained to be split along its first axis over every device of ``mesh``."""
    return jax.lax.with_sharding_constraint(a, _on(mesh, mesh.axis_names[0]))


STRATEGIES = ("auto", "vmap", "loop")


def pick_strategy(strategy: str, num_networks: int) -> str:
    """``"loop"`` (one network after another) or ``"vmap"`` (all in one program). ``auto``
    loops on the CPU, where XLA's batched matrix products are slower than unbatched ones,
    and vmaps elsewhere."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "auto":
        return "loop" if num_networks == 1 or jax.default_backend() == "cpu" else "vmap"
    return strategy


def stack(trees):
    """The pytrees ``trees`` (same structure) as one pytree whose leaves have a new leading
    axis of len(trees): K networks' params or optimizer states, ready for ``vmap``."""
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _unstack(tree, k: int):
    return [jax.tree.map(lambda a, i=i: a[i], tree) for i in range(k)]


def train(
    networks: list,
    layers,
    input_shape,
    train_data,
    validation_data,
    *,
    epochs: int,
    mini_batch_size: int,
    eta: float,
    keys,
    lmbda: float = 0.0,
    test_data=None,
    momentum: float = 0.0,
    shuffle: bool = True,
    random_shifts: bool = False,
    strategy: str = "auto",
    on_epoch: Optional[Callable] = None,
    after_epoch: Optional[Callable] = None,
    mesh=None,
    unroll: int = 1,
):
    """Trains every ``Network`` of ``networks`` for ``epochs`` epochs (continuing from
    ``len(network.epochs)``), network i shuffling and dropping out with
    ``jax.random.fold_in(keys[i], epoch)``.

    ``train_data``, ``validation_data`` and ``test_data`` are pairs ``(x (n, n_in), y (n,))``.
    After each epoch every network scores the validation data and, where that is at least
    its best so far, the test data (``Network.best``); ``on_epoch(i, EpochResult)`` is called
    for each, then ``after_epoch(networks)`` once (to checkpoint). ``strategy``
    (``pick_strategy``) trains the networks one after another or all at once with ``vmap``;
    both give the same results up to float rounding. With a ``mesh`` (one process's devices,
    ``nnjax.parallel.make_mesh``), data and networks are copied to every device and each
    mini-batch is split over them (``sgd_epoch``). An ``EpochResult``'s ``seconds`` is the
    epoch's training time per network. ``unroll``: steps per iteration of the epoch's loop
    (``sgd_epoch``). Returns ``(networks, compile_seconds)``.
    """
    k = len(networks)
    strategy = pick_strategy(strategy, k)
    put = jax.device_put if mesh is None else functools.partial(jax.device_put, device=_on(mesh))
    x, y = put(tuple(train_data))
    x_val, y_val = put(tuple(validation_data))
    x_test, y_test = put(tuple(test_data)) if test_data else (None, None)
    for net in networks:
        net.params, net.opt_state = put((net.params, net.opt_state))
    static = dict(
        layers=tuple(layers),
        input_shape=tuple(input_shape),
        mini_batch_size=mini_batch_size,
        momentum=momentum,
        shuffle=shuffle,
        random_shifts=random_shifts,
        mesh=mesh,
        unroll=unroll,
    )
    epoch_fn = functools.partial(sgd_epoch, **static)
    predict = functools.partial(
        network3.predict_all, layers=tuple(layers), input_shape=tuple(input_shape)
    )
    predict_many = jax.jit(jax.vmap(predict, in_axes=(0, None)))
    eta, lmbda = jnp.asarray(eta, x.dtype), jnp.asarray(lmbda, x.dtype)

    start = time.perf_counter()
    if strategy == "vmap":
        epoch_fn = jax.jit(jax.vmap(epoch_fn, in_axes=(0, 0, None, None, 0, None, None)))
        args = (
            stack([n.params for n in networks]),
            stack([n.opt_state for n in networks]),
            x,
            y,
            jnp.stack(list(keys)),
            eta,
            lmbda,
        )
    else:
        epoch_fn = jax.jit(epoch_fn)
        args = (networks[0].params, networks[0].opt_state, x, y, keys[0], eta, lmbda)
    epoch_fn = epoch_fn.lower(*args).compile()
    compile_seconds = time.perf_counter() - start

    def correct(predictions, labels):
        return np.asarray(jnp.sum(predictions == labels, axis=-1)).reshape(-1)

    first = min(len(n.epochs) for n in networks)
    for epoch in range(first, epochs):
        start = time.perf_counter()
        epoch_keys = [jax.random.fold_in(key, epoch) for key in keys]
        if strategy == "vmap":
            params, states = jax.block_until_ready(
                epoch_fn(
                    stack([n.params for n in networks]),
                    stack([n.opt_state for n in networks]),
                    x,
                    y,
                    jnp.stack(epoch_keys),
                    eta,
                    lmbda,
                )
            )
            for net, p, s in zip(networks, _unstack(params, k), _unstack(states, k)):
                net.params, net.opt_state = p, s
        else:
            for net, key in zip(networks, epoch_keys):
                net.params, net.opt_state = jax.block_until_ready(
                    epoch_fn(net.params, net.opt_state, x, y, key, eta, lmbda)
                )
        seconds = (time.perf_counter() - start) / k
        for i, net in enumerate(networks):  # before the epoch is reported or checkpointed
            stopping.check_finite(net.params, epoch, f"network {i}" if k > 1 else "the network")
        if strategy == "vmap":
            val = correct(predict_many(stack([n.params for n in networks]), x_val), y_val)
        else:
            val = [correct(predict(n.params, x_val), y_val)[0] for n in networks]
        for i, net in enumerate(networks):
            test = {}
            if x_test is not None and (net.best is None or val[i] >= net.best.correct):
                test = dict(
                    test_correct=int(correct(predict(net.params, x_test), y_test)[0]),
                    test_total=len(y_test),
                )
            net.record(EpochResult(epoch, int(val[i]), len(y_val), seconds, float(eta), **test))
            if on_epoch is not None:
                on_epoch(i, net.epochs[-1])
        if after_epoch is not None:
            after_epoch(networks)
    return networks, compile_seconds
