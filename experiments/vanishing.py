r"""Chapter 5's vanishing (and exploding) gradient in a chain of one sigmoid neuron per layer.

    python -m experiments.vanishing                        # 4 neurons, w, b from N(0, 1)
    python -m experiments.vanishing --seed=3 --neurons=6
    python -m experiments.vanishing --w=0.5,-0.8,0.9,0.3 --b=0,0,0,0
    python -m experiments.vanishing --exploding            # w_j = 100, every z_j = 0

Prints each layer's w_j, b_j, z_j, σ'(z_j) and factor w_j σ'(z_j), and ∂C/∂b_1 twice: by
jax.grad of the network's quadratic cost and as the book's product
σ'(z_1) w_2 σ'(z_2) ... w_n σ'(z_n) ∂C/∂a_n; then how much each layer shrinks the gradient.
Computed in float64, as the book's code.
"""

from absl import app, flags

from experiments.checks import UsageError
from experiments.cli import SEED_BOUNDS, parse_flags, run_guarded
from experiments.flag_lists import parse_floats

# One line is printed per neuron; and the exploding chain's product, 25^(n − 1) / 8, passes
# float64's largest number at n = 223.
MAX_NEURONS = 200

FLAGS = flags.FLAGS
flags.DEFINE_integer(
    "neurons", 4, f"Neurons in the chain, one per layer (the book: 4; at most {MAX_NEURONS})."
)
flags.DEFINE_integer("seed", 0, "Seed of the N(0, 1) weights and biases.", **SEED_BOUNDS)
flags.DEFINE_list("w", None, "The weights w_1..w_n instead of drawn ones, comma separated.")
flags.DEFINE_list("b", None, "The biases b_1..b_n instead of drawn ones, comma separated.")
flags.DEFINE_bool(
    "exploding",
    False,
    "The book's exploding case: every w_j = 100 and b_j = −100 a_{j−1}, so that z_j = 0.",
)
flags.DEFINE_float("x", 1.0, "The input.")
flags.DEFINE_float("y", 0.0, "The desired output.")


def given_floats(name: str, n: int):
    """--name's values as n finite floats, or None if not given; UsageError naming it."""
    if FLAGS[name].value is None:
        return None
    values = parse_floats(name, FLAGS[name].value)
    if len(values) != n:
        raise UsageError(f"--{name} needs {n} values (--neurons={n}), got {len(values)}")
    return values


def run() -> None:
    n = FLAGS.neurons
    if not 2 <= n <= MAX_NEURONS:
        raise UsageError(f"--neurons must be in [2, {MAX_NEURONS}], got {n}")
    w, b = given_floats("w", n), given_floats("b", n)
    if FLAGS.exploding and (w is not None or b is not None):
        raise UsageError("--exploding sets the weights and biases: leave out --w and --b")
    import jax

    with jax.enable_x64(True):
        show(n, w, b)


def check_representable(z, sigma_prime, grads) -> None:
    """UsageError naming the flags that set the chain if float64 cannot show its gradient:
    σ'(z_j) rounds to 0 for z_j past about 37 (σ rounds to 1) or below about −745 (and
    with it ∂C/∂b_1 … ∂C/∂b_j), or a number is inf or NaN."""
    import numpy as np

    given = [f"--{k}" for k in ("w", "b", "x", "y") if FLAGS[k].present] or ["--seed"]
    flags_ = "/".join(given)
    if not (np.isfinite(z).all() and np.isfinite(grads).all()):
        raise UsageError(f"{flags_}: a z_j or ∂C/∂b_j is inf or NaN in float64; smaller values")
    zero = np.flatnonzero(sigma_prime == 0)
    if zero.size:
        j = int(zero[0])
        raise UsageError(
            f"{flags_}: z_{j + 1} = {z[j]:.4g}, where σ′(z) rounds to 0 in float64, and with it "
            f"∂C/∂b_j for j ≤ {j + 1}; give smaller values (z_j from about −700 to 36)"
        )
    if grads[-1] == 0:
        raise UsageError(f"{flags_}: the output a_n equals y, so every ∂C/∂b_j is 0")


def show(n: int, w, b) -> None:
    import jax
    import numpy as np

    from nnjax import vanishing

    x, y = FLAGS.x, FLAGS.y
    if FLAGS.exploding:
        params, where = vanishing.exploding_chain(n, 100.0, x), "w_j = 100, b_j = −100 a_{j−1}"
    else:
        drawn_w, drawn_b = vanishing.weights_and_biases(
            vanishing.random_chain(jax.random.key(FLAGS.seed), n)
        )
        params = vanishing.chain(drawn_w if w is None else w, drawn_b if b is None else b)
        drawn = [name for name, given in (("w", w), ("b", b)) if given is None]
        where = (
            f"{' and '.join(drawn)} drawn from N(0, 1), seed {FLAGS.seed}"
            if drawn
            else "w and b given"
        )
    ws, bs = (np.asarray(v) for v in vanishing.weights_and_biases(params))
    z, a = (np.asarray(v) for v in vanishing.forward(params, x))
    f = {k: np.asarray(v) for k, v in vanishing.factors(params, x, y).items()}
    grads = np.asarray(vanishing.bias_grads(params, x, y))
    check_representable(z, f["sigma_prime"], grads)
    print(
        f"A chain of {n} sigmoid neurons, one per layer: x = {x:g} → ... → a_{n}, "
        f"C = ½(a_{n} − y)², y = {y:g}; {where}."
    )
    print(
        f"{'j':>3s} {'w_j':>10s} {'b_j':>10s} {'z_j':>10s} {'σ′(z_j)':>9s}"
        f" {'w_j σ′(z_j)':>12s} {'∂C/∂b_j':>12s}"
    )
    for j in range(n):
        factor = f"{f['layer'][j]:12.4g}" if j else f"{'':>12s}"
        print(
            f"{j + 1:3d} {ws[j]:10.4g} {bs[j]:10.4g} {z[j]:10.4g} {f['sigma_prime'][j]:9.4f}"
            f" {factor} {grads[j]:12.4g}"
        )
    terms = " ".join(f"w_{j} σ′(z_{j})" for j in range(2, n + 1))
    print(f"∂C/∂a_{n} = a_{n} − y = {f['dC_da']:.6g}")
    print(f"∂C/∂b_1 = σ′(z_1) {terms} ∂C/∂a_{n} (the book's product)")
    print(
        "        = "
        + " × ".join(f"{v:.4g}" for v in [*f["layer"], f["dC_da"]])
        + f" = {f['product']:.10g}"
    )
    print(f"∂C/∂b_1 by jax.grad = {grads[0]:.10g}")
    print(
        f"σ′(z) ≤ σ′(0) = 1/4: the largest σ′(z_j) here is {f['sigma_prime'].max():.4f}, "
        "so |w_j σ′(z_j)| ≤ |w_j|/4."
    )
    print("Each layer back multiplies ∂C/∂a by w_j σ′(z_j):")
    for j in range(n - 1, 0, -1):
        factor = abs(f["layer"][j])
        if factor == 0:
            how = f"zeroes it (w_{j + 1} = 0)"
        else:
            how = f"shrinks {1 / factor:.3g}×" if factor < 1 else f"grows {factor:.3g}×"
        print(f"  layer {j + 1} → {j}: |w_{j + 1} σ′(z_{j + 1})| = {factor:.4g}, {how}")
    ratio = abs(grads[0] / grads[-1])
    print(f"|∂C/∂b_1| / |∂C/∂b_{n}| = {ratio:.4g}")


def main(argv):
    run_guarded(run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
