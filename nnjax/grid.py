"""A sweep's grid: the settings of its networks, parsed from lists, and its results
summarised over seeds.

A researcher's "what if" (which η, how much data, how much seed-to-seed noise) is a grid of
``Setting``s, each a seed, an η, a λ (L2) and a training-set size; ``nnjax.sweep.run``
trains one network per setting and returns ``(Setting, History)`` pairs, which ``record``
and ``summarise`` turn into rows and means ± sds.
"""

import collections
import dataclasses
import itertools
import math
import statistics
from typing import NamedTuple, Sequence

import numpy as np

from nnjax.history import History
from nnjax.inputs import is_whole
from nnjax.seeds import check_seed


class Setting(NamedTuple):
    """One network of a sweep: its seed, learning rate η, L2 λ and training-set size n."""

    seed: int
    eta: float
    lmbda: float
    train_size: int


def check_setting(i: int, s) -> None:
    """ValueError (TypeError for another kind of object) naming setting ``i`` unless it is a
    ``Setting`` a network can train by: a seed ``seeds.check_seed`` takes, η > 0, λ ≥ 0."""
    if not isinstance(s, Setting):
        raise TypeError(f"setting {i} is a {type(s).__name__}, not a grid.Setting")
    try:
        check_seed(s.seed)
    except ValueError as e:
        raise ValueError(f"setting {i}'s {e}") from None
    if not (math.isfinite(s.eta) and s.eta > 0):
        raise ValueError(f"setting {i}'s η {s.eta!r} is not positive")
    if not (math.isfinite(s.lmbda) and s.lmbda >= 0):
        raise ValueError(f"setting {i}'s λ {s.lmbda!r} is negative or not finite")


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
            check_seed(seed)
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


def _is_number(v, whole: bool) -> bool:
    """Whether ``v`` is one integer (``whole``) or one real number: Python's, NumPy's or a
    0-d array's, not a bool."""
    if is_whole(v):
        return True
    dtype = getattr(v, "dtype", None)
    if whole or np.ndim(v) != 0 or isinstance(v, bool):
        return False
    return isinstance(v, float) or (dtype is not None and np.issubdtype(dtype, np.floating))


def grid(
    seeds: Sequence[int], etas: Sequence[float], lmbdas: Sequence[float], train_sizes: Sequence[int]
) -> list[Setting]:
    """Every combination of the values given, as a list of ``Setting``s ordered by training-
    set size, then η, then λ, then seed (so each setting's seeds are adjacent). ValueError
    naming the list unless the seeds and sizes are integers and η and λ numbers, and each
    setting one that ``check_setting`` takes."""
    lists = {}
    for name, values, whole in (
        ("seeds", seeds, True),
        ("etas", etas, False),
        ("lmbdas", lmbdas, False),
        ("train_sizes", train_sizes, True),
    ):
        values = [] if isinstance(values, str) else list(values)  # an iterator only once
        if not values or not all(_is_number(v, whole) for v in values):
            kind = "integers" if whole else "numbers"
            raise ValueError(f"{name} must be a sequence of {kind}, got {values!r}")
        lists[name] = values
    settings = [
        Setting(int(seed), float(eta), float(lmbda), int(n))
        for n, eta, lmbda, seed in itertools.product(
            lists["train_sizes"], lists["etas"], lists["lmbdas"], lists["seeds"]
        )
    ]
    for i, s in enumerate(settings):
        check_setting(i, s)
    return settings


def record(setting: Setting, run: History) -> dict:
    """One network of a sweep as one JSON-able object: the setting, best and final accuracy,
    epoch of best and the accuracy after every epoch; for a network that diverged, also
    ``diverged_epoch`` (its epochs are those before it; None where there are none)."""
    best = run.best
    record = {
        **setting._asdict(),
        "best_accuracy": best.accuracy if best else None,
        "best_epoch": best.epoch if best else None,
        "final_accuracy": run.epochs[-1].accuracy if run.epochs else None,
        "total": best.total if best else None,
        "accuracies": run.accuracies(),
    }
    if run.diverged is not None:
        record["diverged_epoch"] = run.diverged
    return record


@dataclasses.dataclass(frozen=True)
class Summary:
    """The networks of one (η, λ, n) over their seeds: means and sample sds (0 for one seed)
    of the ``seeds`` networks that trained to the end; ``diverged`` more stopped early with
    inf or NaN parameters (all of them: the means are NaN)."""

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
    diverged: int = 0


def _mean_sd(values):
    values = list(values)
    if not values:
        return math.nan, math.nan
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarise(results: Sequence[tuple]) -> list[Summary]:
    """Aggregates ``results``, pairs ``(Setting, History)``, over seeds: one ``Summary`` per
    (η, λ, n), in first-seen order."""
    groups = {}
    for setting, run in results:
        groups.setdefault((setting.eta, setting.lmbda, setting.train_size), []).append(run)
    summaries = []
    for (eta, lmbda, n), every in groups.items():
        runs = [r for r in every if r.diverged is None]
        per_epoch = [
            _mean_sd(r.epochs[k].accuracy for r in runs)
            for k in range(min((len(r.epochs) for r in runs), default=0))
        ]
        summaries.append(
            Summary(
                eta,
                lmbda,
                n,
                len(runs),
                *_mean_sd(r.best.accuracy for r in runs),
                *_mean_sd(r.epochs[-1].accuracy for r in runs),
                tuple(m for m, _ in per_epoch),
                tuple(s for _, s in per_epoch),
                len(every) - len(runs),
            )
        )
    return summaries
