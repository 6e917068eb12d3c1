"""Progress on long work: "k of N done" and an estimate of the time left, for the runners' epoch
lines and a sweep's chunks."""

import statistics
import time


def duration(seconds: float) -> str:
    """``seconds`` for a person: "42 s", "3 min 5 s", "2 h 07 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Counts epochs (or other ``unit``s: a row's runs) of ``total`` and says how long the
    rest will take at the median wall time of those seen (training and scoring; early
    stopping can end a run sooner). ``clock`` gives the time in seconds."""

    def __init__(self, total: int, clock=time.perf_counter, unit: str = "epochs"):
        self.total, self.clock, self.unit = total, clock, unit
        self.last, self.times = clock(), []

    def tick(self, epoch: int, compile_seconds: float = 0.0) -> str:
        """Call once epoch ``epoch`` (0-based, as the book counts) is finished: "k of N epochs
        done, about T left". ``compile_seconds``, the time the first epoch of this run
        waited for the epoch's compiler, is left out of its time, the first estimate's."""
        now = self.clock()
        took = now - self.last - (0.0 if self.times else compile_seconds)
        self.last = now
        self.times.append(max(took, 0.0))
        done = epoch + 1
        if done >= self.total:
            return f"{done} of {self.total} {self.unit} done"
        # The first epoch also scored the networks for the first time (compiling that too):
        # leave it out once others are known.
        left = statistics.median(self.times[1:] or self.times) * (self.total - done)
        return f"{done} of {self.total} {self.unit} done, about {duration(left)} left"
