"""The host loop: run compiled epochs, score the networks after each, decide, report.

    tx = optimizers.make("sgd")
    run = History(params, optimizers.init(tx, params, eta=3.0))
    fit(network.model(), tx, run, (x, y), epochs=30, mini_batch_size=10, key=key,
        eval_data=(x_test, y_test))
    run.best.accuracy, run.params

``fit`` trains one network or K networks side by side (an ensemble, a sweep), each a
``History``: its parameters and optimizer state now, its epochs so far (``EpochResult``),
the best of them and why it stopped. Training a ``History`` that already has epochs goes on
from there exactly as if it had never stopped (checkpoints and resumes are that). The loop
does nothing per mini-batch: each epoch is one call of ``nnjax.epoch.epoch``.
"""

import functools
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import epoch as epoch_lib
from nnjax import history, optimizers, parallel
from nnjax.history import EpochResult, History

STRATEGIES = ("loop", "vmap")


def pick_strategy(strategy: str, networks: int, backend: Optional[str] = None) -> str:
    """``"loop"`` or ``"vmap"`` for ``strategy`` (either, or ``"auto"``): ``auto`` loops on
    the CPU, where XLA runs a batched product of small matrices as so many small products
    (``benchmarks.sweep_speed`` compares them), and vmaps elsewhere."""
    if strategy not in (*STRATEGIES, "auto"):
        raise ValueError(f"strategy must be one of auto, {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy != "auto":
        return strategy
    return "loop" if networks == 1 or (backend or jax.default_backend()) == "cpu" else "vmap"


def _stack(trees):  # K pytrees as one with a leading axis K
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def unstack(tree, k: int) -> list:
    """The K pytrees of a stacked ``tree`` (leading axis K), as a list."""
    return [jax.tree.map(lambda a, i=i: a[i], tree) for i in range(k)]


@functools.partial(jax.jit, static_argnames="model")
def _correct(params, x, y, *, model):
    return jnp.sum(model.predict(params, x) == y, dtype=jnp.int32)


@functools.partial(jax.jit, static_argnames=("model", "batch"))
def _correct_all(stacked, x, y, *, model, batch):
    return jax.lax.map(lambda p: _correct(p, x, y, model=model), stacked, batch_size=batch)


@jax.jit
def _select(mask, new, old):
    """Rows of the stacked ``new`` where ``mask`` (K,) holds, of ``old`` elsewhere."""
    return jax.tree.map(
        lambda a, b: jnp.where(mask.reshape(-1, *[1] * (a.ndim - 1)), a, b), new, old
    )


class _Networks:
    """The K networks' parameters and optimizer states on the device: stacked on a leading
    axis (``vmap``) or one pair per network; ``local`` gives a copy for scoring."""

    def __init__(self, runs, vmap: bool, put, local, keep_best: bool):
        self.k, self.vmap, self.local = len(runs), vmap, local
        best = [r.params if r.best_params is None else r.best_params for r in runs]
        best = best if keep_best else None
        if vmap:
            self.state = put(
                (_stack([r.params for r in runs]), _stack([r.opt_state for r in runs]))
            )
            self.best = _stack(best) if keep_best else None
        else:
            self.state = [put((r.params, r.opt_state)) for r in runs]
            self.best = best
        self.trained = None

    def example(self, x, y, key) -> tuple:
        """Arguments to compile the epoch for."""
        if self.vmap:
            return (*self.state, x, y, jnp.stack([key] * self.k))
        return (*self.state[0], x, y, key)

    def train(self, compiled, x, y, keys, active, etas):
        """One epoch of the ``active`` networks; ``etas`` (one per network) set η first."""
        if self.vmap:
            params, opt_state = self.state
            if etas is not None:
                opt_state = optimizers.set_hyperparams(opt_state, learning_rate=jnp.asarray(etas))
            new = compiled(params, opt_state, x, y, jnp.stack(keys))
            if len(active) < self.k:  # stopped networks keep what they had
                mask = jnp.asarray(np.isin(np.arange(self.k), active))
                new = _select(mask, new, (params, opt_state))
            self.state = jax.block_until_ready(new)
            self.trained = self.local(self.state[0])
            return
        for i in active:
            params, opt_state = self.state[i]
            if etas is not None:
                opt_state = optimizers.set_hyperparams(opt_state, learning_rate=etas[i])
            self.state[i] = jax.block_until_ready(compiled(params, opt_state, x, y, keys[i]))

    def params(self, i: int):
        """Network i's parameters now (this process's copy)."""
        if self.vmap:
            return jax.tree.map(lambda a: a[i], self.trained)
        return self.local(self.state[i][0])

    def diverged(self, active) -> list:
        """The active networks whose parameters are not all finite."""
        if self.vmap:
            finite = history.finite_networks(self.trained)
            return [i for i in active if not finite[i]]
        one = [jax.tree.map(lambda a: a[None], self.params(i)) for i in active]
        return [i for i, p in zip(active, one) if not history.finite_networks(p)[0]]

    def correct(self, model, x, y, active, batch) -> np.ndarray:
        """How many examples of ``x`` each network classifies as ``y``: int (K,)."""
        if self.vmap:
            return np.asarray(_correct_all(self.trained, x, y, model=model, batch=batch))
        counts = np.zeros(self.k, int)
        for i in active:
            counts[i] = int(_correct(self.params(i), x, y, model=model))
        return counts

    def keep_best(self, improved) -> None:
        """Remembers the parameters of the networks whose epoch was their best so far."""
        if self.vmap:
            self.best = _select(jnp.asarray(improved), self.trained, self.best)
        else:
            for i in np.flatnonzero(improved):
                self.best[i] = self.params(int(i))

    def sync(self, runs, keep_best: bool) -> None:
        """Every ``History``'s params, opt_state (and best_params) as trained so far."""
        if self.vmap:
            states = unstack(self.local(self.state), self.k)
            best = unstack(self.best, self.k) if keep_best else [None] * self.k
        else:
            states = [self.local(s) for s in self.state]
            best = self.best if keep_best else [None] * self.k
        for r, (params, opt_state), b in zip(runs, states, best):
            r.params, r.opt_state = params, opt_state
            if keep_best:
                r.best_params = b


def fit(
    model: epoch_lib.Model,
    tx,
    runs,
    train_data,
    *,
    epochs: int,
    mini_batch_size: int,
    key=None,
    keys: Optional[Sequence] = None,
    eval_data=None,
    test_data=None,
    shuffle: bool = True,
    drop_last: bool = False,
    strategy: str = "loop",
    mesh=None,
    unroll: int = 1,
    kernel: str = "jax",
    block: int = 8,
    matmul_precision: str = "highest",
    monitor: bool = False,
    metrics: Optional[Callable] = None,
    early_stopping: int = 0,
    halve_eta_after: int = 0,
    keep_best: bool = False,
    eval_batch: Optional[int] = None,
    on_epoch: Optional[Callable] = None,
    after_epoch: Optional[Callable] = None,
):
    """Trains ``runs`` (a ``History``, or a list of K of them) for up to ``epochs`` epochs
    each, by ``model``'s loss and the optax transformation ``tx``; returns them, updated.

    ``train_data``, ``eval_data`` and ``test_data`` are pairs ``(x (N, ...), y (N,) int)``.
    Epoch k of network i draws its shuffle and dropout with ``fold_in(keys[i], k)`` (``key``
    for a single run), so a given key gives the same run every time. ``shuffle``,
    ``drop_last``, ``mesh``, ``unroll``, ``kernel`` and ``block`` are ``epoch.epoch``'s.
    ``strategy`` (``pick_strategy``) ``"vmap"`` trains the K networks in one program,
    ``"loop"`` one after another, with the same results up to float rounding.
    ``matmul_precision="highest"``: float32 products (``"default"``: XLA's, TF32 on GPUs).

    After every epoch each network scores ``eval_data`` and, where that is at least its best
    so far, ``test_data`` (network3's protocol); ``monitor`` adds ``model.cost`` on both
    sets and the training accuracy; ``metrics(params)`` returns more ``EpochResult`` fields
    (e.g. ``gradient_norms``). ``early_stopping=n`` stops a network after n epochs without a
    better evaluation accuracy; ``halve_eta_after=n`` halves its η (``tx`` needs a
    ``learning_rate`` hyperparameter, ``optimizers.make``) after each such n epochs and
    stops it at η/128. ``keep_best`` keeps each network's parameters after its best epoch
    in ``History.best_params``. ``eval_batch`` networks are scored at a time (vmap; default
    all). ``on_epoch(i, EpochResult)`` is called for every network's epoch, then
    ``after_epoch(runs)`` once (to checkpoint), with every network's parameters current.

    Raises ``history.Diverged`` (naming the epoch and network) when an epoch leaves a
    network's parameters inf or NaN, before that epoch is reported or checkpointed.
    """
    single = isinstance(runs, History)
    runs = [runs] if single else list(runs)
    keys = [key] if keys is None else list(keys)
    if len(keys) != len(runs):
        raise ValueError(f"{len(runs)} networks need as many keys, got {len(keys)}")
    if (early_stopping or halve_eta_after) and eval_data is None:
        raise ValueError("early stopping and the η schedule need evaluation data")
    if halve_eta_after and optimizers.hyperparam(runs[0].opt_state, "learning_rate") is None:
        raise ValueError("the η schedule needs an optimizer with a learning_rate hyperparameter")
    k = len(runs)
    vmap = pick_strategy(strategy, k) == "vmap" and k > 1
    if kernel == "cpp" and (mesh is not None or vmap):
        raise ValueError("the C++ CPU epoch trains one network on one device at a time")
    if mesh is None:
        put, local = jax.device_put, (lambda tree: tree)
    else:
        put, local = functools.partial(parallel.replicate, mesh=mesh), parallel.local_copy
    with jax.default_matmul_precision(matmul_precision):
        x, y = put(tuple(train_data))
        evaluation = tuple(jax.device_put(a) for a in eval_data) if eval_data else None
        test = tuple(jax.device_put(a) for a in test_data) if test_data else None
        nets = _Networks(runs, vmap, put, local, keep_best)
        start = time.perf_counter()
        compiled = epoch_lib.epoch.lower(
            *nets.example(x, y, keys[0]),
            model=model,
            tx=tx,
            mini_batch_size=mini_batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            mesh=mesh,
            unroll=unroll,
            kernel=kernel,
            block=block,
            stacked=nets.vmap,
        ).compile()
        for r in runs:
            r.compile_seconds = time.perf_counter() - start
        etas0 = [history.initial_eta(r) for r in runs]
        plans = [history.decide(r, early_stopping, halve_eta_after, e) for r, e in zip(runs, etas0)]
        for r, (_, why) in zip(runs, plans):
            r.stopped = r.stopped or why
        for e in range(min(len(r.epochs) for r in runs), epochs):
            active = [i for i, r in enumerate(runs) if not r.stopped and len(r.epochs) == e]
            if not active:
                break
            start = time.perf_counter()
            etas = [plan[0] for plan in plans] if halve_eta_after else None
            nets.train(compiled, x, y, [jax.random.fold_in(kk, e) for kk in keys], active, etas)
            seconds = (time.perf_counter() - start) / len(active)
            diverged = nets.diverged(active)
            if diverged:  # before the epoch is reported or checkpointed
                raise history.Diverged(e, diverged, k)
            correct = (
                nets.correct(model, *evaluation, active, eval_batch or k)
                if evaluation
                else np.zeros(k, int)
            )
            improved = np.zeros(k, bool)
            for i in active:
                run = runs[i]
                improved[i] = run.beats(int(correct[i]))
                extra = {} if metrics is None else dict(metrics(nets.params(i)))
                if test and (run.best is None or correct[i] >= run.best.correct):
                    extra["test_correct"] = int(_correct(nets.params(i), *test, model=model))
                    extra["test_total"] = int(test[1].shape[0])
                if monitor:
                    extra.update(_monitor(model, nets.params(i), local((x, y)), evaluation))
                eta = None if plans[i][0] is None else float(plans[i][0])
                total = 0 if evaluation is None else int(evaluation[1].shape[0])
                result = EpochResult(e, int(correct[i]), total, seconds, eta, **extra)
                run.epochs.append(result)
                plans[i] = history.decide(run, early_stopping, halve_eta_after, etas0[i])
                run.stopped = plans[i][1]
                if on_epoch is not None:
                    on_epoch(i, result)
            if keep_best:
                nets.keep_best(improved)
            if after_epoch is not None:
                nets.sync(runs, keep_best)
                after_epoch(runs)
        nets.sync(runs, keep_best)
    return runs[0] if single else runs


def _monitor(model, params, train_data, evaluation) -> dict:
    """The book's monitoring: ``model.cost`` on both sets and the training accuracy."""
    x, y = train_data
    return dict(
        evaluation_cost=None if evaluation is None else float(model.cost(params, *evaluation)),
        training_cost=float(model.cost(params, x, y)),
        training_correct=int(_correct(params, x, y, model=model)),
        training_total=int(y.shape[0]),
    )
