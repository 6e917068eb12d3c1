"""Progress on long work: "k/N" and an estimate of the time left, for epoch lines."""

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
    """Counts epochs of ``total`` (``done`` of them finished before this run started) and
    says how long the rest will take at the median wall time of the epochs seen so far
    (training and scoring; early stopping can end a run sooner)."""

    def __init__(self, total: int, done: int = 0):
        self.total, self.last, self.times = total, time.perf_counter(), []

    def tick(self, epoch: int) -> str:
        """Call once epoch ``epoch`` (0-based) is finished: "k/N, about T left"."""
        now = time.perf_counter()
        self.times.append(now - self.last)
        self.last = now
        left = self.total - epoch - 1
        if left <= 0:
            return f"{epoch + 1}/{self.total}"
        # The first epoch waits for the compiler too: leave it out once others are known.
        typical = statistics.median(self.times[1:] or self.times)
        return f"{epoch + 1}/{self.total}, about {duration(typical * left)} left"
