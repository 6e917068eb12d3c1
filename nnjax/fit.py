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

import dataclasses
import functools
import time
from typing import Callable, Optional, Sequence

import jax
import numpy as np

from nnjax import epoch as epoch_lib
from nnjax import history, inputs, optimizers, parallel, stacked
from nnjax.history import EpochResult, History

STRATEGIES = ("loop", "vmap")
FIELDS = {field.name for field in dataclasses.fields(EpochResult)}  # what metrics may return


def pick_strategy(strategy: str, networks: int, backend: Optional[str] = None) -> str:
    """``"loop"`` or ``"vmap"`` for ``strategy`` (either, or ``"auto"``): ``auto`` loops on
    the CPU, where XLA runs a batched product of small matrices as so many small products
    (``benchmarks.sweep_speed`` compares them), and vmaps elsewhere."""
    if strategy not in (*STRATEGIES, "auto"):
        raise ValueError(f"strategy must be one of auto, {', '.join(STRATEGIES)}, got {strategy!r}")
    if strategy != "auto":
        return strategy
    return "loop" if networks == 1 or (backend or jax.default_backend()) == "cpu" else "vmap"


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
    on_divergence: str = "raise",
    on_epoch: Optional[Callable] = None,
    after_epoch: Optional[Callable] = None,
):
    """Trains ``runs`` (a ``History``, or a list of K of them) for up to ``epochs`` epochs
    each, by ``model``'s loss and the optax transformation ``tx``; returns them, updated.

    ``train_data``, ``eval_data`` and ``test_data`` are pairs ``(x (N, ...), y (N,))``: the
    integer labels for the book's networks (their loss makes the one-hot outputs), whatever
    ``model.loss`` takes otherwise.
    Epoch k of network i draws its shuffle and dropout with ``fold_in(keys[i], k)`` (``key``
    for a single run), so a given key gives the same run every time. ``shuffle``,
    ``drop_last``, ``mesh``, ``unroll``, ``kernel`` and ``block`` are ``epoch.epoch``'s.
    ``strategy`` (``pick_strategy``) ``"vmap"`` trains the K networks in one program,
    ``"loop"`` one after another, with the same results up to float rounding.
    ``matmul_precision="highest"``: float32 products (``"default"``: XLA's, TF32 on GPUs).

    After every epoch each network scores ``eval_data`` and, where that is at least its best
    so far, ``test_data`` (network3's protocol); ``monitor`` adds ``model.cost`` on both
    sets and the training accuracy; ``metrics(params)`` returns a dict of more of
    ``EpochResult``'s fields (e.g. ``gradient_norms``; a new field is added there).
    ``early_stopping=n`` stops a network after n epochs without a better evaluation
    accuracy; ``halve_eta_after=n`` halves its η (``tx`` needs a ``learning_rate``
    hyperparameter, ``optimizers.make``) after each such n epochs and stops it at
    η/``history.ETA_FLOOR``. ``keep_best`` keeps each network's parameters after its best
    epoch in ``History.best_params``. ``eval_batch`` networks are scored at a time (vmap;
    default all). ``on_epoch(i, EpochResult)`` is called for every network's epoch, then
    ``after_epoch(runs)`` once (to checkpoint), with every network's parameters current.

    Raises ``history.Diverged`` (naming the epoch and network) when an epoch leaves a
    network's parameters inf or NaN, before that epoch is reported or checkpointed; with
    ``on_divergence="stop"`` such a network stops instead (``History.diverged`` = the
    epoch, its parameters those before it) and the others go on.
    """
    single = isinstance(runs, History)
    runs = [runs] if single else list(runs)
    if key is not None and keys is not None:
        raise ValueError("give key (one network) or keys (one per network), not both")
    keys = [key] if keys is None else list(keys)
    if len(keys) != len(runs):
        raise ValueError(f"{len(runs)} networks need as many keys, got {len(keys)}")
    if any(k is None for k in keys):
        raise ValueError("fit needs a PRNG key: key=jax.random.key(seed) (keys=[...] for K)")
    for k in keys:
        inputs.check_key(k)
    inputs.check_model(model, tx)
    inputs.check_runs(runs, tx)
    n = inputs.check_data(train_data, "train_data", model, runs[0].params)
    for data, name in ((eval_data, "eval_data"), (test_data, "test_data")):
        if data is not None:
            inputs.check_data(data, name, model, runs[0].params, scored=True)
    for name, value, least in (
        ("epochs", epochs, 0),
        ("mini_batch_size", mini_batch_size, 1),
        ("early_stopping", early_stopping, 0),
        ("halve_eta_after", halve_eta_after, 0),
    ):
        if not (inputs.is_whole(value) and value >= least):
            what = "a positive integer" if least else "a whole number from 0"
            raise ValueError(f"{name} must be {what}, got {value!r}")
    if not isinstance(shuffle, (bool, np.bool_)):
        raise ValueError(f"shuffle must be True or False, got {shuffle!r}")
    if mesh is not None:
        parallel.check_mini_batch(mini_batch_size, mesh.size)
    if drop_last and mini_batch_size > n:
        raise ValueError(
            f"mini_batch_size={mini_batch_size} with drop_last leaves no mini-batch of the "
            f"{n} training examples"
        )
    if monitor and model.cost is None:
        raise ValueError(f"monitor reports model.cost, which {model.name or 'this model'} lacks")
    if (early_stopping or halve_eta_after or keep_best) and eval_data is None:
        raise ValueError("early stopping, the η schedule and keep_best need evaluation data")
    if halve_eta_after and optimizers.hyperparam(runs[0].opt_state, "learning_rate") is None:
        raise ValueError("the η schedule needs an optimizer with a learning_rate hyperparameter")
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence must be raise or stop, got {on_divergence!r}")
    if on_divergence == "stop" and after_epoch is not None:
        # a checkpoint would not keep the stop: a resumed run would train the network again
        raise ValueError('on_divergence="stop" cannot be checkpointed (after_epoch)')
    k = len(runs)
    vmap = pick_strategy(strategy, k) == "vmap" and k > 1
    if kernel in ("cpp", "pallas") and (mesh is not None or vmap):
        what = "C++ CPU" if kernel == "cpp" else "Pallas GPU"
        raise ValueError(f"the {what} epoch trains one network on one device at a time")
    if mesh is None:
        put, local = jax.device_put, (lambda tree: tree)
    else:
        put, local = functools.partial(parallel.replicate, mesh=mesh), parallel.local_copy
    with jax.default_matmul_precision(matmul_precision):
        x, y = put(tuple(train_data))
        evaluation = tuple(jax.device_put(a) for a in eval_data) if eval_data else None
        test = tuple(jax.device_put(a) for a in test_data) if test_data else None
        nets = stacked.Networks(runs, vmap, put, local, keep_best, on_divergence == "stop")
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
        monitored = local((x, y)) if monitor else None
        for e in range(min(len(r.epochs) for r in runs), epochs):
            active = [i for i, r in enumerate(runs) if not r.stopped and len(r.epochs) == e]
            if not active:
                break
            start = time.perf_counter()
            etas = [plan[0] for plan in plans] if halve_eta_after else None
            nets.train(compiled, x, y, [jax.random.fold_in(kk, e) for kk in keys], active, etas)
            seconds = (time.perf_counter() - start) / len(active)
            diverged = nets.diverged(active)
            if diverged and on_divergence == "raise":  # before it is reported or checkpointed
                raise history.Diverged(e, diverged, k)
            if diverged:
                nets.revert(diverged)
                for i in diverged:
                    runs[i].diverged = e
                    runs[i].stopped = f"training diverged in epoch {e} (inf or NaN parameters)"
                active = [i for i in active if i not in diverged]
            correct = (
                nets.correct(model, *evaluation, active, eval_batch or k)
                if evaluation
                else np.zeros(k, int)
            )
            improved = np.zeros(k, bool)
            for i in active:
                run = runs[i]
                improved[i] = run.beats(int(correct[i]))
                extra = _measures(
                    model,
                    nets.params(i),
                    int(correct[i]),
                    run.best,
                    metrics,
                    test,
                    monitored,
                    evaluation,
                )
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


def _measures(model, params, correct, best, metrics, test, train_data, evaluation) -> dict:
    """The ``EpochResult`` fields of one network's epoch beyond its ``correct``: the
    ``metrics`` callback's; the test accuracy when ``correct`` equals or beats ``best``
    (the test set is scored only then); and, when ``train_data`` is given (``monitor``),
    the book's monitoring: ``model.cost`` on both sets and the training accuracy."""
    extra = {} if metrics is None else dict(metrics(params))
    unknown = sorted(set(extra) - FIELDS)
    if unknown:
        raise ValueError(f"metrics returned {unknown[0]!r}, which is no EpochResult field")
    if test and (best is None or correct >= best.correct):
        extra["test_correct"] = int(epoch_lib.correct(params, *test, model=model))
        extra["test_total"] = int(test[1].shape[0])
    if train_data is not None:
        x, y = train_data
        cost = None if evaluation is None else float(model.cost(params, *evaluation))
        extra.update(
            evaluation_cost=cost,
            training_cost=float(model.cost(params, x, y)),
            training_correct=int(epoch_lib.correct(params, x, y, model=model)),
            training_total=int(y.shape[0]),
        )
    return extra
