"""An ensemble of networks (chapter 6): each image gets the class most of the networks vote
for.

    votes = plurality_vote(jnp.stack([predict(p, x) for p in nets]), num_classes=10)
    wrong = misclassified(votes, y)            # indices of the images the ensemble got wrong
"""

import jax
import jax.numpy as jnp
import numpy as np

from nnjax.inputs import is_whole


@jax.jit
def _vote(predictions, classes):
    one_hot = predictions[:, :, None] == classes  # (N, n, C)
    counts = one_hot.sum(axis=0)  # (n, C)
    # The number of votes of each network's class; the first network (lowest index) whose
    # class has the most votes decides, which is the tie-break.
    support = jnp.where(one_hot, counts[None], 0).sum(axis=2)  # (N, n)
    first = jnp.argmax(support == support.max(axis=0), axis=0)  # (n,)
    return jnp.take_along_axis(predictions, first[None], axis=0)[0].astype(jnp.int32)


def plurality_vote(predictions, num_classes: int):
    """The ensemble's class for each example: int32 array (n,) from ``predictions``, an int
    array (N_networks, n) of each network's class in [0, num_classes).

    Each example gets the class with the most votes. A tie between classes goes to the
    tied class voted for by the earliest network (lowest row of ``predictions``): with two
    networks that disagree the ensemble answers like the first, and when all N disagree it
    answers like the first. ValueError for a vote outside [0, num_classes), where
    ``predictions`` are concrete; under ``jit`` it is not checked: such a vote counts for
    nothing, but where no network voted inside the classes it is the answer."""
    if getattr(predictions, "ndim", None) != 2 or predictions.shape[0] < 1:
        raise ValueError(
            "predictions must be 2-D (N_networks ≥ 1, n), got shape "
            f"{getattr(predictions, 'shape', None)}"
        )
    if not jnp.issubdtype(predictions.dtype, jnp.integer):
        raise ValueError(f"predictions must be integer classes, got dtype {predictions.dtype}")
    if not (is_whole(num_classes) and num_classes >= 1):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if predictions.size and not isinstance(predictions, jax.core.Tracer):
        lo, hi = int(jnp.min(predictions)), int(jnp.max(predictions))
        if lo < 0 or hi >= num_classes:
            raise ValueError(
                f"the predictions' votes run from {lo} to {hi}, outside the classes 0 to "
                f"{num_classes - 1}"
            )
    return _vote(
        jnp.asarray(predictions).astype(jnp.int32), jnp.arange(num_classes, dtype=jnp.int32)
    )


def _check_pair(votes, y):
    votes, y = np.asarray(votes), np.asarray(y)
    if votes.ndim != 1 or votes.shape != y.shape:
        raise ValueError(f"votes and y must both have shape (n,), got {votes.shape} and {y.shape}")
    return votes, y


def misclassified(votes, y):
    """Indices (int64 numpy array, ascending) of the examples where ``votes`` (n,) differs
    from the labels ``y`` (n,). Runs on the host."""
    votes, y = _check_pair(votes, y)
    return np.flatnonzero(votes != y)


def vote_accuracy(votes, y) -> float:
    """The fraction of examples (a Python float in [0, 1]) where ``votes`` (n,) equals the
    labels ``y`` (n,)."""
    votes, y = _check_pair(votes, y)
    return float((votes == y).mean()) if y.size else 0.0
