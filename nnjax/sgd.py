"""Mini-batch stochastic gradient descent, one compiled program per epoch.

``sgd_epoch`` shuffles the training data with a PRNG key and runs every mini-batch's update
inside one ``lax.scan``: the data stay on the device and the host is not involved until the
epoch ends. On the CPU, chapter 1's network runs the same updates in a compiled C++ kernel
instead (``nnjax.cpu_kernel``), still inside the one compiled epoch.

Each update is the book's

    w → w − (η/m) Σ_x ∂C_x/∂w,    b → b − (η/m) Σ_x ∂C_x/∂b

over the m examples of the mini-batch (with chapter 3's regularisation and momentum, see
``optimizer``: the update rules are optax transformations). As in the book's code, when the
training-set size n is not a multiple of m the last, smaller mini-batch of n mod m examples is
still used, with η divided by its own size.
"""

import functools

import jax
import jax.numpy as jnp
import optax

from nnjax import activations, backprop, costs, cpu_kernel, shuffle
from nnjax.activations import Activation

REGULARIZATIONS = ("l2", "l1")


def weight_penalty(strength, regularization: str = "l2") -> optax.GradientTransformation:
    """Adds ``strength`` × w (L2) or ``strength`` × sgn(w) (L1) to the gradient of every
    weight matrix; biases are left alone, as in the book."""
    if regularization not in REGULARIZATIONS:
        raise ValueError(f"regularization must be one of {REGULARIZATIONS}, got {regularization!r}")
    penalty = (lambda w: w) if regularization == "l2" else jnp.sign

    def update(grads, state, params):
        weights = [g + strength * penalty(w) for g, w in zip(grads["weights"], params["weights"])]
        return {**grads, "weights": weights}, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def book_momentum(eta, mu) -> optax.GradientTransformation:
    """The book's momentum: v → μv − η∇C, w → w + v (the update is v itself). Unlike
    ``optax.sgd(eta, momentum=mu)``, whose velocity is not scaled by η, this stays the
    book's rule when η changes during training."""

    def update(grads, velocity, params=None):
        velocity = jax.tree.map(lambda v, g: mu * v - eta * g, velocity, grads)
        return velocity, velocity

    return optax.GradientTransformation(lambda params: jax.tree.map(jnp.zeros_like, params), update)


def optimizer(
    eta, momentum: float = 0.0, lmbda=0.0, n: int = 1, regularization: str = "l2"
) -> optax.GradientTransformation:
    """The book's update rule as an optax transformation of the mean mini-batch gradient:

        L2:  w → (1 − ηλ/n) w − (η/m) Σ_x ∂C_x/∂w
        L1:  w → w − (ηλ/n) sgn(w) − (η/m) Σ_x ∂C_x/∂w

    n being the whole training set's size (so λ means what the book's ``lmbda`` means), then
    plain SGD, or the book's momentum when ``momentum`` μ > 0.
    """
    step = book_momentum(eta, momentum) if momentum else optax.sgd(eta)
    return optax.chain(weight_penalty(lmbda / n, regularization), step)


def init_state(params, momentum: float = 0.0):
    """The optimiser state ``sgd_epoch`` starts from: empty for plain SGD, zero velocities
    with momentum."""
    return optimizer(0.0, momentum).init(params)


def sgd_step(
    params,
    opt_state,
    x,
    y,
    tx: optax.GradientTransformation,
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
):
    """One update on the mini-batch ``x`` (m, n_in), ``y`` (m, n_out) by the optimiser
    ``tx`` (from ``optimizer``); returns ``(params, opt_state)``."""
    nabla = backprop.grad(params, x, y, cost, activation)
    updates, opt_state = tx.update(nabla, opt_state, params)
    return optax.apply_updates(params, updates), opt_state


def mini_batches(key, n: int, mini_batch_size: int):
    """A shuffled split of the indices 0..n−1 into mini-batches.

    Returns ``(full, rest)``: int32 arrays of shapes (n // m, m) and (n mod m,).
    """
    perm = shuffle.permutation(key, n)
    n_full = (n // mini_batch_size) * mini_batch_size
    return perm[:n_full].reshape(-1, mini_batch_size), perm[n_full:]


KERNELS = ("auto", "xla")


def uses_cpu_kernel(
    params,
    x,
    mini_batch_size: int,
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
    kernel: str = "auto",
    regularization: str = "l2",
    momentum: float = 0.0,
) -> bool:
    """Whether ``sgd_epoch`` with these arguments runs nnjax's CPU kernel (True) or the
    ``lax.scan`` of ``sgd_step`` (False). The two agree to about 1 ulp a step, so a seeded
    run's numbers depend on which ran."""
    return (
        kernel == "auto"
        and x.shape[0] >= mini_batch_size
        and regularization == "l2"
        and not momentum
        and cpu_kernel.supports(params, x, mini_batch_size, cost, activation)
    )


@functools.partial(
    jax.jit,
    static_argnames=(
        "mini_batch_size",
        "cost",
        "activation",
        "kernel",
        "regularization",
        "momentum",
    ),
)
def sgd_epoch(
    params,
    x,
    y,
    key,
    eta,
    mini_batch_size: int,
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
    kernel: str = "auto",
    lmbda=0.0,
    regularization: str = "l2",
    momentum: float = 0.0,
    opt_state=None,
):
    """One epoch of SGD over the training data ``x`` (n, n_in) with integer labels ``y`` (n,).

    ``key`` decides the shuffle; ``cost`` and ``activation`` (of the hidden layers) are those
    of ``backprop.loss``; ``eta``, ``lmbda``, ``regularization`` and ``momentum`` those of
    ``optimizer``, with n the number of training examples. ``kernel="auto"`` uses the CPU
    kernel where it applies, ``"xla"`` always the ``lax.scan`` of ``sgd_step``.

    Returns the updated params (same pytree and shapes) or, when ``opt_state`` (from
    ``init_state``, needed with momentum) is given, ``(params, opt_state)``.
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if momentum and opt_state is None:
        raise ValueError("momentum needs the optimiser state: pass opt_state=init_state(...)")
    state = init_state(params, momentum) if opt_state is None else opt_state
    n_out = params["biases"][-1].shape[0]
    full, rest = mini_batches(key, x.shape[0], mini_batch_size)
    tx = optimizer(eta, momentum, lmbda, x.shape[0], regularization)

    def update(carry, idx):
        params, state = carry
        y1 = costs.one_hot(y[idx], n_out, x.dtype)
        return sgd_step(params, state, x[idx], y1, tx, cost, activation)

    if uses_cpu_kernel(
        params, x, mini_batch_size, cost, activation, kernel, regularization, momentum
    ):
        decay = 1 - eta * lmbda / x.shape[0]
        params = cpu_kernel.sgd_epoch(params, x, y, full, eta, cost=cost, decay=decay)
    else:
        (params, state), _ = jax.lax.scan(
            lambda c, idx: (update(c, idx), None), (params, state), full
        )
    if rest.shape[0]:
        params, state = update((params, state), rest)
    return params if opt_state is None else (params, state)
