"""The host loop: run compiled epochs, score the network after each, report.

The loop does nothing per mini-batch; it calls one compiled epoch, waits for it (to time it
honestly), scores the evaluation data (and, when monitoring, the training data and both
costs, as the book's ``network2.SGD`` does), decides on η and stopping, and hands an
``EpochResult`` to ``on_epoch``.
"""

import dataclasses
import functools
import time
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp

from nnjax import activations, backprop, costs, network, parallel, sgd, stopping


@dataclasses.dataclass(frozen=True)
class EpochResult:
    """What one epoch of training reports: its evaluation score, its time and η, and the
    optional lists of monitoring, chapter 5 and chapter 6 (None where not asked for)."""

    epoch: int  # 0-based, as the book prints it
    correct: int  # evaluation examples classified correctly
    total: int  # evaluation examples
    seconds: float  # training time of this epoch (the evaluation excluded)
    eta: float  # the learning rate this epoch used
    # With monitoring (None otherwise): the book's four lists, one entry per epoch.
    evaluation_cost: Optional[float] = None
    training_cost: Optional[float] = None
    training_correct: Optional[int] = None
    training_total: Optional[int] = None
    # With gradient_norms: ‖∂C/∂b^l‖ of each hidden layer (chapter 5), input side first.
    gradient_norms: Optional[list] = None
    # Chapter 6's protocol: the test score, in the epochs where validation did not get worse.
    test_correct: Optional[int] = None
    test_total: Optional[int] = None

    @property
    def accuracy(self) -> float:
        """``correct / total``, a fraction in [0, 1] (NaN with no evaluation examples)."""
        return self.correct / self.total if self.total else float("nan")

    def as_dict(self) -> dict:
        """The fields that are set, plus ``accuracy`` (and ``training_accuracy`` with
        monitoring): one line of a ``--metrics_out`` file."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        if self.training_total:
            fields["training_accuracy"] = self.training_correct / self.training_total
        return {**fields, "accuracy": self.accuracy}

    @classmethod
    def from_dict(cls, fields: dict) -> "EpochResult":
        """The inverse of ``as_dict``."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in fields.items() if k in names})


@dataclasses.dataclass(frozen=True)
class History:
    """A training run: its epochs in order, the compile time and, if it stopped early, why."""

    epochs: list  # [EpochResult, ...]
    compile_seconds: float  # compiling the epoch program, before the first epoch
    stopped: str = ""  # why training ended before the last epoch, if it did

    @property
    def best(self) -> Optional[EpochResult]:
        """The first epoch with the highest number correct (None before any epoch)."""
        return max(self.epochs, key=lambda r: r.correct, default=None)

    @property
    def train_seconds(self) -> float:
        """The epochs' training time in seconds, compilation and evaluation excluded."""
        return sum(r.seconds for r in self.epochs)


@functools.partial(jax.jit, static_argnames=("cost", "activation", "regularization"))
def total_cost(
    params,
    x,
    y,
    cost: costs.Cost,
    activation: activations.Activation,
    lmbda=0.0,
    regularization: str = "l2",
):
    """The cost on ``x`` (N, n_in), labels ``y`` (N,), as the book's ``total_cost`` reports
    it: a scalar, the mean cost plus ½ (λ/N) Σ‖w‖² (``regularization="l2"``) or (λ/N) Σ|w|
    (``"l1"``, chapter 3's L1 cost), N being the size of *this* set (the book's quirk;
    training itself uses the training-set size)."""
    z = network.logits(params, x, activation)
    y1 = costs.one_hot(y, z.shape[-1], z.dtype)
    if regularization == "l1":
        penalty = sum(jnp.sum(jnp.abs(w)) for w in params["weights"])
    else:
        penalty = 0.5 * sum(jnp.sum(w**2) for w in params["weights"])
    return cost.fn(z, cost.output.fn(z), y1) + (lmbda / x.shape[0]) * penalty


