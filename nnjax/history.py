"""The one result type of training, a ``History`` per network and an ``EpochResult`` per
epoch, and the decisions made from it: chapter 3's "no improvement in n epochs" rules (pure
functions of the accuracies so far, so a resumed run decides as an uninterrupted one did)
and the stop that is an error, a network that diverged."""

import dataclasses
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import optimizers

BEST_RULES = ("first", "last")


@dataclasses.dataclass(frozen=True)
class EpochResult:
    """What one epoch of one network reports: its evaluation score, its time and η, and the
    optional monitoring, chapter 5 and chapter 6 numbers (None where not asked for)."""

    epoch: int  # 0-based, as the book prints it
    correct: int  # evaluation examples classified correctly
    total: int  # evaluation examples
    seconds: float  # this network's share of the epoch's training time (evaluation excluded)
    eta: Optional[float]  # the learning rate this epoch used (None: the optimizer has none)
    # With monitoring (None otherwise): the book's four lists, one entry per epoch.
    evaluation_cost: Optional[float] = None
    training_cost: Optional[float] = None
    training_correct: Optional[int] = None
    training_total: Optional[int] = None
    # From fit's ``metrics``: ‖∂C/∂b^l‖ of each hidden layer (chapter 5), input side first.
    gradient_norms: Optional[list] = None
    # Chapter 6's protocol: the test score, in the epochs where evaluation did not get worse.
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
        return cls(**{"eta": None, **{k: v for k, v in fields.items() if k in names}})


@dataclasses.dataclass
class History:
    """One network's training: its parameters and optimizer state now, its epochs in order,
    the compile time, why it stopped early (if it did; ``diverged`` is the epoch that left
    its parameters inf or NaN, with ``fit(on_divergence="stop")``) and, with
    ``fit(keep_best=True)``, the parameters after its best epoch.

    ``best_rule`` says which epoch is best: ``"first"`` the first with the most correct
    (the book's chapters 1-5), ``"last"`` the last that was at least as good as every
    epoch before it (network3's ``>=``, chapter 6)."""

    params: Any
    opt_state: Any = None
    epochs: list = dataclasses.field(default_factory=list)
    best_rule: str = "first"
    best_params: Any = None
    compile_seconds: float = 0.0
    stopped: str = ""
    diverged: Optional[int] = None

    def __post_init__(self):
        if self.best_rule not in BEST_RULES:
            raise ValueError(f"best_rule must be one of {BEST_RULES}, got {self.best_rule!r}")

    def beats(self, correct: int, best: Optional[EpochResult] = ...) -> bool:
        """Whether an epoch with ``correct`` right would be best (over ``best``, by default
        the best so far)."""
        best = self.best if best is ... else best
        if best is None:
            return True
        return correct >= best.correct if self.best_rule == "last" else correct > best.correct

    @property
    def best(self) -> Optional[EpochResult]:
        """The best epoch by ``best_rule`` (None before any epoch)."""
        best = None
        for r in self.epochs:
            if self.beats(r.correct, best):
                best = r
        return best

    @property
    def train_seconds(self) -> float:
        """The epochs' training time in seconds, compilation and evaluation excluded."""
        return sum(r.seconds for r in self.epochs)

    def accuracies(self) -> list:
        """The evaluation accuracy after each epoch, fractions in [0, 1]."""
        return [r.accuracy for r in self.epochs]


class Diverged(ArithmeticError):
    """Training made networks' parameters non-finite (η too large, or λ, sends the weights to
    inf and then NaN, at chance accuracy). ``epoch`` is the epoch, ``networks`` the indices
    of the networks (of ``count``) that diverged; the message is one line naming them."""

    def __init__(self, epoch: int, networks=(0,), count: int = 1, message: str = ""):
        self.epoch, self.networks = epoch, list(networks)
        if count == 1:
            who = "the network's parameters are"
        elif len(self.networks) == 1:
            who = f"network {self.networks[0]}'s parameters are"
        else:
            who = f"{len(self.networks)} networks' (the first: {self.networks[0]}) parameters are"
        super().__init__(
            message
            or f"training diverged in epoch {epoch}: {who} inf or NaN; try a smaller η (or λ)"
        )


def finite_networks(stacked) -> np.ndarray:
    """Whether each network of ``stacked`` (a pytree of arrays whose axis 0 counts networks)
    has only finite parameters: bool (K,), fetched from the device in one transfer."""
    rows = [jnp.isfinite(a).reshape(a.shape[0], -1).all(axis=1) for a in jax.tree.leaves(stacked)]
    return np.asarray(jax.device_get(jnp.stack(rows).all(axis=0)))


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


# The book's η schedule stops once η has fallen to 1/ETA_FLOOR of its initial value.
ETA_FLOOR = 128


def halving_schedule(accuracies: Sequence[float], eta: float, patience: int):
    """The book's schedule: halve η each time ``patience`` epochs pass without a new best
    accuracy (the count restarts after each halving), and stop once η has fallen to
    1/``ETA_FLOOR`` of its initial value.

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
    return current, current <= eta / ETA_FLOOR


def initial_eta(run: History) -> Optional[float]:
    """The η a run started with: its first epoch's, else its optimizer state's ``learning_rate``
    hyperparameter (None if it has none)."""
    eta = run.epochs[0].eta if run.epochs else None
    if eta is None and not run.epochs:
        eta = optimizers.hyperparam(run.opt_state, "learning_rate")
    # the shortest decimal of its own precision: 0.03, not float32's 0.029999999329447746
    return None if eta is None else float(str(np.asarray(eta)[()]))


def decide(run: History, early_stopping: int, halve_eta_after: int, eta0):
    """``(η for the next epoch, why to stop or "")`` from the run's accuracies so far, by
    ``early_stop`` and ``halving_schedule`` (0 turns either off)."""
    correct = [r.correct for r in run.epochs]
    eta, floor = halving_schedule(correct, eta0, halve_eta_after)
    if floor:
        return eta, f"η fell to 1/{ETA_FLOOR} of {eta0:g} after epoch {len(correct) - 1}"
    if early_stop(correct, early_stopping):
        epochs = f"{early_stopping} epoch{'s' * (early_stopping != 1)}"
        return eta, f"no improvement in {epochs} after epoch {len(correct) - 1}"
    return eta, ""
