"""A persistent Pallas (Triton) kernel for the book's one-hidden-layer networks on a GPU: a
whole epoch of SGD steps in one kernel launch.

This is a hand-fused copy of chapter 1's SGD step, and it is opt-in: the code that trains by
default is the JAX epoch (``nnjax.epoch``), ``jax.grad`` of the Python loss. On a GPU the
book's [784, 30, 10] network at mini-batch 10 is bound by kernel launches: XLA runs each
step as a dozen small kernels. Here one program runs every step of the epoch in a loop:
it gathers the mini-batch's rows of x, computes the forward pass and the book's
backpropagation (BP1-BP4), and updates the weights, the first layer's in global memory
(it is read and written in chunks of columns, so that it need not fit in registers), the
rest in registers. ``nnjax.epoch.epoch(kernel="pallas")`` (``--kernel=pallas``) runs it
where ``check`` allows. The two compute the same SGD steps over the same mini-batches in
float32 and differ only in the order of float additions and the rounding of e^x and of
division (the tests compare them). An edit to the Python model or cost does not reach the
kernel.

One program means one of the GPU's streaming multiprocessors: the kernel trades the GPU's
width for having no launches and no round trips through memory between a step's products.
Off a GPU it runs in Pallas's interpreter, slowly: that is for the tests (there one program
plays the part of each of several in turn, since the interpreter cannot run them at once).

Shapes are padded to Triton's powers of two (mini-batch, hidden and output sizes to at
least 16, the inputs to whole chunks) with zero weights, and padded rows and units are
masked out of every gradient, so the padding never changes a number.
"""

import functools

import jax
import jax.numpy as jnp

from nnjax import costs, fused

MAX_HIDDEN, MAX_OUTPUTS, MAX_MINI_BATCH = 128, 64, 64
# Elements of a chunk of the first layer's weights (hidden × columns) or of the mini-batch's
# rows (m × columns), padded, that a program holds at once: more spills registers.
CHUNK_ELEMENTS = 4096
# Programs that meet every step must all run at once: at most one per multiprocessor, far
# fewer than a GPU has. A program that has polled the others this often (about a second)
# stops waiting, and says so, rather than hang if they do not.
MAX_PROGRAMS, MAX_POLLS = 32, 1 << 20


def _padded(n: int) -> int:
    """The power of two ≥ max(n, 16) (Triton's smallest product is 16 × 16)."""
    return max(16, 1 << (n - 1).bit_length())


def check(model, tx, params, x, mini_batch_size: int) -> None:
    """Raises ValueError (one line saying why) unless the kernel can run this epoch: what
    ``fused.reason`` asks with mini-batches of at most ``MAX_MINI_BATCH``, and at most
    ``MAX_HIDDEN`` hidden and ``MAX_OUTPUTS`` output neurons."""
    why = fused.reason(model, tx, params, x, mini_batch_size, MAX_MINI_BATCH)
    if not why and params["weights"][0].shape[0] > MAX_HIDDEN:
        why = f"it takes at most {MAX_HIDDEN} hidden neurons"
    if not why and params["weights"][1].shape[0] > MAX_OUTPUTS:
        why = f"it takes at most {MAX_OUTPUTS} output neurons"
    if why:
        raise ValueError(f"the Pallas GPU epoch cannot train this network: {why}")


def book_epoch(params, opt_state, x, y, batches, model):
    """``fused.book_epoch`` by the Pallas kernel, in one program. Call inside ``jit``,
    after ``check``."""
    return fused.book_epoch(sgd_epoch, params, opt_state, x, y, batches, model)


def sgd_epoch(params, x, y, batches, eta, cost=costs.quadratic, decay=1.0, **kernel):
    """The SGD updates over ``batches`` (steps, m) int32 indices into ``x`` (n, n_in) and
    ``y`` (n,) int labels, in order; returns the new params. Each update first multiplies
    the weights by ``decay`` (1 − ηλ/n for L2; 1 without). ``kernel``: ``programs`` and
    ``interpret``, as ``sgd_epoch_and_waits``."""
    return sgd_epoch_and_waits(params, x, y, batches, eta, cost, decay, **kernel)[0]


