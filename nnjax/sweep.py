"""Sweeps: many networks of one architecture trained at once, one per setting of a grid.

A researcher's "what if" (which η, how much data, how much seed-to-seed noise) is a grid of
``Setting``s, each a seed, an η, a λ (L2) and a training-set size. ``run`` trains one
network per setting and scores it on the evaluation data after every epoch. Network i is
the single run ``python -m experiments.mnist`` makes with the same flags (exactly, with the
loop; up to the order of float additions, with vmap):

    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = network.init(init_key, sizes, init=init)
    epoch k shuffles with jax.random.fold_in(shuffle_key, k)   (sgd.mini_batches)

Two strategies train the networks:

* ``"vmap"``: the networks' parameters are stacked on a leading axis K and one compiled
  epoch (``sweep_epoch``) updates all K at every step, each with its own η, λ and shuffle.
  Each network's mini-batch is gathered by index from ONE copy of the training data
  (``x[idx]`` with idx of shape (K, m) gives (K, m, n_in) per step): nothing of size
  K × n × n_in ever exists (that copy would be 160 GB for K = 1024 on MNIST). Networks that
  do not fit in memory at once run in chunks (``chunk_size``).
* ``"loop"``: one network after another, each epoch by ``sgd.sgd_epoch``, which on the CPU
  runs the book's one-hidden-layer networks in nnjax's C++ kernel.

``"auto"`` (``pick_strategy``) picks ``"vmap"`` on GPUs and TPUs, where K networks' small
products fill the kernels that one network's step launches anyway. On the CPU it picks
``"loop"`` where the C++ kernel applies (the fastest way to train one such network) and
``"vmap"`` where it does not, in chunks of at most ``CPU_MAX_CHUNK`` networks: there XLA
computes a batched product of K small matrices as K small products, so a vmapped step gains
only from sharing the rest of the step (``benchmarks/sweep_speed.py`` measured 1.4× the
pure-JAX loop at K = 16), and beyond about 32 networks their parameters no longer stay in
the cache and it gets slower again.

Different training-set sizes mean different numbers of steps and different shuffles (a
permutation of n depends on n), so networks are grouped by training-set size, one program
per size; masking steps instead would spend the largest size's steps on every network and
could not reproduce a single run's shuffle.
"""

import collections
import dataclasses
import functools
import itertools
import math
import os
import statistics
import time
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp

from nnjax import activations, costs, cpu_kernel, network, sgd, stopping
from nnjax.activations import Activation

STRATEGIES = ("auto", "vmap", "loop")


class Setting(NamedTuple):
    """One network of a sweep: its seed, learning rate η, L2 λ and training-set size n."""

    seed: int
    eta: float
    lmbda: float
    train_size: int


# The most seeds one sweep takes: far more networks than fit in any device's memory.
MAX_NETWORKS = 2**20


def parse_seeds(text: str) -> list[int]:
    """Seeds from comma-separated integers and ranges ``A:B`` (A, A+1, ..., B−1):
    ``"0:4,10"`` → [0, 1, 2, 3, 10]. Raises ValueError (one line) on anything else, on an
    empty range, on seeds outside [0, 2^31) and on repeats."""
    seeds, count = [], 0
    for part in _items(text):
        try:
            bounds = [int(v) for v in part.split(":")]
        except ValueError:
            raise ValueError(f"{part!r} is neither an integer nor a range A:B") from None
        if len(bounds) > 2:
            raise ValueError(f"{part!r} is neither an integer nor a range A:B")
        if len(bounds) == 2 and bounds[1] <= bounds[0]:
            raise ValueError(f"the range {part} is empty (A:B means A, ..., B−1)")
        for seed in (bounds[0], bounds[-1] - (len(bounds) == 2)):  # checked before expanding
            if not 0 <= seed < 2**31:
                raise ValueError(f"seed {seed} is outside 0 ... 2^31 − 1")
        count += bounds[1] - bounds[0] if len(bounds) == 2 else 1
        if count > MAX_NETWORKS:
            raise ValueError(f"more than {MAX_NETWORKS:,} seeds (a sweep trains each at once)")
        seeds.extend(range(*bounds) if len(bounds) == 2 else bounds)
    return _distinct(seeds)


