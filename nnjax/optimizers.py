"""Update rules: the book's SGD (with its L2/L1 weight decay and momentum) and the optax
optimizers a researcher swaps in, all as optax ``GradientTransformation``s.

    tx = optimizers.make("sgd")                       # the book's rule
    opt_state = optimizers.init(tx, params, eta=3.0, weight_decay=lmbda / n)
    opt_state = optimizers.set_hyperparams(opt_state, learning_rate=1.5)   # η schedule

``make`` returns a transformation whose learning rate η and weight decay live in its state
(``optax.inject_hyperparams``), not in the transformation: one compiled epoch serves every
η, an η schedule changes the state between epochs, and K networks vmapped side by side each
carry their own η and λ. Every step is

    g  = ∇C + weight_decay · w        (L2; L1: + weight_decay · sgn(w)), weights only
    Δ  = the optimizer's step for g   ("sgd": −η g, or the book's momentum v → μv − η g)

With ``weight_decay = λ/n`` (n the training-set size) the "sgd" step is network2.py's
``w → (1 − ηλ/n) w − (η/m) Σ_x ∂C_x/∂w``. Weight decay applies to the leaves whose path in
the parameter pytree goes through a dict key in ``WEIGHT_NAMES`` (``"weights"`` of chapter
1's networks, ``"w"`` of chapter 6's layers): biases and any other parameters are left
alone, whatever a layer's pytree looks like.

Adding an optimizer is one entry in ``STEPS``. Any other optax transformation may be passed
to ``nnjax.fit`` as it is; only the η schedule needs a ``learning_rate`` hyperparameter.
"""

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

WEIGHT_NAMES = ("weights", "w")


class Regularization(NamedTuple):
    """An entry of ``REGULARIZATIONS``: the ``penalty(w)`` (a scalar) that the book's cost
    adds for a weight array w, times λ/n, and its ``gradient(w)`` (shaped like w), which
    weight decay adds to ∂C/∂w, times λ/n."""

    penalty: Callable
    gradient: Callable


REGULARIZATIONS = {
    "l2": Regularization(lambda w: 0.5 * jnp.sum(w**2), lambda w: w),
    "l1": Regularization(lambda w: jnp.sum(jnp.abs(w)), jnp.sign),  # the book's sgn(0) = 0
}


def regularizer(name: str) -> Regularization:
    """The entry ``name`` of ``REGULARIZATIONS``; ValueError (one line) if there is none."""
    if name not in REGULARIZATIONS:
        raise ValueError(
            f"regularization must be one of {', '.join(REGULARIZATIONS)}, got {name!r}"
        )
    return REGULARIZATIONS[name]


def book_momentum(learning_rate, momentum) -> optax.GradientTransformation:
    """The book's momentum: v → μv − η∇C, w → w + v (the update is v itself). Unlike
    ``optax.sgd(eta, momentum=mu)``, whose velocity is not scaled by η, this stays the
    book's rule when η changes during training."""

    def update(grads, velocity, params=None):
        velocity = jax.tree.map(lambda v, g: momentum * v - learning_rate * g, velocity, grads)
        return velocity, velocity

    return optax.GradientTransformation(lambda params: jax.tree.map(jnp.zeros_like, params), update)


def _sgd(learning_rate, momentum):
    return book_momentum(learning_rate, momentum) if momentum else optax.sgd(learning_rate)


def _nesterov(learning_rate, momentum):
    return optax.sgd(learning_rate, momentum=momentum, nesterov=True)


def _adam(learning_rate, momentum):
    return optax.adam(learning_rate)


class Step(NamedTuple):
    """An entry of ``STEPS``: ``factory(learning_rate, momentum)`` returns the step's optax
    transformation; ``what`` is the line ``--optimizer``'s help shows; ``momentum`` says
    whether it takes a momentum μ: "unused" (μ must be 0), "optional" or "needed" (μ > 0)."""

    factory: Callable
    what: str
    momentum: str = "unused"


STEPS = {
    "sgd": Step(_sgd, "the book's SGD; with --momentum, its v → μv − η∇C", momentum="optional"),
    "nesterov": Step(_nesterov, "optax.sgd with Nesterov momentum μ", momentum="needed"),
    "adam": Step(_adam, "optax.adam (β1 = 0.9, β2 = 0.999), no momentum"),
}


