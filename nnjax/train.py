"""The host loop: run compiled epochs, score the network after each, report.

The loop does nothing per mini-batch; it calls one compiled epoch, waits for it (to time it
honestly), scores the evaluation data and hands an ``EpochResult`` to ``on_epoch``.
"""

import dataclasses
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp

from nnjax import activations, costs, network, sgd


@dataclasses.dataclass(frozen=True)
class EpochResult:
    epoch: int          # 0-based, as the book prints it
    correct: int        # evaluation examples classified correctly
    total: int          # evaluation examples
    seconds: float      # training time of this epoch (the evaluation excluded)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "accuracy": self.accuracy}


@dataclasses.dataclass(frozen=True)
class History:
    epochs: list            # [EpochResult, ...]
    compile_seconds: float  # compiling the epoch program, before the first epoch

    @property
    def best(self) -> Optional[EpochResult]:
        """The first epoch with the highest number correct (None before any epoch)."""
        return max(self.epochs, key=lambda r: r.correct, default=None)

    @property
    def train_seconds(self) -> float:
        return sum(r.seconds for r in self.epochs)


def train(params, train_data, *, epochs: int, mini_batch_size: int, eta: float, key,
          eval_data=None, cost: costs.Cost = costs.quadratic,
          activation: activations.Activation = activations.sigmoid, lmbda: float = 0.0,
          regularization: str = "l2", kernel: str = "auto",
          matmul_precision: str = "highest",
          on_epoch: Optional[Callable[[EpochResult], None]] = None):
    """Trains ``params`` by SGD for ``epochs`` epochs.

    ``train_data`` and ``eval_data`` are pairs ``(x (n, n_in) float, y (n,) int)``. Epoch k
    shuffles with ``jax.random.fold_in(key, k)``, so a given key gives the same run every
    time. ``cost``, ``activation``, ``lmbda``, ``regularization`` and ``kernel`` are passed to
    ``sgd.sgd_epoch``. ``matmul_precision="highest"`` keeps
    float32 matrix products in float32 (XLA's "default" lets GPUs and TPUs use TF32 or
    bfloat16 passes: faster, less like the book). Returns ``(params, History)``; without
    ``eval_data`` every epoch scores 0 of 0.
    """
    with jax.default_matmul_precision(matmul_precision):
        return _train(params, train_data, epochs, mini_batch_size, eta, key, eval_data, cost,
                      activation, lmbda, regularization, kernel, on_epoch)


def _train(params, train_data, epochs, mini_batch_size, eta, key, eval_data, cost, activation,
           lmbda, regularization, kernel, on_epoch):
    x, y = (jax.device_put(a) for a in train_data)
    if eval_data is not None:
        x_eval, y_eval = (jax.device_put(a) for a in eval_data)
    eta = jnp.asarray(eta, x.dtype)
    start = time.perf_counter()
    lmbda = jnp.asarray(lmbda, x.dtype)
    epoch_fn = sgd.sgd_epoch.lower(params, x, y, key, eta, mini_batch_size, cost, activation,
                                   kernel, lmbda, regularization).compile()
    compile_seconds = time.perf_counter() - start
    results = []
    for k in range(epochs):
        start = time.perf_counter()
        params = jax.block_until_ready(
            epoch_fn(params, x, y, jax.random.fold_in(key, k), eta, lmbda))
        seconds = time.perf_counter() - start
        if eval_data is None:
            correct, total = 0, 0
        else:
            correct = int(network.evaluate(params, x_eval, y_eval, activation))
            total = int(y_eval.shape[0])
        results.append(EpochResult(k, correct, total, seconds))
        if on_epoch is not None:
            on_epoch(results[-1])
    return params, History(results, compile_seconds)