def train(
    params,
    train_data,
    *,
    epochs: int,
    mini_batch_size: int,
    eta: float,
    key,
    eval_data=None,
    cost: costs.Cost = costs.quadratic,
    activation: activations.Activation = activations.sigmoid,
    lmbda: float = 0.0,
    regularization: str = "l2",
    momentum: float = 0.0,
    kernel: str = "auto",
    matmul_precision: str = "highest",
    monitor: bool = False,
    gradient_norms: int = 0,
    early_stopping: int = 0,
    halve_eta_after: int = 0,
    on_epoch: Optional[Callable[[EpochResult], None]] = None,
    after_epoch: Optional[Callable] = None,
    done: Sequence[EpochResult] = (),
    opt_state=None,
    mesh: Optional[jax.sharding.Mesh] = None,
):
    """Trains ``params`` by SGD for up to ``epochs`` epochs.

    ``train_data`` and ``eval_data`` are pairs ``(x (n, n_in) float, y (n,) int)``. Epoch k
    shuffles with ``jax.random.fold_in(key, k)``, so a given key gives the same run every
    time. ``cost``, ``activation``, ``lmbda``, ``regularization``, ``momentum`` and ``kernel``
    are passed to ``sgd.sgd_epoch``. ``matmul_precision="highest"`` keeps float32 matrix
    products in float32 (XLA's "default" lets GPUs and TPUs use TF32 or bfloat16 passes:
    faster, less like the book). ``monitor`` adds the costs and the training accuracy to
    every ``EpochResult``; ``gradient_norms=N`` adds chapter 5's ‖∂C/∂b^l‖ per hidden layer
    over the first N training examples. ``early_stopping=n`` stops after n epochs without a
    better evaluation accuracy; ``halve_eta_after=n`` halves η after each such n epochs and
    stops at η/128 (``nnjax.stopping``); both need ``eval_data``.

    To resume a run, pass the parameters (and, with momentum, the ``opt_state``) it had after
    its finished epochs and those epochs' results as ``done``: training goes on from epoch
    ``len(done)`` exactly as if it had never stopped. ``after_epoch(params, opt_state,
    results so far)`` is called after every epoch (to checkpoint).

    With a ``mesh`` (``parallel.make_mesh``), every epoch is ``parallel.data_parallel_epoch``:
    each mini-batch split over the mesh's devices (``mini_batch_size`` divisible by their
    number), the same mini-batches and, up to the order of float additions, the same
    parameters as without (``kernel`` is then ignored: the CPU kernel is single-device).
    Scoring and the callbacks use this process's copy of the parameters on its first device
    of the mesh. On several processes every one must call ``train`` with the same arguments.

    Returns ``(params, opt_state, History)``; ``opt_state`` is None without momentum;
    without ``eval_data`` every epoch scores 0 of 0.
    """
    if (early_stopping or halve_eta_after) and eval_data is None:
        raise ValueError("early stopping and the η schedule need evaluation data")
    with jax.default_matmul_precision(matmul_precision):
        if mesh is None:
            x, y = (jax.device_put(a) for a in train_data)
            on_mesh, off_mesh, epoch_data = (lambda t: t), (lambda t: t), (x, y)
        else:
            on_mesh = functools.partial(parallel.replicate, mesh=mesh)
            off_mesh = parallel.local_copy
            epoch_data = on_mesh(tuple(train_data))
            x, y = off_mesh(epoch_data)
        x_eval, y_eval = (jax.device_put(a) for a in eval_data) if eval_data else (None, None)
        lmbda = jnp.asarray(lmbda, x.dtype)
        if momentum and opt_state is None:
            opt_state = sgd.init_state(params, momentum)
        start = time.perf_counter()
        # Both compiled epochs take (params, x, y, key, eta, lmbda, opt_state).
        if mesh is None:
            epoch_fn = sgd.sgd_epoch.lower(
                params,
                x,
                y,
                key,
                jnp.asarray(eta, x.dtype),
                mini_batch_size,
                cost,
                activation,
                kernel,
                lmbda,
                regularization,
                momentum,
                opt_state,
            ).compile()
        else:
            epoch_fn = parallel.data_parallel_epoch.lower(
                on_mesh(params),
                *epoch_data,
                key,
                jnp.asarray(eta, x.dtype),
                mini_batch_size,
                mesh,
                cost,
                activation,
                lmbda,
                regularization,
                momentum,
                on_mesh(opt_state),
            ).compile()
        compile_seconds = time.perf_counter() - start
        trained = on_mesh((params, opt_state))  # what the epochs update

        def score(params, x, y):
            return 0 if x is None else int(network.evaluate(params, x, y, activation))

        speeds = jax.jit(
            lambda p, x, y: backprop.hidden_layer_speeds(
                p, x, costs.one_hot(y, p["biases"][-1].shape[0], x.dtype), cost, activation
            )
        )

        def cost_on(params, x, y):
            return (
                None
                if x is None
                else float(total_cost(params, x, y, cost, activation, lmbda, regularization))
            )

        results = list(done)

        def decide():
            accuracies = [r.correct for r in results]
            eta_next, eta_floor = stopping.halving_schedule(accuracies, eta, halve_eta_after)
            if eta_floor:
                return eta_next, f"η fell to 1/128 of {eta:g} after epoch {len(results) - 1}"
            if stopping.early_stop(accuracies, early_stopping):
                return eta_next, (
                    f"no improvement in {early_stopping} epochs after epoch {len(results) - 1}"
                )
            return eta_next, ""

        eta_now, stopped = decide()
        for k in range(len(results), epochs if not stopped else 0):
            start = time.perf_counter()
            out = jax.block_until_ready(
                epoch_fn(
                    trained[0],
                    *epoch_data,
                    jax.random.fold_in(key, k),
                    jnp.asarray(eta_now, x.dtype),
                    lmbda,
                    trained[1],
                )
            )
            seconds = time.perf_counter() - start
            trained = (out, None) if opt_state is None else out
            params, opt_state = off_mesh(trained)
            stopping.check_finite(params, k)  # before the epoch is reported or checkpointed
            total = 0 if y_eval is None else int(y_eval.shape[0])
            extra = {}
            if monitor:
                extra = dict(
                    evaluation_cost=cost_on(params, x_eval, y_eval),
                    training_cost=cost_on(params, x, y),
                    training_correct=score(params, x, y),
                    training_total=len(y),
                )
            if gradient_norms:
                extra["gradient_norms"] = [
                    float(v) for v in speeds(params, x[:gradient_norms], y[:gradient_norms])
                ]
            results.append(
                EpochResult(
                    k, score(params, x_eval, y_eval), total, seconds, float(eta_now), **extra
                )
            )
            if on_epoch is not None:
                on_epoch(results[-1])
            if after_epoch is not None:
                after_epoch(params, opt_state, results)
            eta_now, stopped = decide()
            if stopped:
                break
    return params, opt_state, History(results, compile_seconds, stopped)