def sgd_epoch_and_waits(
    params,
    x,
    y,
    batches,
    eta,
    cost: costs.Cost = costs.quadratic,
    decay=1.0,
    programs: int = 1,
    interpret=None,
):
    """``sgd_epoch``, also returning how often a program stopped waiting for the others (an
    int32 scalar; anything but 0 means the result is wrong). ``programs`` > 1 (a power of
    two, at most ``MAX_PROGRAMS``) splits the first layer's columns between that many
    programs, each on its own streaming multiprocessor, which meet once a step to add up
    their shares of the hidden layer's weighted input. ``interpret``: run in Pallas's
    interpreter (default: off a GPU), where one program plays every program's part."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as pltriton

    if interpret is None:
        interpret = jax.default_backend() != "gpu"
    if programs < 1 or programs & (programs - 1) or programs > MAX_PROGRAMS:
        raise ValueError(f"programs must be a power of two up to {MAX_PROGRAMS}, got {programs}")
    (w1, w2), (b1, b2) = params["weights"], params["biases"]
    m = batches.shape[1]
    (h, n_in), o = w1.shape, w2.shape[0]
    hp, op, mp = _padded(h), _padded(o), _padded(m)
    columns = min(CHUNK_ELEMENTS // max(hp, mp), max(16, _padded(n_in) // programs))
    inputs = -(-n_in // (columns * programs)) * columns * programs
    state = [
        _pad(w1, (hp, inputs)),
        _pad(b1, (hp,)),
        _pad(w2, (op, hp)),
        _pad(b2, (op,)),
        jnp.zeros((2, programs, mp, hp), jnp.float32),  # the programs' shares of z, by step parity
        # how many programs have reached the meetings so far; how often one stopped waiting
        jnp.zeros((2,), jnp.int32),
    ]
    kernel = functools.partial(
        _kernel,
        sizes=(m, n_in, h, o),
        padded=(mp, hp, op, columns),
        cross_entropy=cost is costs.cross_entropy,
        interpret=interpret,
    )
    w1, b1, w2, b2, _, count = pl.pallas_call(
        kernel,
        out_shape=[jax.ShapeDtypeStruct(a.shape, a.dtype) for a in state],
        grid=(1 if interpret else programs,),
        input_output_aliases={4 + i: i for i in range(len(state))},  # updated in place
        interpret=interpret,
        compiler_params=None if interpret else pltriton.CompilerParams(num_warps=4, num_stages=1),
        name="nnjax_sgd_epoch",
    )(
        batches.astype(jnp.int32),
        x,
        y.astype(jnp.int32),
        jnp.stack([jnp.asarray(eta, jnp.float32), jnp.asarray(decay, jnp.float32)]),
        *state,
    )
    params = {"weights": [w1[:h, :n_in], w2[:o, :h]], "biases": [b1[:h], b2[:o]]}
    return params, count[1]


def _pad(a, shape):
    return jnp.pad(a, [(0, n - s) for n, s in zip(shape, a.shape)])


def _kernel(batches_ref, x_ref, y_ref, hyper_ref, *refs, sizes, padded, cross_entropy, interpret):
    """Program p of the grid: every step of the epoch, for its own columns of the first
    layer's weights. The state's refs (the last six) alias the inputs: updated in place.
    Pallas's interpreter runs programs one after another, so they could never meet there:
    with ``interpret`` one program plays every program's part in turn, adding up the same
    shares in the same order."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as pltriton

    w1_ref, b1_ref, w2_ref, b2_ref, shares_ref, count_ref = refs[6:]
    (m, n_in, h, o), (mp, hp, op, columns) = sizes, padded
    programs, p = shares_ref.shape[1], pl.program_id(0)
    own = w1_ref.shape[1] // (columns * programs)  # chunks of columns per program
    rows, units, outputs = (jnp.arange(n, dtype=jnp.int32) for n in (mp, hp, op))
    in_batch, in_hidden, in_output = rows < m, units < h, outputs < o
    eta, decay = hyper_ref[0], hyper_ref[1]
    dot = functools.partial(pltriton.dot, allow_tf32=False)  # float32 products

    def x_chunk(idx, c):
        """The mini-batch's rows of x, columns c·C … (c+1)·C − 1: (mp, C), zero outside."""
        cols = c * columns + jnp.arange(columns, dtype=jnp.int32)
        xb = x_ref[idx[:, None], jnp.minimum(cols, n_in - 1)[None, :]]
        return jnp.where(in_batch[:, None] & (cols < n_in)[None, :], xb, 0.0)

    def w1_columns(c):
        return pl.ds(pl.multiple_of(c * columns, columns), columns)

    def meet(t, share):
        """The sum of every program's ``share`` of step t, in program order (so that every
        program gets the same float sum): each writes its share, then waits until all
        have (a counter in global memory; at most ``MAX_POLLS`` polls), then adds them up."""
        # two slots: a program may write step t + 1's share while others read step t's
        slot = jax.lax.rem(t, jnp.int32(2))
        shares_ref[slot, p] = share
        pltriton.debug_barrier()  # every thread's stores before the count goes up
        pltriton.atomic_add(count_ref, 0, jnp.int32(1))  # acquire-release, GPU scope
        arrived = (t + 1) * programs

        def poll(carry):
            return pltriton.atomic_add(count_ref, 0, jnp.int32(0)), carry[1] + 1

        seen, _ = jax.lax.while_loop(
            lambda carry: (carry[0] < arrived) & (carry[1] < MAX_POLLS),
            poll,
            (jnp.int32(0), jnp.int32(0)),
        )

        @pl.when(seen < arrived)
        def _():
            pltriton.atomic_add(count_ref, 1, jnp.int32(1))

        pltriton.debug_barrier()

        def add(q, total):  # volatile: from L2, where the other programs' stores are
            return total + pltriton.load(shares_ref.at[slot, q], volatile=True)

        return jax.lax.fori_loop(0, programs, add, jnp.zeros_like(share))

    def step(t, carry):
        b1, w2, b2 = carry
        idx = batches_ref[t, jnp.minimum(rows, m - 1)]
        labels = y_ref[idx]

        def share(q, total=0.0):
            """``total`` plus program q's share of z, x w^T over its columns."""

            def forward(c, z):
                c = q * own + c
                return z + dot(x_chunk(idx, c), w1_ref[:, w1_columns(c)], trans_b=True)

            return total + jax.lax.fori_loop(0, own, forward, jnp.zeros((mp, hp), jnp.float32))

        if programs == 1:
            z1 = share(p)
        elif interpret:
            z1 = jax.lax.fori_loop(0, programs, share, jnp.zeros((mp, hp), jnp.float32))
        else:
            z1 = meet(t, share(p))
        # Every program computes the rest of the step, the same floats in each.
        a1 = jnp.where(in_hidden[None, :], jax.nn.sigmoid(z1 + b1[None, :]), 0.0)
        a2 = jax.nn.sigmoid(dot(a1, w2, trans_b=True) + b2[None, :])
        target = (labels[:, None] == outputs[None, :]).astype(jnp.float32)
        # BP1 (δ^L = ∇_a C ⊙ σ'(z^L); cross-entropy's σ' cancels), for the mean over m
        delta2 = (a2 - target) if cross_entropy else (a2 - target) * a2 * (1 - a2)
        delta2 = jnp.where(in_batch[:, None] & in_output[None, :], delta2, 0.0) / m
        delta1 = dot(delta2, w2) * a1 * (1 - a1)  # BP2
        w2 = decay * w2 - eta * dot(delta2, a1, trans_a=True)  # BP4
        b2 = b2 - eta * jnp.sum(delta2, axis=0)  # BP3
        b1 = b1 - eta * jnp.sum(delta1, axis=0)

        def update(c, carry):
            gradient = dot(delta1, x_chunk(idx, c), trans_a=True)
            w1_ref[:, w1_columns(c)] = decay * w1_ref[:, w1_columns(c)] - eta * gradient
            return carry

        if interpret:  # every program's columns
            jax.lax.fori_loop(0, programs * own, update, 0)
        else:
            jax.lax.fori_loop(p * own, (p + 1) * own, update, 0)
        if not interpret:  # the next step's threads read what other threads of this one wrote
            pltriton.debug_barrier()
        return b1, w2, b2

    b1, w2, b2 = jax.lax.fori_loop(
        0, batches_ref.shape[0], step, (b1_ref[:], w2_ref[:, :], b2_ref[:])
    )

    @pl.when(p == 0)
    def _():
        b1_ref[:] = b1
        w2_ref[:, :] = w2
        b2_ref[:] = b2
