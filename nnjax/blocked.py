r"""The blocked epoch: chapter 1-5's network trained B mini-batches at a time, with the
first layer's weights read and written once per block instead of several times per step.

The book's SGD step with L2 weight decay changes the first layer's weights w by a rank-m
matrix,

    w_{s+1} = c w_s − η d_sᵀ X_s,        c = 1 − η · weight_decay,

where X_s (m, n_in) is mini-batch s and d_s (m, n_1) the gradient of the mini-batch's mean
cost with respect to the first layer's weighted input. So within a block of B steps that
starts from w_0, step t's product is

    X_t w_tᵀ = c^t X_t w_0ᵀ − η Σ_{s<t} c^{t−1−s} (X_t X_sᵀ) d_s,

(m × m Gram blocks instead of w), and the block ends with one product,

    w_B = c^B w_0 − η Σ_s c^{B−1−s} d_sᵀ X_s.

Every other parameter (the biases, the later layers) takes its ordinary step at every
mini-batch, through ``jax.grad`` of the network's own Python layers
(``network.logits_after_first_product``) and the optimizer ``tx``. The result is the plain
epoch's up to the order of float additions. The point is memory traffic when many networks
train at once (a sweep on a GPU): a plain step moves w through memory about five times
(forward product, gradient, update), a block of B steps about five times in all, for
B·m²·n_in more multiply-adds a step (the Gram products X_t X_sᵀ). It is opt-in
(``epoch(..., kernel="blocked", block=B)``) and tested against the plain epoch.
"""

import jax
import jax.numpy as jnp
import optax

from nnjax import costs, fused, network, optimizers


def check(model, tx, mesh=None) -> None:
    """Raises ValueError (one line saying why) unless the blocked epoch can train with this
    model and optimizer: chapter 1-5's network (``model.book_network``), the book's plain
    SGD with L2 weight decay (``optimizers.make("sgd")``), one device."""
    why = fused.book_sgd_reason(model, tx)
    if not why and mesh is not None:
        why = "it trains on one device (leave out the mesh)"
    if why:
        raise ValueError(f"the blocked epoch cannot train this network: {why}")


def _tail_loss(xw, params, y, cost, activation):
    """The mini-batch's mean cost given its first-layer product ``xw`` (m, n_1) and labels
    ``y`` (m,): ``network.model``'s training loss from the first product on."""
    y1 = costs.one_hot(y, params["biases"][-1].shape[-1], xw.dtype)
    return network.loss_after_first_product(params, xw, y1, cost, activation)


def _block(params, opt_state, xb, yb, model, tx):
    """B steps on mini-batches ``xb`` (B, m, n_in), labels ``yb`` (B, m); returns
    ``(params, opt_state)`` as B plain steps would."""
    cost, activation = model.book_network
    eta = optimizers.hyperparam(opt_state, "learning_rate")
    c = 1 - eta * optimizers.hyperparam(opt_state, "weight_decay")
    w = params["weights"][0]
    steps = xb.shape[0]
    m = xb.shape[1]
    products = jnp.einsum("tmi,ji->tmj", xb, w)  # X_t w_0ᵀ: w read once
    # The Gram products in the parameters' dtype: data stored narrower (bfloat16 pixels, exact
    # for the book's k/256) would otherwise make them bfloat16 products; the others promote.
    flat = xb.reshape(-1, xb.shape[-1]).astype(w.dtype)
    # (B·m, B·m) in one product, though only the blocks below the diagonal are used: B
    # products of growing width (half the multiply-adds) were slower on the CPU.
    gram = flat @ flat.T
    grad = jax.grad(_tail_loss, argnums=(0, 1))
    ds = []
    for t in range(steps):
        xw = c**t * products[t]
        if t:
            # Σ_{s<t} c^{t−1−s} (X_t X_sᵀ) d_s as one product: (m, t·m) (t·m, n_1).
            scaled = jnp.concatenate([c ** (t - 1 - s) * ds[s] for s in range(t)])
            xw = xw - eta * (gram[t * m : (t + 1) * m, : t * m] @ scaled)
        d, g = grad(xw, params, yb[t], cost, activation)
        # g holds zeros for w (the tail does not use it); w's own update waits for the end.
        updates, opt_state = tx.update(g, opt_state, params)
        params = optax.apply_updates(params, updates)
        params = {"weights": [w, *params["weights"][1:]], "biases": params["biases"]}
        ds.append(d)
    scale = jnp.stack([c ** (steps - 1 - s) for s in range(steps)])
    w = c**steps * w - eta * jnp.einsum("t,tmj,tmi->ji", scale, jnp.stack(ds), xb)
    return {"weights": [w, *params["weights"][1:]], "biases": params["biases"]}, opt_state


def book_epoch(params, opt_state, x, y, batches, model, tx, block: int):
    """The epoch's full mini-batches ``batches`` (steps, m) of indices into ``x`` (n, n_in)
    and ``y`` (n,), ``block`` at a time (the last block may be shorter), each block gathered
    from the one copy of the data as it runs. Returns ``(params, opt_state)``. Call inside
    ``jit`` (``nnjax.epoch.epoch`` with ``kernel="blocked"``), after ``check``."""
    steps, m = batches.shape
    whole = steps // block

    def body(carry, idx):
        return _block(*carry, x[idx], y[idx], model, tx), None

    carry = (params, opt_state)
    if whole:
        blocks = batches[: whole * block].reshape(whole, block, m)
        carry, _ = jax.lax.scan(body, carry, blocks)
    if steps % block:
        carry, _ = body(carry, batches[whole * block :])
    return carry
