"""Data-parallel SGD: every mini-batch split over a 1-D mesh of devices, on one or many hosts.

The epoch is ``sgd.sgd_epoch``'s, with each mini-batch's gradient computed by N devices
together: the same shuffle (``sgd.mini_batches``), so the same global mini-batches of m
examples as a single-device run; device d takes rows d·m/N … (d+1)·m/N − 1 of every
mini-batch, computes the mean gradient over them, and ``lax.pmean`` over the mesh axis
``"data"`` gives every device the mean over all m (the book's (1/m) Σ_x ∇C_x, summed in another
order). Every device then applies the same optax update to its own replica of the
parameters, which therefore stay identical without ever being sent.

Why ``jax.shard_map`` rather than ``jit`` with a sharded batch: the per-device program is
written out (gather m/N rows, gradient, one all-reduce per step), so the communication is
exactly one ``psum`` of the gradient pytree per mini-batch and nothing is left to the
partitioner's guesses about the gather from the shuffled indices.

The training data are replicated: every device holds the whole training set, so any device
can gather any example the shuffle puts in its share of a mini-batch. MNIST is 157 MB; a
data set too large for that would need the batches gathered on the host instead.

The last, smaller mini-batch of an epoch (n mod m examples, when m does not divide n) is
computed whole by every device, without splitting: it is at most m − 1 examples once per
epoch, its size need not be divisible by N, and its update is exactly the single-device one.

Across hosts (``jax.distributed.initialize`` first), the mesh takes the same number of devices
from every process; each process passes the same data and parameters (same files, same seed)
and ``replicate`` assembles them into global arrays without copying between hosts. The CPU
C++ kernel of ``nnjax.cpu_kernel`` is single-device: the data-parallel epoch never uses it.
"""

import functools
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nnjax import activations, backprop, costs, sgd
from nnjax.activations import Activation

AXIS = "data"


def device_count(devices: Union[int, str] = "all") -> int:
    """The number of devices ``devices`` asks for: ``"all"`` → ``jax.device_count()`` (every
    process's), an int → itself. Raises ValueError (one line, naming ``devices``) if it is
    not positive, more than there are, or, with several processes, not a multiple of their
    number."""
    available, processes = jax.device_count(), jax.process_count()
    if devices == "all":
        return available
    try:
        n = int(devices)
    except (TypeError, ValueError):
        raise ValueError(f"devices must be a positive integer or 'all', got {devices!r}") from None
    if n <= 0:
        raise ValueError(f"devices must be a positive integer or 'all', got {devices!r}")
    if n > available:
        raise ValueError(
            f"devices={n} but only {available} {jax.default_backend()} devices are available"
        )
    if n % processes:
        raise ValueError(f"devices={n} is not a multiple of the {processes} processes")
    return n


def check_mini_batch(mini_batch_size: int, n_devices: int) -> None:
    """Raises ValueError (one line, naming both) unless ``n_devices`` divides
    ``mini_batch_size``: every device takes an equal share of each mini-batch."""
    if mini_batch_size % n_devices:
        raise ValueError(
            f"mini_batch_size={mini_batch_size} is not divisible by devices={n_devices}"
        )


def make_mesh(devices: Union[int, str] = "all") -> jax.sharding.Mesh:
    """A 1-D mesh with axis ``"data"`` over ``device_count(devices)`` devices: with several
    processes, the same number of each process's own devices (its first ones)."""
    n = device_count(devices)
    per_process = n // jax.process_count()
    chosen = [
        d
        for p in range(jax.process_count())
        for d in sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)[
            :per_process
        ]
    ]
    return jax.make_mesh((n,), (AXIS,), (jax.sharding.AxisType.Explicit,), devices=chosen)


def replicate(tree, mesh: jax.sharding.Mesh):
    """``tree`` (NumPy or JAX arrays, the same on every process) as global arrays with a copy
    on every device of ``mesh``. Each process copies from its own host memory, so nothing
    crosses between hosts (and nothing checks that the processes agree)."""
    sharding = NamedSharding(mesh, P())

    def put(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

    return jax.tree.map(put, tree)


def local_copy(tree):
    """A replicated global ``tree`` (as ``data_parallel_epoch`` returns it) as arrays on this
    process's first device of the mesh: for scoring, saving and printing without the mesh."""
    return jax.tree.map(lambda a: a.addressable_data(0), tree)


@functools.partial(
    jax.jit,
    static_argnames=("mini_batch_size", "mesh", "cost", "activation", "regularization", "momentum"),
)
def data_parallel_epoch(
    params,
    x,
    y,
    key,
    eta,
    mini_batch_size: int,
    mesh: jax.sharding.Mesh,
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
    lmbda=0.0,
    regularization: str = "l2",
    momentum: float = 0.0,
    opt_state=None,
):
    """One epoch of SGD on ``mesh``'s devices, with ``sgd.sgd_epoch``'s arguments and
    results (its ``kernel="xla"`` path; ``mesh`` from ``make_mesh``).

    ``params``, ``x`` (n, n_in), ``y`` (n,) and ``opt_state`` should be replicated on the
    mesh (``replicate``); ``mini_batch_size`` must be divisible by the number of devices.
    Returns the updated params, replicated, or ``(params, opt_state)`` when ``opt_state`` is
    given.
    """
    n_devices = mesh.shape[AXIS]
    check_mini_batch(mini_batch_size, n_devices)
    if momentum and opt_state is None:
        raise ValueError("momentum needs the optimiser state: pass opt_state=init_state(...)")
    state = sgd.init_state(params, momentum) if opt_state is None else opt_state
    n, n_out = x.shape[0], params["biases"][-1].shape[0]
    full, rest = sgd.mini_batches(key, n, mini_batch_size)
    # Column block d of every mini-batch goes to device d.
    shares = jax.sharding.reshard(full, NamedSharding(mesh, P(None, AXIS)))

    def epoch(params, state, x, y, eta, lmbda, shares, rest):
        tx = sgd.optimizer(eta, momentum, lmbda, n, regularization)

        def step(carry, idx):
            params, state = carry
            y1 = costs.one_hot(y[idx], n_out, x.dtype)
            # pcast: this device's own gradient (left to itself, autodiff would psum the
            # gradient of the replicated params at once); pmean: the mean over all m rows.
            local = jax.lax.pcast(params, AXIS, to="varying")
            nabla = jax.lax.pmean(backprop.grad(local, x[idx], y1, cost, activation), AXIS)
            updates, state = tx.update(nabla, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, state), _ = jax.lax.scan(step, (params, state), shares)
        if rest.shape[0]:
            y1 = costs.one_hot(y[rest], n_out, x.dtype)
            params, state = sgd.sgd_step(params, state, x[rest], y1, tx, cost, activation)
        return params, state

    params, state = jax.shard_map(
        epoch,
        mesh=mesh,
        out_specs=(P(), P()),
        in_specs=(P(), P(), P(), P(), P(), P(), P(None, AXIS), P()),
    )(params, state, x, y, jnp.asarray(eta, x.dtype), jnp.asarray(lmbda, x.dtype), shares, rest)
    return params if opt_state is None else (params, state)
