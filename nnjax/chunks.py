"""How many networks of a vmapped epoch fit in memory at once: a sweep's chunks.

``bytes_per_network`` estimates what one network of a vmapped epoch holds, ``chunk_size``
how many fit in what the device has free, ``split_evenly`` cuts K networks into equal
chunks (one program for all), ``eval_batch`` how many networks are scored at once.
"""

from typing import Optional, Sequence

from nnjax import parallel
from nnjax.inputs import is_whole

# Memory: what one network of a vmapped epoch holds, to size chunks.
EVAL_BATCH_BYTES = 256 << 20  # activations of the networks scored at once
CPU_MAX_CHUNK = 16  # networks per vmapped program on the CPU (see nnjax.sweep)


def bytes_per_network(
    sizes: Sequence[int], mini_batch_size: int, train_size: int, itemsize: int = 4, block: int = 1
) -> int:
    """An upper estimate of the device memory one network of a vmapped epoch needs: its
    parameters four times over (current, gradient, update, the scan's output buffer), a
    mini-batch step's gathered rows and activations (``block`` steps' and their Gram matrix
    for the blocked epoch), and the epoch's shuffle (the permutation, the Feistel network's
    temporaries and the (n // m, m) indices)."""
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    rows = mini_batch_size * block
    activations_ = rows * (sizes[0] + 4 * sum(sizes[1:])) + (rows * rows if block > 1 else 0)
    shuffle = 4 * train_size
    return (4 * n_params + activations_) * itemsize + 4 * shuffle


def eval_batch(sizes: Sequence[int], n_eval: int, itemsize: int = 4) -> int:
    """How many networks ``fit`` scores at once (its ``eval_batch``): as many as fit in
    ``EVAL_BATCH_BYTES`` of activations (z, a and a temporary for every unit and all N
    examples)."""
    per_network = 3 * n_eval * sum(sizes[1:]) * itemsize
    return max(1, EVAL_BATCH_BYTES // max(per_network, 1))


def available_bytes(device=None) -> int:
    """Memory a sweep may use on ``device`` (default: the first): 70% of what
    ``parallel.free_memory`` says is free."""
    return parallel.free_memory(device)[0] * 7 // 10


def chunk_size(
    n_networks: int,
    sizes: Sequence[int],
    mini_batch_size: int,
    train_size: int,
    budget: Optional[int] = None,
    block: int = 1,
) -> int:
    """How many networks of a vmapped epoch to train at once: all ``n_networks`` if they fit
    in ``budget`` bytes (default ``available_bytes()``) after the evaluation's activations,
    else as many as do (at least 1)."""
    budget = available_bytes() if budget is None else budget
    per = bytes_per_network(sizes, mini_batch_size, train_size, block=block)
    return max(1, min(n_networks, (budget - EVAL_BATCH_BYTES) // per))


def split_evenly(n: int, chunk: int) -> list[range]:
    """0..n−1 as ceil(n / chunk) consecutive ranges, each of ceil(n / parts) ≤ ``chunk``
    but the last, which may be shorter. ValueError unless n ≥ 0 and chunk ≥ 1."""
    if not (is_whole(n) and is_whole(chunk) and n >= 0 and chunk >= 1):
        raise ValueError(f"split_evenly needs n ≥ 0 and chunk ≥ 1, got {n!r}, {chunk!r}")
    if n == 0:
        return []
    parts = -(-n // chunk)
    size = -(-n // parts)
    return [range(start, min(start + size, n)) for start in range(0, n, size)]
