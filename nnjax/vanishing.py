"""Chapter 5's vanishing gradient in its simplest deep network: a chain of one sigmoid
neuron per layer,

    x → (w_1, b_1) → (w_2, b_2) → ... → (w_n, b_n) → a_n,   C = ½ (a_n − y)²,

which is ``nnjax.network``'s network of sizes [1, 1, ..., 1] with the quadratic cost. The
book writes its gradient as a product with one factor per layer,

    ∂C/∂b_1 = σ'(z_1) w_2 σ'(z_2) w_3 σ'(z_3) ... w_n σ'(z_n) ∂C/∂a_n,

and since σ'(z) ≤ σ'(0) = 1/4, every factor w_j σ'(z_j) with |w_j| < 1 shrinks the
gradient at least fourfold; with large weights and z_j ≈ 0 (``exploding_chain``) every
factor grows it instead. ``factors`` writes the product out, ``bias_grads`` is jax.grad.
"""

import jax
import jax.numpy as jnp

from nnjax import activations, costs, network

cost = costs.quadratic


def chain(w, b) -> network.Params:
    """The chain with weights ``w`` (n,) and biases ``b`` (n,) as a ``network`` pytree of
    sizes [1] * (n + 1): weights of shape (1, 1), biases of shape (1,)."""
    w, b = jnp.asarray(w, jnp.result_type(float)), jnp.asarray(b, jnp.result_type(float))
    if w.ndim != 1 or w.shape != b.shape or not w.size:
        raise ValueError(f"w and b must be of one shape (n,), n ≥ 1, got {w.shape}, {b.shape}")
    return {"weights": [wj.reshape(1, 1) for wj in w], "biases": [bj.reshape(1) for bj in b]}


def random_chain(key, n: int) -> network.Params:
    """A chain of ``n`` neurons with weights and biases drawn from N(0, 1) (``network.init``'s
    "normal", the book's chapter 1 initialisation)."""
    return network.init(key, [1] * (n + 1), jnp.result_type(float))


def exploding_chain(n: int, w: float = 100.0, x: float = 1.0) -> network.Params:
    """The book's exploding case: every weight ``w``, and each bias b_j = −w a_{j−1} so that
    every z_j = 0 and σ'(z_j) = 1/4 (for input ``x``): each factor w_j σ'(z_j) is w/4."""
    biases, a = [], x
    for _ in range(n):
        biases.append(-w * a)
        a = 0.5  # σ(0)
    return chain([w] * n, biases)


def weights_and_biases(params):
    """The chain's (w (n,), b (n,))."""
    return (
        jnp.concatenate([w.ravel() for w in params["weights"]]),
        jnp.concatenate([b.ravel() for b in params["biases"]]),
    )


def forward(params, x):
    """The weighted inputs z_j and outputs a_j = σ(z_j) of the n neurons for input ``x``:
    two arrays of shape (n,)."""
    zs, a = [], jnp.reshape(jnp.asarray(x, jnp.result_type(float)), (1,))
    for w, b in zip(params["weights"], params["biases"]):
        zs.append(a @ w.T + b)
        a = activations.sigmoid.fn(zs[-1])
    z = jnp.concatenate(zs)
    return z, activations.sigmoid.fn(z)


def bias_grads(params, x, y):
    """∂C/∂b_j for every layer j by ``jax.grad`` of ``network.loss``: shape (n,)."""
    dtype = jnp.result_type(float)
    x, y = jnp.reshape(jnp.asarray(x, dtype), (1,)), jnp.reshape(jnp.asarray(y, dtype), (1,))
    grads = jax.grad(network.loss)(params, x, y, cost)
    return jnp.concatenate([g.ravel() for g in grads["biases"]])


def factors(params, x, y) -> dict:
    """The book's product for ∂C/∂b_1, factor by factor: ``sigma_prime`` σ'(z_j) (n,),
    ``w`` the weights w_j (n,; w_1 is not in the product), ``layer`` the factors w_j σ'(z_j)
    (n,; entry 0, for j = 1, is σ'(z_1) alone), ``dC_da`` ∂C/∂a_n = a_n − y (a scalar, by
    jax.grad of the quadratic cost) and ``product``, their product: ∂C/∂b_1."""
    z, a = forward(params, x)
    w, _ = weights_and_biases(params)
    sigma_prime = activations.sigmoid.prime(z)
    y = jnp.reshape(jnp.asarray(y, a.dtype), (1,))
    dC_da = jax.grad(lambda a_n: cost.fn(z[-1:], a_n, y))(a[-1:])[0]
    layer = jnp.concatenate([sigma_prime[:1], w[1:] * sigma_prime[1:]])
    return {
        "sigma_prime": sigma_prime,
        "w": w,
        "layer": layer,
        "dC_da": dC_da,
        "product": jnp.prod(layer) * dC_da,
    }