def is_weight(path) -> bool:
    """Whether the pytree path ``path`` names a weight: it goes through a dict key in
    ``WEIGHT_NAMES``."""
    return any(getattr(k, "key", None) in WEIGHT_NAMES for k in path)


def weight_mask(params):
    """``params``' pytree of Python bools: True for the weights (``is_weight``)."""
    return jax.tree_util.tree_map_with_path(lambda path, _: is_weight(path), params)


def decay(strength, regularization: str = "l2") -> optax.GradientTransformation:
    """Adds ``strength`` × w (L2) or ``strength`` × sgn(w) (L1) to the gradient of every
    weight (``weight_mask``); other parameters' gradients pass unchanged."""
    gradient = regularizer(regularization).gradient

    def update(grads, state, params):
        def one(g, w, decays):
            return g + strength * gradient(w) if decays else g

        return jax.tree.map(one, grads, params, weight_mask(params)), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _chain(learning_rate, weight_decay, *, step, momentum, regularization):
    step = step.factory(learning_rate, momentum)
    return optax.chain(decay(weight_decay, regularization), step)


def check(name: str, momentum: float = 0.0, regularization: str = "l2") -> None:
    """Raises ValueError (one line) unless ``make`` takes these arguments."""
    if name not in STEPS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(STEPS)}")
    regularizer(regularization)
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if STEPS[name].momentum == "needed" and not momentum:
        raise ValueError(f"the {name} optimizer needs a momentum μ > 0")
    if STEPS[name].momentum == "unused" and momentum:
        raise ValueError(f"the {name} optimizer takes no momentum μ, got {momentum}")


def make(
    name: str = "sgd", momentum: float = 0.0, regularization: str = "l2"
) -> optax.GradientTransformation:
    """The optimizer ``name`` of ``STEPS`` after weight decay (``regularization`` "l2" or
    "l1"), with ``learning_rate`` and ``weight_decay`` as hyperparameters in its state (set
    them with ``init``). The same arguments give the same object, so compiled epochs are
    reused."""
    check(name, momentum, regularization)
    return _make(STEPS[name], float(momentum), regularization)


@functools.cache
def _make(step: Step, momentum: float, regularization: str) -> optax.GradientTransformation:
    factory = functools.partial(_chain, step=step, momentum=momentum, regularization=regularization)
    return optax.inject_hyperparams(factory, static_args="momentum")(
        learning_rate=0.0, weight_decay=0.0
    )


def set_hyperparams(opt_state, **values):
    """``opt_state`` with the given hyperparameters (``learning_rate``, ``weight_decay``)
    replaced; each value keeps the dtype and shape of the one it replaces (a stacked state
    takes a scalar for every network, or an array (K,)). ValueError for an η that is not
    positive or a negative weight decay, or either past the dtype's range (checked where
    they are concrete)."""
    hyper = dict(getattr(opt_state, "hyperparams", None) or {})
    for name, value in values.items():
        if name not in hyper:
            raise ValueError(
                f"this optimizer has no hyperparameter {name!r}: only those of "
                "optimizers.make keep η and the weight decay in their state (give another "
                "optax transformation its η when you make it, and call init without them)"
            )
        old = hyper[name]
        if not isinstance(value, jax.core.Tracer):  # checked before the cast, which overflows
            v = np.asarray(value, np.float64)
            fits = np.abs(v) <= float(jnp.finfo(old.dtype).max)
            if not np.all(fits & ((v > 0) if name == "learning_rate" else (v >= 0))):
                what = "η must be positive" if name == "learning_rate" else "λ/n must be from 0"
                raise ValueError(f"{name}: {what} and finite in {old.dtype}, got {value!r}")
        hyper[name] = jnp.broadcast_to(jnp.asarray(value, old.dtype), old.shape)
    return opt_state._replace(hyperparams=hyper)


def hyperparam(opt_state, name: str):
    """The value of hyperparameter ``name`` in ``opt_state`` (None if it has none)."""
    hyper = getattr(opt_state, "hyperparams", None) or {}
    return hyper.get(name)


def init(tx, params, eta=None, weight_decay=None):
    """``tx``'s initial state for ``params``, with η and the weight decay set when given
    (they need ``make``'s hyperparameters; ``set_hyperparams`` checks them). Without an η
    the state's is 0, which ``fit`` refuses until one is set."""
    state = tx.init(params)
    values = {"learning_rate": eta, "weight_decay": weight_decay}
    values = {k: v for k, v in values.items() if v is not None}
    return set_hyperparams(state, **values) if values else state
