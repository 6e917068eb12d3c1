"""One epoch of mini-batch training, one compiled program, for any model and optimizer.

    params, opt_state = epoch(params, opt_state, x, y, key, model=model, tx=tx,
                              mini_batch_size=10)

The epoch shuffles the training data with ``key`` and runs every mini-batch's update inside
one ``lax.scan``: the data stay on the device, the host is not involved until the epoch
ends. Each update is

    g = jax.grad(model.loss)(params, x[idx], y[idx], step_key)      (the mean over the batch)
    params, opt_state = params + tx's update of g

so the model's Python loss is what trains, whatever it is (``nnjax.network.model`` for
chapters 1-5, ``nnjax.network3.model`` for chapter 6, or one of your own). The book's
choices are arguments: ``shuffle`` (False: network3's fixed order), ``drop_last`` (network3
drops a last partial mini-batch; network.py and network2.py train on it, η then divided by
its own size, as a mean does).

``stacked=True`` trains K networks at once (``jax.vmap``): every leaf of ``params`` and
``opt_state`` and ``key`` has a leading axis K; each network has its own shuffle, dropout, η
and weight decay λ/n (in its optimizer state), and its mini-batches are gathered from ONE
copy of the data. With a ``mesh`` (``nnjax.parallel.make_mesh``), each mini-batch is split
over the mesh's devices along the batch axis and XLA partitions the step: every device
computes its rows' share of the gradient and the shares are summed. The random bits do not
depend on how an array is split, so the result is the single-device epoch's up to the order
of float additions.

``kernel="cpp"`` runs the full mini-batches of chapter 1's one-hidden-layer sigmoid network
in nnjax's hand-fused C++ copy of the same step instead (``nnjax.cpu_kernel``);
``kernel="pallas"`` runs them on a GPU in one persistent Pallas kernel, the whole epoch in
one launch (``nnjax.gpu_kernel``); ``kernel="blocked"`` runs chapters 1-5's networks
``block`` mini-batches at a time with the first layer's weights held for the block and
corrected exactly (``nnjax.blocked``), which moves less memory when many networks train at
once. All three are opt-in, and tested against this JAX epoch.
"""

import functools
import math
import operator
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

KERNELS = ("jax", "cpp", "blocked", "pallas")


def is_whole(v) -> bool:
    """Whether ``v`` is an integer (Python's, NumPy's or a JAX scalar's), not a bool: the
    one test of an integer argument in nnjax (``nnjax.inputs`` takes it from here)."""
    if isinstance(v, (bool, np.bool_)):
        return False
    try:
        operator.index(v)
    except TypeError:
        return False
    return True


# The shuffle, a random permutation of 0..n−1 from a PRNG key without sorting:
# ``jax.random.permutation`` sorts random keys, twice for n = 50,000. ``permutation``
# instead encrypts each index with a keyed Feistel network (a bijection on [0, 2^bits)) and
# "cycle-walks" values ≥ n back into range, which keeps it a bijection on [0, n):
# elementwise integer arithmetic, far cheaper than the sorts (docs/performance.md), and the
# same permutation on every backend for a given key.
ROUNDS = 8


