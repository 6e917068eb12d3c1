"""nnjax.progress: the "k of N epochs done, about T left" of the runners' epoch lines."""

from nnjax.progress import Progress, duration


class Clock:
    """A clock that reads the times it is given, one per call."""

    def __init__(self, *times):
        self.times = list(times)

    def __call__(self):
        return self.times.pop(0)


def test_the_estimate_is_the_median_epoch_times_the_epochs_left():
    """The first estimate has one epoch to go on; later ones leave it out."""
    clock = Progress(5, clock=Clock(0.0, 10.0, 12.0, 20.0, 22.0, 24.0))
    assert clock.tick(0) == "1 of 5 epochs done, about 40 s left"  # 10 s × 4
    # then the first epoch (which also compiled the scoring) is left out: median(2, ...)
    assert clock.tick(1) == "2 of 5 epochs done, about 6 s left"  # 2 × 3
    assert clock.tick(2) == "3 of 5 epochs done, about 10 s left"  # median(2, 8) × 2
    assert clock.tick(3) == "4 of 5 epochs done, about 2 s left"  # median(2, 8, 2) × 1
    assert clock.tick(4) == "5 of 5 epochs done"


def test_the_first_epochs_compile_time_is_left_out():
    clock = Progress(3, clock=Clock(0.0, 7.0, 9.0))
    assert clock.tick(0, compile_seconds=5.0) == "1 of 3 epochs done, about 4 s left"
    assert clock.tick(1, compile_seconds=5.0) == "2 of 3 epochs done, about 2 s left"


def test_a_resumed_run_counts_from_its_epoch():
    clock = Progress(30, clock=Clock(0.0, 3.0))
    assert clock.tick(11) == "12 of 30 epochs done, about 54 s left"


def test_duration_reads_as_a_person_writes_it():
    assert [duration(s) for s in (0.4, 42, 185, 7620)] == ["0 s", "42 s", "3 min 5 s", "2 h 07 min"]
