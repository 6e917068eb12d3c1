"""Sweeps: many networks of one architecture trained at once, one per setting of a grid.

``run`` trains one network per ``nnjax.grid.Setting`` (a seed, η, λ and training-set size)
and scores it after every epoch. Network i is the single run ``python -m experiments.mnist``
makes with the same flags (exactly, with the loop; up to the order of float additions, with
vmap): ``init_key, shuffle_key = nnjax.seeds.run_keys(seed)``, its params
``network.init(init_key, sizes, init=init)``, epoch k drawn with ``fold_in(shuffle_key, k)``.

``nnjax.fit.fit`` trains them, by one of its two strategies:

* ``"vmap"`` (``strategy="auto"``'s choice off the CPU): the networks' parameters and
  optimizer states are stacked on a leading axis K and one compiled epoch updates all K at
  every step, each with its own η, λ and shuffle. Each network's mini-batch is gathered by
  index from ONE copy of the training data (``x[idx]`` with idx of shape (K, m) gives
  (K, m, n_in) per step): nothing of size K × n × n_in ever exists (that copy would be 160
  GB for K = 1024 on MNIST). Networks that do not fit in memory at once run in chunks
  (``nnjax.chunks.chunk_size``); on the CPU, chunks of at most ``chunks.CPU_MAX_CHUNK``:
  there XLA computes a batched product of K small matrices as K small products, so a vmapped
  step gains only from sharing the rest of the step, and beyond about 32 networks their
  parameters no longer stay in the cache.
* ``"loop"`` (``"auto"``'s choice on the CPU): one network after another, each its own
  compiled epoch.

Different training-set sizes mean different numbers of steps and different shuffles (a
permutation of n depends on n), so networks are grouped by training-set size, one program
per size; masking steps instead would spend the largest size's steps on every network and
could not reproduce a single run's shuffle.
"""

import functools
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import activations, chunks, costs, fit, history, network, optimizers, stacked
from nnjax.activations import Activation
from nnjax.grid import Setting, check_setting
from nnjax.history import History
from nnjax.progress import duration
from nnjax.seeds import run_keys


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
    init_keys, shuffle_keys = jax.vmap(run_keys)(seeds)
    params = jax.vmap(lambda k: network.init(k, sizes, dtype, init))(init_keys)
    return params, shuffle_keys


def _train_group(
    settings,
    sizes,
    train_data,
    eval_data,
    *,
    epochs,
    mini_batch_size,
    model,
    tx,
    init,
    strategy,
    ranges,
    keep_params,
    progress,
    on_result,
    matmul_precision,
    mesh,
    kernel,
    block,
    work,
):
    """The networks of one training-set size, chunk by chunk (``ranges``); returns
    (Setting, History)s. ``work`` counts the sweep's network-epochs, for the time left."""
    n = settings[0].train_size
    x, y = (a[:n] for a in train_data)
    width = len(ranges[0])
    batch = min(width, chunks.eval_batch(sizes, eval_data[0].shape[0]))
    results = []
    for part, indices in enumerate(ranges):
        chosen = [settings[i] for i in indices]
        # Every chunk is given the same width (repeating its last network) so that all
        # chunks run the same program; the repeats' results are dropped.
        padded = chosen + [chosen[-1]] * (width - len(chosen))
        params, keys = init_networks([s.seed for s in padded], sizes, init, x.dtype)
        runs = [
            History(p, optimizers.init(tx, p, eta=s.eta, weight_decay=s.lmbda / n))
            for p, s in zip(stacked.unstack(params, width), padded)
        ]
        start = [time.perf_counter()]
        where = f", chunk {part + 1}/{len(ranges)}" if len(ranges) > 1 else ""

        def report(i, r, chosen=chosen, where=where, start=start, runs=runs, part=part):
            going = [j for j, run in enumerate(runs) if run.diverged is None]
            if progress and i == going[-1]:  # the epoch's last report
                alive = [run for run in runs[: len(chosen)] if run.diverged is None]
                acc = np.array([run.epochs[-1].accuracy for run in alive] or [np.nan])
                lost = len(chosen) - len(alive)
                now = time.perf_counter()
                first = r.epoch == 0 and part == 0  # the size's first program compiles
                left = work.tick(n * width, now - start[0], first)
                progress(
                    f"n={n}{where}: epoch {r.epoch + 1}/{epochs}, {len(alive)} networks"
                    + (f" ({lost} diverged)" if lost else "")
                    + f", accuracy {100 * acc.mean():.2f}% mean, {100 * acc.max():.2f}% max "
                    f"({now - start[0]:.2f} s{', compile included' if first else ''}{left})"
                )
                start[0] = now

        fit.fit(
            model,
            tx,
            runs,
            (x, y),
            epochs=epochs,
            mini_batch_size=mini_batch_size,
            keys=list(keys),
            eval_data=eval_data,
            strategy=strategy,
            eval_batch=batch,
            matmul_precision=matmul_precision,
            mesh=mesh,
            kernel=kernel,
            block=block,
            on_divergence="stop",
            on_epoch=report,
        )
        if progress and all(run.diverged is not None for run in runs[: len(chosen)]):
            first = min(run.diverged for run in runs[: len(chosen)])
            progress(f"n={n}{where}: all {len(chosen)} networks diverged (from epoch {first})")
        for s, run in zip(chosen, runs):
            if not keep_params:
                run.params = run.opt_state = None
            results.append((s, run))
            if on_result and run.diverged is None:
                on_result(s, run)
    return results


