"""Runners run as child processes, several at once: the command of one (pinned to CPU cores
where asked), the cores each of ``jobs`` gets, the pool that runs them, and why one failed,
from what it printed. ``experiments.chapter6`` trains its runs so."""

import re
import sys
import threading
from concurrent import futures


def reason(lines: list) -> str:
    """Why a run failed, from its output ``lines``: its last line that says so (experiments'
    "error: ...", absl's "FATAL Flags parsing error: ...", a Python exception), else its
    last line; "" if it printed nothing."""
    lines = [line.strip() for line in lines if line.strip()]
    why = [line for line in lines if re.match(r"(error:|FATAL|[\w.]*(Error|Exception)\b)", line)]
    return (why or lines or [""])[-1]


# Runs a module as ``python -m`` would, on the CPU cores of argv[1] only: pinned before
# anything starts, so XLA sizes its thread pool to them and every thread stays there.
_PINNED = (
    "import os, runpy, sys; os.sched_setaffinity(0, map(int, sys.argv[1].split(','))); "
    "sys.argv = sys.argv[2:]; runpy.run_module(sys.argv[0], run_name='__main__', "
    "alter_sys=True)"
)


def command(module: str, args: list, cores=None) -> list:
    """The argv of ``python -m module args``, pinned to the CPU cores ``cores`` (a list of
    core numbers) where given."""
    if cores is None:
        return [sys.executable, "-m", module, *args]
    return [sys.executable, "-c", _PINNED, ",".join(map(str, cores)), module, *args]


def core_groups(jobs: int, cores: list) -> list:
    """``cores`` split into ``jobs`` contiguous groups as equal as they go: each job's cores."""
    n = len(cores)
    return [cores[i * n // jobs : (i + 1) * n // jobs] for i in range(jobs)]


def run_at_once(tasks: list, groups: list, work, cancel=lambda: None, failed=lambda e: None):
    """Calls ``work(task, group)`` for every task, ``len(groups)`` at a time, each call given
    a group (of cores, say) that no call under way holds. After a call raises, ``failed(e)``
    is told and no new call starts; the calls under way end, then the first exception is
    raised. On Ctrl-C no new call starts either, and ``cancel()`` runs (to stop the calls
    under way) before this waits for them and raises KeyboardInterrupt."""
    free, lock, errors = list(groups), threading.Lock(), []
    stop, cancelling = threading.Event(), threading.Event()

    def one(task):
        with lock:
            if stop.is_set():
                return
            group = free.pop(0)
        try:
            work(task, group)
        except Exception as e:  # the others go on; this one is raised at the end
            with lock:
                errors.append(e)
                stop.set()
            if not cancelling.is_set():  # a cancelled call's error says nothing new
                failed(e)
        finally:
            with lock:
                free.append(group)

    pool = futures.ThreadPoolExecutor(len(groups))
    try:
        pending = {pool.submit(one, task) for task in tasks}
        # Short waits: Ctrl-C's signal may be delivered to a worker thread, and Python acts
        # on it only when the main thread next runs.
        while pending:
            _, pending = futures.wait(pending, timeout=0.2)
    except BaseException:
        stop.set()
        cancelling.set()
        cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    if errors:
        raise errors[0]