def parse_values(text: str, kind=float, positive: bool = True) -> list:
    """Comma-separated numbers of type ``kind`` (float or int), each finite and > 0
    (``positive``) or ≥ 0: ``"0.1,0.5,3"`` → [0.1, 0.5, 3.0]. Raises ValueError (one line)
    on anything else and on repeats."""
    values = []
    for part in _items(text):
        try:
            v = kind(part)
        except ValueError:
            raise ValueError(
                f"{part!r} is not {'a number' if kind is float else 'an integer'}"
            ) from None
        if not math.isfinite(v) or v < 0 or (positive and v == 0):
            raise ValueError(f"{part} is not {'positive' if positive else 'zero or positive'}")
        values.append(v)
    return _distinct(values)


def _items(text: str) -> list[str]:
    items = [p.strip() for p in text.split(",")]
    if not any(items):
        raise ValueError("no values given")
    if not all(items):
        raise ValueError(f"{text!r} has an empty item")
    return items


def _distinct(values: list) -> list:
    repeated = sorted(v for v, n in collections.Counter(values).items() if n > 1)
    if repeated:
        raise ValueError(f"repeats {', '.join(f'{v:g}' for v in repeated)}")
    return values


def grid(
    seeds: Sequence[int], etas: Sequence[float], lmbdas: Sequence[float], train_sizes: Sequence[int]
) -> list[Setting]:
    """Every combination of the values given, as a list of ``Setting``s ordered by training-
    set size, then η, then λ, then seed (so each setting's seeds are adjacent)."""
    return [
        Setting(int(seed), float(eta), float(lmbda), int(n))
        for n, eta, lmbda, seed in itertools.product(train_sizes, etas, lmbdas, seeds)
    ]


@dataclasses.dataclass(frozen=True)
class NetworkResult:
    """One network of a sweep: its setting, its score after every epoch and, if kept, its
    parameters. The accuracies are fractions in [0, 1]."""

    setting: Setting
    correct: tuple  # evaluation examples classified correctly after each epoch
    total: int  # evaluation examples
    params: Optional[dict] = None  # the trained network, when ``run(keep_params=True)``

    @property
    def best_epoch(self) -> int:
        """The first epoch (0-based, as the book prints them) with the most correct."""
        return max(range(len(self.correct)), key=lambda k: self.correct[k])

    @property
    def best_accuracy(self) -> float:
        """The best epoch's accuracy, a fraction in [0, 1]."""
        return self.correct[self.best_epoch] / self.total

    @property
    def final_accuracy(self) -> float:
        """The last epoch's accuracy, a fraction in [0, 1]."""
        return self.correct[-1] / self.total

    def as_dict(self) -> dict:
        """One JSON-able object: the setting, best and final accuracy, epoch of best and
        the accuracy after every epoch."""
        return {
            **self.setting._asdict(),
            "best_accuracy": self.best_accuracy,
            "best_epoch": self.best_epoch,
            "final_accuracy": self.final_accuracy,
            "total": self.total,
            "accuracies": [c / self.total for c in self.correct],
        }


@dataclasses.dataclass(frozen=True)
class Summary:
    """The networks of one (η, λ, n) over their seeds: means and sample sds (0 for one seed)."""

    eta: float
    lmbda: float
    train_size: int
    seeds: int
    best_mean: float
    best_sd: float
    final_mean: float
    final_sd: float
    epoch_means: tuple  # mean accuracy after each epoch
    epoch_sds: tuple