def _chunks(settings, sizes, mini_batch_size, chunk, kernel, block) -> list:
    """How the networks of ``settings`` (of one training-set size) are split into chunks,
    one program each: lists of their indices, all of one width."""
    if chunk is None:
        blocks = block if kernel == "blocked" else 1
        n = settings[0].train_size
        chunk = chunks.chunk_size(len(settings), sizes, mini_batch_size, n, block=blocks)
        if jax.default_backend() == "cpu":
            chunk = min(chunk, chunks.CPU_MAX_CHUNK)
    return chunks.split_evenly(len(settings), chunk)


class _Work:
    """A sweep's work, in network-epochs weighted by their training-set size, and the time
    left at the rate so far (leaving out the epochs that compiled, once others ran)."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.timed = [0, 0.0]  # the work and seconds of epochs that did not compile
        self.first = (1, 0.0)  # the last that did, compilation included

    def tick(self, amount: int, seconds: float, first: bool) -> str:
        """Counts ``amount`` done in ``seconds``; returns "; about T left" (or "")."""
        self.done += amount
        if first:
            self.first = (amount, seconds)
        else:
            self.timed = [self.timed[0] + amount, self.timed[1] + seconds]
        work, spent = self.timed if self.timed[0] else self.first
        left = self.total - self.done
        return f"; about {duration(spent / work * left)} left" if left > 0 else ""


def _all_diverged(results) -> history.Diverged:
    """The error for a sweep whose every network diverged, naming the first's setting."""
    s, r = results[0]
    first = f"seed {s.seed}, η = {s.eta:g}, λ = {s.lmbda:g}"
    who = (
        f"the network of {first} has"
        if len(results) == 1
        else (f"all {len(results)} networks (the first: {first}) have")
    )
    epochs = sorted({run.diverged for _, run in results})
    when = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}–{epochs[-1]}"
    message = f"training diverged in {when}: {who} inf or NaN parameters; try a smaller η (or λ)"
    return history.Diverged(epochs[0], list(range(len(results))), len(results), message)


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
    optimizer: str = "sgd",
    momentum: float = 0.0,
    strategy: str = "auto",
    chunk: Optional[int] = None,
    matmul_precision: str = "highest",
    mesh=None,
    kernel: str = "jax",
    block: int = 8,
    keep_params: bool = False,
    progress: Optional[Callable[[str], None]] = None,
    on_result: Optional[Callable] = None,
) -> list[tuple]:
    """Trains one network of layer sizes ``sizes`` per setting for ``epochs`` epochs of
    mini-batches of ``mini_batch_size`` (``optimizers.make(optimizer, momentum)``, each
    network with its setting's η and L2 λ) and scores each on ``eval_data`` after every
    epoch.

    ``train_data`` and ``eval_data`` are pairs ``(x (N, n_in) float, y (N,) int)``; a
    setting with training-set size n trains on the first n rows. ``strategy`` is ``"vmap"``,
    ``"loop"`` or ``"auto"`` (``fit.pick_strategy``); ``chunk`` caps how many networks one
    program trains (default: as many as fit, ``chunks.chunk_size``, and on the CPU at
    most ``chunks.CPU_MAX_CHUNK``); a ``mesh`` (``parallel.make_mesh``) splits every
    mini-batch over its devices (``fit``); ``kernel`` and ``block`` choose the epoch
    (``epoch.epoch``'s: ``"blocked"`` moves less memory per step). ``progress(message)``
    is called after every epoch of every chunk, ``on_result(setting, history)`` for each
    network as soon as it is done. A network that diverges (inf or NaN parameters) stops
    there, its History's ``diverged`` saying in which epoch, and the others go on; it is
    passed to ``on_result`` at the end.

    Returns one pair ``(Setting, History)`` per setting, in the order of ``settings``; with
    ``keep_params`` each History holds its trained parameters. Raises ``history.Diverged``
    if every network diverged.
    """
    settings = list(settings)
    if not settings:
        return []
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    sizes = network.check_sizes(sizes)
    tx = optimizers.make(optimizer, momentum)
    common = dict(
        epochs=epochs,
        mini_batch_size=mini_batch_size,
        model=network.model(cost, activation),
        tx=tx,
        init=init,
        strategy=fit.pick_strategy(strategy, len(settings)),
        keep_params=keep_params,
        progress=progress,
        on_result=on_result,
        matmul_precision=matmul_precision,
        mesh=mesh,
        kernel=kernel,
        block=block,
    )
    if eval_data is None:
        raise ValueError("a sweep scores every network on eval_data: give it (x, y)")
    x, y = (jax.device_put(a) for a in train_data)
    evaluation = tuple(jax.device_put(a) for a in eval_data)
    for i, s in enumerate(settings):
        check_setting(i, s)
        if not mini_batch_size <= s.train_size <= x.shape[0]:
            raise ValueError(
                f"training-set size {s.train_size} is not between the mini-batch size "
                f"{mini_batch_size} and the {x.shape[0]} training examples"
            )
    groups = [
        [s for s in settings if s.train_size == n]
        for n in dict.fromkeys(s.train_size for s in settings)
    ]
    splits = [_chunks(group, sizes, mini_batch_size, chunk, kernel, block) for group in groups]
    work = _Work(sum(g[0].train_size * len(r) * len(r[0]) * epochs for g, r in zip(groups, splits)))
    by_setting, diverged = {}, []
    for group, ranges in zip(groups, splits):
        for s, r in _train_group(
            group, sizes, (x, y), evaluation, ranges=ranges, work=work, **common
        ):
            by_setting.setdefault(s, []).append(r)
            if r.diverged is not None:
                diverged.append((s, r))
    if len(diverged) == len(settings):
        raise _all_diverged(diverged)
    for s, r in diverged if on_result else ():
        on_result(s, r)
    # Repeated settings (the same network twice) each get one of the identical results.
    return [(s, by_setting[s].pop()) for s in settings]
