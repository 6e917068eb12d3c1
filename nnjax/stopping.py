"""When to stop, and when to lower η: chapter 3's "no improvement in n epochs" rules, and
the stop that is an error: a network that diverged.

The two rules are pure functions of the evaluation accuracies so far (one number per epoch), so a
resumed run makes the same decisions as an uninterrupted one.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


class Diverged(ArithmeticError):
    """Training made a network's parameters non-finite; the message names the epoch."""


def finite_networks(stacked) -> np.ndarray:
    """Whether each network of ``stacked`` (a pytree of arrays whose axis 0 counts networks)
    has only finite parameters: bool (K,), fetched from the device in one transfer."""
    rows = [jnp.isfinite(a).reshape(a.shape[0], -1).all(axis=1) for a in jax.tree.leaves(stacked)]
    return np.asarray(jax.device_get(jnp.stack(rows).all(axis=0)))


def check_finite(params, epoch: int, which: str = "the network") -> None:
    """Raises Diverged unless every array of the pytree ``params`` is finite after ``epoch``
    (η too large, or λ, sends the weights to inf and then NaN, at chance accuracy)."""
    if not finite_networks(jax.tree.map(lambda a: a[None], params))[0]:
        raise Diverged(
            f"training diverged in epoch {epoch}: {which}'s parameters are inf or NaN; "
            "try a smaller η (or λ)"
        )


def epochs_without_improvement(accuracies: Sequence[float]) -> int:
    """How many epochs have passed since the best accuracy so far was first reached."""
    if not accuracies:
        return 0
    best = max(accuracies)
    return len(accuracies) - 1 - list(accuracies).index(best)


def early_stop(accuracies: Sequence[float], patience: int) -> bool:
    """True when the last ``patience`` epochs did not improve on the best before them
    (``patience`` 0: never)."""
    return patience > 0 and epochs_without_improvement(accuracies) >= patience


def halving_schedule(
    accuracies: Sequence[float], eta: float, patience: int, floor: float = 1 / 128
):
    """The book's schedule: halve η each time ``patience`` epochs pass without a new best
    accuracy (the count restarts after each halving), and stop once η has fallen to
    ``floor`` × its initial value.

    Returns ``(eta for the next epoch, stop)``; ``patience`` 0 keeps η and never stops.
    """
    if patience <= 0:
        return eta, False
    current, best, waited = eta, float("-inf"), 0
    for accuracy in accuracies:
        if accuracy > best:
            best, waited = accuracy, 0
        else:
            waited += 1
            if waited >= patience:
                current, waited = current / 2, 0
    return current, current <= eta * floor