def _mean_sd(values):
    values = list(values)
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(results: Sequence[NetworkResult]) -> list[Summary]:
    """Aggregates ``results`` over seeds: one ``Summary`` per (η, λ, n), in first-seen order."""
    groups = {}
    for r in results:
        groups.setdefault((r.setting.eta, r.setting.lmbda, r.setting.train_size), []).append(r)
    summaries = []
    for (eta, lmbda, n), rs in groups.items():
        per_epoch = [
            _mean_sd(r.correct[k] / r.total for r in rs)
            for k in range(min(len(r.correct) for r in rs))
        ]
        summaries.append(
            Summary(
                eta,
                lmbda,
                n,
                len(rs),
                *_mean_sd(r.best_accuracy for r in rs),
                *_mean_sd(r.final_accuracy for r in rs),
                tuple(m for m, _ in per_epoch),
                tuple(s for _, s in per_epoch),
            )
        )
    return summaries


def pick_strategy(
    strategy: str,
    sizes: Sequence[int],
    mini_batch_size: int,
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
    kernel: str = "auto",
    backend: Optional[str] = None,
) -> str:
    """``"vmap"`` or ``"loop"``: ``strategy`` itself unless it is ``"auto"``, which means
    ``"loop"`` on the CPU backend when nnjax's C++ kernel trains these networks (``kernel``
    is ``"auto"`` and ``cpu_kernel.supports`` them, in float32), and ``"vmap"`` otherwise."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy != "auto":
        return strategy
    if (backend or jax.default_backend()) != "cpu" or kernel != "auto":
        return "vmap"
    shapes = jax.eval_shape(lambda: network.init(jax.random.key(0), list(sizes)))
    x = jax.ShapeDtypeStruct((mini_batch_size, sizes[0]), jnp.float32)
    return "loop" if cpu_kernel.supports(shapes, x, mini_batch_size, cost, activation) else "vmap"


def init_networks(
    seeds: Sequence[int], sizes: Sequence[int], init: str = "normal", dtype=jnp.float32
):
    """K networks as single runs with these seeds would start them.

    Returns ``(params, shuffle_keys)``: ``network.init``'s pytree with a leading axis K on
    every leaf, and the K shuffle keys (epoch k of network i shuffles with
    ``fold_in(shuffle_keys[i], k)``).
    """
    return _init_networks(
        jnp.asarray(list(seeds), jnp.uint32), tuple(sizes), init, jnp.dtype(dtype)
    )


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _init_networks(seeds, sizes, init, dtype):
    keys = jax.vmap(lambda s: jax.random.split(jax.random.key(s)))(seeds)
    params = jax.vmap(lambda k: network.init(k, sizes, dtype, init))(keys[:, 0])
    return params, keys[:, 1]


@functools.partial(jax.jit, static_argnames=("train_size", "mini_batch_size", "cost", "activation"))
def sweep_epoch(
    params,
    x,
    y,
    keys,
    eta,
    lmbda,
    train_size: int,
    mini_batch_size: int,
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
):
    """One epoch of SGD for K networks at once, on the first ``train_size`` rows of ``x``.

    ``params`` are stacked (leading axis K); ``keys`` (K,) are this epoch's shuffle keys;
    ``eta`` and ``lmbda`` (K,) each network's η and L2 λ. ``x`` (N, n_in) and ``y`` (N,) are
    shared by all K networks and only read through each step's (K, m) indices, so only
    rows < ``train_size`` are used and no per-network copy is made. Network i gets exactly
    ``sgd.sgd_epoch(params[i], x[:train_size], y[:train_size], keys[i], eta[i],
    mini_batch_size, cost, activation, kernel="xla", lmbda=lmbda[i])``, up to the order of
    float additions. Returns the stacked params.
    """
    n, m = train_size, mini_batch_size
    n_out = params["biases"][-1].shape[-1]
    full, rest = jax.vmap(lambda k: sgd.mini_batches(k, n, m))(keys)  # (K, n//m, m), (K, n%m)

    def update(params, idx):  # idx (K, b): the rows of each network's mini-batch
        def one(p, i, eta, lmbda):
            tx = sgd.optimizer(eta, 0.0, lmbda, n)
            y1 = costs.one_hot(y[i], n_out, x.dtype)
            return sgd.sgd_step(p, tx.init(p), x[i], y1, tx, cost, activation)[0]

        return jax.vmap(one)(params, idx, eta, lmbda)

    params, _ = jax.lax.scan(
        lambda p, idx: (update(p, idx), None), params, jnp.swapaxes(full, 0, 1)
    )
    if rest.shape[1]:
        params = update(params, rest)
    return params


@functools.partial(jax.jit, static_argnames=("activation", "batch_size"))
def evaluate_all(
    params, x, y, activation: Activation = activations.sigmoid, batch_size: Optional[int] = None
):
    """``network.evaluate`` of each of K stacked networks on ``x`` (N, n_in), ``y`` (N,):
    int32 (K,). ``batch_size`` networks are scored at a time (all K when None), which bounds
    the activations held at once to batch_size × N × (hidden + output units)."""
    return jax.lax.map(
        lambda p: network.evaluate(p, x, y, activation), params, batch_size=batch_size
    )


# Memory: what one network of a vmapped epoch holds, to size chunks.
EVAL_BATCH_BYTES = 256 << 20  # activations of the networks scored at once
CPU_DEFAULT_BYTES = 4 << 30  # when the device cannot say, and physical memory is unknown
CPU_MAX_CHUNK = 16  # networks per vmapped program on the CPU (see the top)


def bytes_per_network(
    sizes: Sequence[int], mini_batch_size: int, train_size: int, itemsize: int = 4
) -> int:
    """An upper estimate of the device memory one network of ``sweep_epoch`` needs: its
    parameters four times over (current, gradient, update, the scan's output buffer), a
    mini-batch step's gathered rows and activations, and the epoch's shuffle (the
    permutation, the Feistel network's temporaries and the (n // m, m) indices)."""
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    activations_ = mini_batch_size * (sizes[0] + 4 * sum(sizes[1:]))
    shuffle = 4 * train_size
    return (4 * n_params + activations_) * itemsize + 4 * shuffle


def eval_batch(sizes: Sequence[int], n_eval: int, itemsize: int = 4) -> int:
    """How many networks ``evaluate_all`` scores at once: as many as fit in
    ``EVAL_BATCH_BYTES`` of activations (z, a and a temporary for every unit and all N
    examples)."""
    per_network = 3 * n_eval * sum(sizes[1:]) * itemsize
    return max(1, EVAL_BATCH_BYTES // max(per_network, 1))


def available_bytes(device=None) -> int:
    """Memory a sweep may use on ``device`` (default: the first): 70% of what its
    ``memory_stats`` says is free; on backends without them (the CPU), a quarter of the
    physical memory, or 4 GiB if that is unknown."""
    device = device or jax.devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(0.7 * (stats["bytes_limit"] - stats.get("bytes_in_use", 0)))
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return CPU_DEFAULT_BYTES


def chunk_size(
    n_networks: int,
    sizes: Sequence[int],
    mini_batch_size: int,
    train_size: int,
    budget: Optional[int] = None,
) -> int:
    """How many networks of ``sweep_epoch`` to train at once: all ``n_networks`` if they fit
    in ``budget`` bytes (default ``available_bytes()``) after the evaluation's activations,
    else as many as do (at least 1)."""
    budget = available_bytes() if budget is None else budget
    per = bytes_per_network(sizes, mini_batch_size, train_size)
    return max(1, min(n_networks, (budget - EVAL_BATCH_BYTES) // per))


def split_evenly(n: int, chunk: int) -> list[range]:
    """0..n−1 as ceil(n / chunk) consecutive ranges of nearly equal length (≤ chunk)."""
    parts = -(-n // chunk)
    size = -(-n // parts)
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def _train_vmap(
    settings,
    sizes,
    x,
    y,
    eval_x,
    eval_y,
    *,
    epochs,
    mini_batch_size,
    cost,
    activation,
    init,
    chunk,
    keep_params,
    progress,
    on_result,
):
    """The vmap strategy for settings of one training-set size; returns NetworkResults."""
    n = settings[0].train_size
    if chunk is None:
        chunk = chunk_size(len(settings), sizes, mini_batch_size, n)
        if jax.default_backend() == "cpu":
            chunk = min(chunk, CPU_MAX_CHUNK)
    ranges = split_evenly(len(settings), chunk)
    width = len(ranges[0])
    batch = min(width, eval_batch(sizes, eval_x.shape[0]))
    results = []
    for part, indices in enumerate(ranges):
        chosen = [settings[i] for i in indices]
        # Every chunk is given the same width (repeating its last network) so that all
        # chunks run the same compiled program; the repeats' results are dropped.
        padded = chosen + [chosen[-1]] * (width - len(chosen))
        params, keys = init_networks([s.seed for s in padded], sizes, init, x.dtype)
        eta = jnp.asarray([s.eta for s in padded], x.dtype)
        lmbda = jnp.asarray([s.lmbda for s in padded], x.dtype)
        correct = []
        for k in range(epochs):
            start = time.perf_counter()
            epoch_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, k)
            params = sweep_epoch(
                params, x, y, epoch_keys, eta, lmbda, n, mini_batch_size, cost, activation
            )
            _check_finite(params, chosen, k)
            correct.append(jax.device_get(evaluate_all(params, eval_x, eval_y, activation, batch)))
            if progress:
                acc = correct[-1][: len(chosen)] / eval_y.shape[0]
                where = f", chunk {part + 1}/{len(ranges)}" if len(ranges) > 1 else ""
                progress(
                    f"n={n}{where}: epoch {k + 1}/{epochs}, {len(chosen)} networks, "
                    f"accuracy {100 * acc.mean():.2f}% mean, {100 * acc.max():.2f}% max "
                    f"({time.perf_counter() - start:.2f} s"
                    f"{', compile included' if k == 0 and part == 0 else ''})"
                )
        for j, s in enumerate(chosen):
            kept = jax.tree.map(lambda a, j=j: a[j], params) if keep_params else None
            results.append(
                NetworkResult(s, tuple(int(c[j]) for c in correct), int(eval_y.shape[0]), kept)
            )
            if on_result:
                on_result(results[-1])
    return results


def _check_finite(params, chosen, epoch: int) -> None:
    """Raises stopping.Diverged naming the settings of ``chosen`` whose networks (stacked
    ``params``, one per row; rows past ``chosen`` are padding) are not finite after
    ``epoch``: one line, as a single run's."""
    bad = [s for s, ok in zip(chosen, stopping.finite_networks(params)) if not ok]
    if bad:
        first = f"seed {bad[0].seed}, η = {bad[0].eta:g}, λ = {bad[0].lmbda:g}"
        who = (
            f"the network of {first} has"
            if len(bad) == 1
            else f"{len(bad)} networks (the first: {first}) have"
        )
        raise stopping.Diverged(
            f"training diverged in epoch {epoch}: {who} inf or NaN parameters; "
            "try a smaller η (or λ)"
        )


def _train_loop(
    settings,
    sizes,
    x,
    y,
    eval_x,
    eval_y,
    *,
    epochs,
    mini_batch_size,
    cost,
    activation,
    init,
    kernel,
    keep_params,
    progress,
    on_result,
):
    """The loop strategy for settings of one training-set size: single runs, one by one."""
    n = settings[0].train_size
    x, y = x[:n], y[:n]
    results = []
    for i, s in enumerate(settings):
        start = time.perf_counter()
        init_key, shuffle_key = jax.random.split(jax.random.key(s.seed))
        params = network.init(init_key, sizes, x.dtype, init)
        eta, lmbda = jnp.asarray(s.eta, x.dtype), jnp.asarray(s.lmbda, x.dtype)
        correct = []
        for k in range(epochs):
            params = sgd.sgd_epoch(
                params,
                x,
                y,
                jax.random.fold_in(shuffle_key, k),
                eta,
                mini_batch_size,
                cost,
                activation,
                kernel,
                lmbda,
            )
            _check_finite(jax.tree.map(lambda a: a[None], params), [s], k)
            correct.append(int(network.evaluate(params, eval_x, eval_y, activation)))
        results.append(
            NetworkResult(s, tuple(correct), int(eval_y.shape[0]), params if keep_params else None)
        )
        if progress:
            r = results[-1]
            progress(
                f"n={n}: network {i + 1}/{len(settings)} (seed {s.seed}, η={s.eta:g}, "
                f"λ={s.lmbda:g}): best {100 * r.best_accuracy:.2f}% at epoch "
                f"{r.best_epoch}, final {100 * r.final_accuracy:.2f}% "
                f"({time.perf_counter() - start:.2f} s{', compile included' if i == 0 else ''})"
            )
        if on_result:
            on_result(results[-1])
    return results


def run(
    settings: Sequence[Setting],
    sizes: Sequence[int],
    train_data,
    eval_data,
    *,
    epochs: int,
    mini_batch_size: int,
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
    init: str = "normal",
    strategy: str = "auto",
    chunk: Optional[int] = None,
    kernel: str = "auto",
    matmul_precision: str = "highest",
    keep_params: bool = False,
    progress: Optional[Callable[[str], None]] = None,
    on_result: Optional[Callable[[NetworkResult], None]] = None,
) -> list[NetworkResult]:
    """Trains one network of layer sizes ``sizes`` per setting for ``epochs`` epochs of SGD
    with mini-batches of ``mini_batch_size`` and scores each on ``eval_data`` after every
    epoch.

    ``train_data`` and ``eval_data`` are pairs ``(x (N, n_in) float, y (N,) int)``; a
    setting with training-set size n trains on the first n rows. ``strategy`` is ``"vmap"``,
    ``"loop"`` or ``"auto"`` (``pick_strategy``); ``chunk`` caps how many networks one vmapped
    program trains (default: as many as fit, ``chunk_size``, and on the CPU at most
    ``CPU_MAX_CHUNK``); ``kernel`` is
    ``sgd.sgd_epoch``'s, for the loop. ``progress(message)`` is called after every epoch
    (vmap) or network (loop), ``on_result`` with each network's result as soon as it is done.

    Returns one ``NetworkResult`` per setting, in the order of ``settings``; with
    ``keep_params`` each holds its trained parameters.
    """
    settings = list(settings)
    if not settings:
        return []
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    sizes = network.check_sizes(sizes)
    strategy = pick_strategy(strategy, sizes, mini_batch_size, cost, activation, kernel)
    with jax.default_matmul_precision(matmul_precision):
        x, y = (jax.device_put(a) for a in train_data)
        eval_x, eval_y = (jax.device_put(a) for a in eval_data)
        for s in settings:
            if not mini_batch_size <= s.train_size <= x.shape[0]:
                raise ValueError(
                    f"training-set size {s.train_size} is not between the "
                    f"mini-batch size {mini_batch_size} and the {x.shape[0]} "
                    "training examples"
                )
        common = dict(
            epochs=epochs,
            mini_batch_size=mini_batch_size,
            cost=cost,
            activation=activation,
            init=init,
            keep_params=keep_params,
            progress=progress,
            on_result=on_result,
        )
        by_setting = {}
        for n in dict.fromkeys(s.train_size for s in settings):
            group = [s for s in settings if s.train_size == n]
            if strategy == "vmap":
                done = _train_vmap(group, sizes, x, y, eval_x, eval_y, chunk=chunk, **common)
            else:
                done = _train_loop(group, sizes, x, y, eval_x, eval_y, kernel=kernel, **common)
            for r in done:
                by_setting.setdefault(r.setting, []).append(r)
    # Repeated settings (the same network twice) each get one of the identical results.
    return [by_setting[s].pop() for s in settings]
