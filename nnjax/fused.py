"""What nnjax's hand-fused epochs (the C++ CPU one, ``nnjax.cpu_kernel``, and the Pallas GPU
one, ``nnjax.gpu_kernel``) share: which networks they can train, and how they run the book's
SGD from its optax state. Both are opt-in copies of chapter 1's step; the JAX epoch
(``nnjax.epoch``) is what trains by default."""

import jax
import jax.numpy as jnp

from nnjax import activations, costs


def book_sgd_reason(model, tx) -> str:
    """Why an epoch written for the book's network and update cannot train ``model`` with
    ``tx`` ("" if it can): it needs chapter 1-5's network (``model.book_network``) and the
    book's plain SGD with L2 weight decay (``optimizers.make("sgd")``)."""
    from nnjax import optimizers

    if model.book_network is None:
        return f"it trains chapter 1-5 networks only, not {model.name or 'this model'}"
    if tx is not optimizers.make("sgd"):
        return "it runs the book's plain SGD with L2 regularisation only (no momentum, L1 or Adam)"
    return ""


def reason(model, tx, params, x, mini_batch_size: int, max_mini_batch: int) -> str:
    """Why a hand-fused epoch cannot train ``params`` of ``model`` with ``tx`` on ``x`` at
    mini-batch ``mini_batch_size`` ("" if it can): it takes chapter 1-5's network
    (``model.book_network``) with one hidden layer, sigmoid units and the quadratic or
    cross-entropy cost; the book's plain SGD with L2 weight decay
    (``optimizers.make("sgd")``); float32; 1 ≤ m ≤ ``max_mini_batch`` and at least one full
    mini-batch."""
    why = book_sgd_reason(model, tx)
    if why:
        return why
    if len(params["weights"]) != 2:
        return "it trains networks of one hidden layer only"
    if model.book_network[0] not in (costs.quadratic, costs.cross_entropy):
        return f"it knows the quadratic and cross-entropy costs, not {model.book_network[0].name}"
    if model.book_network[1] is not activations.sigmoid:
        return f"it knows sigmoid neurons only, not {model.book_network[1].name}"
    if not 1 <= mini_batch_size <= max_mini_batch:
        return f"it takes mini-batches of 1 to {max_mini_batch}, not {mini_batch_size}"
    if x.shape[0] < mini_batch_size:
        return "it needs at least one full mini-batch"
    if x.dtype != jnp.float32 or any(p.dtype != jnp.float32 for p in jax.tree.leaves(params)):
        return "it computes in float32 only"
    return ""


def book_epoch(sgd_epoch, params, opt_state, x, y, batches, model):
    """The full mini-batches ``batches`` (steps, m) by a hand-fused ``sgd_epoch(params, x, y,
    batches, eta, cost=, decay=)``: the same updates as the JAX epoch with
    ``optimizers.make("sgd")``'s state ``opt_state`` (its η, and its L2 weight decay as the
    factor 1 − ηλ/n). Returns ``(params, opt_state)``, the state's step count advanced."""
    eta = opt_state.hyperparams["learning_rate"]
    decay = 1 - eta * opt_state.hyperparams["weight_decay"]
    params = sgd_epoch(params, x, y, batches, eta, cost=model.book_network[0], decay=decay)
    return params, opt_state._replace(count=opt_state.count + batches.shape[0])