def _mix(h):
    """A 32-bit integer hash (MurmurHash3's finaliser): every input bit affects every output bit."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def permutation(key, n: int):
    """A pseudo-random permutation of 0..n−1 drawn with ``key``: int32 array of shape (n,)."""
    if not (is_whole(n) and n >= 0):
        raise ValueError(f"n must be an integer from 0, got {n!r}")
    half = max(1, math.ceil(math.log2(max(n, 2)) / 2))
    mask = jnp.uint32((1 << half) - 1)
    round_keys = jax.random.bits(key, (ROUNDS,), jnp.uint32)

    def encrypt(v):
        left, right = v >> half, v & mask
        for k in range(ROUNDS):
            left, right = right, left ^ (_mix(right ^ round_keys[k]) & mask)
        return (left << half) | right

    # Cycle-walking: from index i, follow i → E(i) → E(E(i)) … to the first value < n. The
    # walk stays on the cycle of E through i, which contains i, so it ends; and sending each
    # i to the next in-range value on its cycle is itself a bijection of [0, n).
    v = encrypt(jnp.arange(n, dtype=jnp.uint32))
    v = jax.lax.while_loop(lambda v: jnp.any(v >= n), lambda v: jnp.where(v >= n, encrypt(v), v), v)
    return v.astype(jnp.int32)


class Model(NamedTuple):
    """What training needs of a network, as pure functions of its parameter pytree:

    * ``loss(params, x, y, key)``: the training cost, a scalar, on a mini-batch ``x``
      (m, ...) with integer labels ``y`` (m,); ``key`` draws any randomness (dropout);
    * ``predict(params, x)``: the class of each example of ``x`` (N, ...), int (N,);
    * ``cost(params, x, y)``: the cost reported when monitoring (None: not reported);
    * ``book_network``: ``(cost, activation)`` for a chapter 1-5 network, what the opt-in
      hand-written epochs (``kernel="cpp"``, ``"pallas"``, ``"blocked"``) need to know;
      None for any other model;
    * ``classes(params)``: for a classifier, how many classes its outputs tell apart, what
      ``fit`` checks the labels against (None: the labels are not classes).

    Instances are static arguments of the compiled epoch: build one per network design
    (``network.model`` and ``network3.model`` return the same object for the same
    arguments) so that epochs compile once.
    """

    loss: Callable
    predict: Callable
    cost: Optional[Callable] = None
    name: str = ""
    book_network: Optional[tuple] = None
    classes: Optional[Callable] = None


@functools.partial(jax.jit, static_argnames="model")
def correct(params, x, y, *, model: Model):
    """How many examples of ``x`` (N, ...) the network ``params`` of ``model`` classifies as
    ``y`` (N,): an int32 scalar (the book's ``evaluate``). ValueError unless y is one class
    per example."""
    predicted = model.predict(params, x)
    if jnp.shape(y) != predicted.shape:  # (N, 1) or one-hot would broadcast to nonsense
        raise ValueError(
            f"labels y {jnp.shape(y)} must be one class per example, {predicted.shape}"
        )
    return jnp.sum(predicted == y, dtype=jnp.int32)


def mini_batches(key, n: int, mini_batch_size: int, shuffle: bool = True):
    """The epoch's split of the indices 0..n−1 into mini-batches, shuffled by ``key``
    (``shuffle=False``: in order). Returns ``(full, rest)``: int32 arrays of shapes
    (n // m, m) and (n mod m,)."""
    if not (is_whole(n) and is_whole(mini_batch_size)):
        raise ValueError(f"n and mini_batch_size must be integers, got {n!r}, {mini_batch_size!r}")
    if n < 0 or mini_batch_size < 1:
        raise ValueError(f"n {n} must be from 0 and mini_batch_size {mini_batch_size} from 1")
    order = permutation(key, n) if shuffle else jnp.arange(n, dtype=jnp.int32)
    n_full = (n // mini_batch_size) * mini_batch_size
    return order[:n_full].reshape(-1, mini_batch_size), order[n_full:]


def _split_over(mesh, a):
    """``a`` constrained to be split along its first axis over every device of ``mesh``."""
    spec = jax.sharding.PartitionSpec(mesh.axis_names[0])
    return jax.lax.with_sharding_constraint(a, jax.sharding.NamedSharding(mesh, spec))


def _one_epoch(
    params,
    opt_state,
    x,
    y,
    key,
    *,
    model,
    tx,
    mini_batch_size,
    shuffle,
    drop_last,
    mesh,
    unroll,
    kernel,
    block,
    gather_first,
):
    shuffle_key, step_key = jax.random.split(key)
    full, rest = mini_batches(shuffle_key, x.shape[0], mini_batch_size, shuffle)
    grad = jax.grad(model.loss)

    def update(carry, i, xb, yb):
        params, opt_state = carry
        if mesh is not None and xb.shape[0] == mini_batch_size:
            xb, yb = _split_over(mesh, xb), _split_over(mesh, yb)
        g = grad(params, xb, yb, jax.random.fold_in(step_key, i))
        updates, opt_state = tx.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    steps = full.shape[0]
    if kernel in ("cpp", "pallas"):  # the hand-fused copies of chapter 1's step
        from nnjax import cpu_kernel, gpu_kernel

        fused = cpu_kernel if kernel == "cpp" else gpu_kernel
        fused.check(model, tx, params, x, mini_batch_size)  # one-line ValueError
        params, opt_state = fused.book_epoch(params, opt_state, x, y, full, model)
    elif kernel == "blocked":
        from nnjax import blocked

        blocked.check(model, tx, mesh)  # one-line ValueError
        params, opt_state = blocked.book_epoch(params, opt_state, x, y, full, model, tx, block)
    else:
        # One network: the epoch's mini-batches are gathered in one pass before the loop
        # (contiguous reads, faster on the CPU). K vmapped networks gather theirs step by
        # step instead, which never makes K copies of the data.
        batches = (x[full], y[full]) if gather_first else (full,)

        def body(carry, inputs):
            i, *batch = inputs
            xb, yb = batch if gather_first else (x[batch[0]], y[batch[0]])
            return update(carry, i, xb, yb), None

        (params, opt_state), _ = jax.lax.scan(
            body,
            (params, opt_state),
            (jnp.arange(steps), *batches),
            unroll=unroll,
        )
    if rest.shape[0] and not drop_last:
        params, opt_state = update((params, opt_state), steps, x[rest], y[rest])
    return params, opt_state


@functools.partial(
    jax.jit,
    static_argnames=(
        "model",
        "tx",
        "mini_batch_size",
        "shuffle",
        "drop_last",
        "mesh",
        "unroll",
        "kernel",
        "block",
        "stacked",
    ),
)
def epoch(
    params,
    opt_state,
    x,
    y,
    key,
    *,
    model,
    tx: optax.GradientTransformation,
    mini_batch_size: int,
    shuffle: bool = True,
    drop_last: bool = False,
    mesh=None,
    unroll: int = 1,
    kernel: str = "jax",
    block: int = 8,
    stacked: bool = False,
):
    """One epoch over ``x`` (n, ...) with integer labels ``y`` (n,), mini-batches of
    ``mini_batch_size`` drawn with ``key`` (see the module's doc for the other arguments;
    ``unroll`` steps are compiled into each iteration of the scan: the same result;
    ``block``: mini-batches per block of ``kernel="blocked"``). ``x`` may be stored in a
    narrower float than the parameters (bfloat16 images): every product is computed in the
    parameters' dtype (on the CPU, bit for bit as for the same values in that dtype).

    Returns ``(params, opt_state)``, shaped as given. ValueError for x and y of other
    lengths (a gather past y's end would repeat its last label) or a mini-batch size that
    is no positive integer; ``fit`` checks the rest (``nnjax.inputs``).
    """
    if jnp.ndim(x) < 1 or jnp.ndim(y) < 1 or jnp.shape(x)[0] != jnp.shape(y)[0]:
        raise ValueError(
            f"x {jnp.shape(x)} and y {jnp.shape(y)} hold different numbers of examples"
        )
    if not (is_whole(mini_batch_size) and mini_batch_size >= 1):
        raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "blocked" and not (is_whole(block) and block >= 1):
        raise ValueError(f"block must be a positive integer, got {block!r}")
    one = functools.partial(
        _one_epoch,
        model=model,
        tx=tx,
        mini_batch_size=mini_batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        mesh=mesh,
        unroll=unroll,
        kernel=kernel,
        block=block,
        gather_first=not stacked,
    )
    if stacked:
        return jax.vmap(one, in_axes=(0, 0, None, None, 0))(params, opt_state, x, y, key)
    return one(params, opt_state, x, y, key)
