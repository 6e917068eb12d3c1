"""What the speed benchmarks share: K book networks' compiled epochs, ready to time, and a
model of the memory traffic of a step (training images stored as float32 or bfloat16). No
flags: each benchmark defines its own."""

from benchmarks.timing import compiled

SIZES, ETA, M = (784, 30, 10), 3.0, 10


def traffic(sizes, mini_batch_size, block=None, data_bytes=4) -> int:
    """Bytes one network moves through device memory per step, by a simple model: every
    product or elementwise pass reads its operands from memory and writes its result, and
    only the first layer's weights w (n_1 × n_in) and the mini-batch's rows X (m × n_in)
    count (the rest are a few percent). A plain step gathers X (read and write: 2X), reads
    X and w for the forward product, X for the gradient dᵀX, which it writes (w), and the
    update reads w and the gradient and writes w: 4X + 5w. The blocked epoch (``block`` =
    B) gathers (2X), and reads X three times (forward product, Gram, update) per step and
    w five times per block: 5X + 5w/B. Parameters are float32 (4 bytes); ``data_bytes``:
    bytes per pixel of the stored images (4 for float32, 2 for bfloat16, the model assuming
    each product converts X to float32 as it reads it)."""
    x = mini_batch_size * sizes[0] * data_bytes
    w = sizes[0] * sizes[1] * 4
    return 4 * x + 5 * w if block is None else 5 * x + 5 * w // block


def strategy_epochs(strategy, k, x, y, sizes=SIZES, block=None):
    """Compiles the epoch of K networks of layer sizes ``sizes`` (seeds 0..K−1, quadratic
    cost, the book's SGD with η = ``ETA``, mini-batches of ``M``) for ``strategy`` (vmap:
    one stacked epoch of all K; loop: one network's epoch, run K times), the blocked epoch
    with ``block`` mini-batches a block if given; returns ``(one_epoch(e), compile seconds,
    first())``, ``first()`` giving the first network's current parameters."""
    import jax

    from nnjax import network, optimizers, sweep
    from nnjax.epoch import epoch

    params, keys = sweep.init_networks(range(k), sizes)
    tx = optimizers.make("sgd")
    opt_state = jax.vmap(lambda p: optimizers.init(tx, p, eta=ETA))(params)
    stacked = strategy == "vmap"
    if stacked:
        nets = [((params, opt_state), keys)]
        fold = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None)))
    else:
        nets = [(jax.tree.map(lambda a, i=i: a[i], (params, opt_state)), keys[i]) for i in range(k)]
        fold = jax.random.fold_in
    jax.block_until_ready(nets)
    program, compile_s = compiled(
        epoch,
        *nets[0][0],
        x,
        y,
        fold(nets[0][1], 0),
        model=network.model(),
        tx=tx,
        mini_batch_size=M,
        stacked=stacked,
        **({} if block is None else dict(kernel="blocked", block=block)),
    )

    def one_epoch(e):
        for i, (state, key) in enumerate(nets):
            nets[i] = (jax.block_until_ready(program(*state, x, y, fold(key, e))), key)

    def first():
        params = nets[0][0][0]
        return jax.tree.map(lambda a: a[0], params) if stacked else params

    return one_epoch, compile_s, first


def stored(x, dtype: str):
    """The training images ``x`` (NumPy float32) on the device as ``dtype``; ValueError
    ("DTYPE: N of M training pixels are not exact in DTYPE") if that would change a pixel."""
    import jax
    import numpy as np

    narrow = np.asarray(x).astype(jax.numpy.dtype(dtype))
    changed = int(np.sum(narrow.astype(np.float32) != x))
    if changed:
        raise ValueError(f"{dtype}: {changed} of {x.size} training pixels are not exact in {dtype}")
    return jax.device_put(narrow)
