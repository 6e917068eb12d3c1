"""How every benchmark times: each timed call runs to completion inside the clock.

JAX dispatches work and returns before the device has done it, so a clock read straight
after a call measures the dispatch. Every call here is followed by
``jax.block_until_ready`` on its result (a no-op for NumPy results and ``None``).
"""

import time


def timed(call, *args):
    """``(result, seconds)`` of ``call(*args)`` run to completion."""
    import jax

    start = time.perf_counter()
    result = jax.block_until_ready(call(*args))
    return result, time.perf_counter() - start


def compiled(fn, *args, **static):
    """``(program, seconds)``: the jitted ``fn`` lowered and compiled for these arguments
    (``static`` its keyword-only static arguments), and how long that took."""
    return timed(lambda: fn.lower(*args, **static).compile())


def rounds(step, n, carry=None):
    """Runs ``carry = step(r, carry)`` for r = 0, …, n − 1, each to completion; returns
    ``(seconds of each round, the last carry)``. Pass a step that ignores ``carry`` to time
    the same call ``n`` times."""
    seconds = []
    for r in range(n):
        carry, s = timed(step, r, carry)
        seconds.append(s)
    return seconds, carry


def take_turns(calls, n):
    """``{name: (seconds of each round, result of each round)}`` for ``calls`` {name:
    call(r)}, run ``n`` rounds that each call every one once in turn, so that a busy machine
    slows each about equally."""
    results = {name: ([], []) for name in calls}
    for r in range(n):
        for name, call in calls.items():
            result, s = timed(call, r)
            results[name][0].append(s)
            results[name][1].append(result)
    return results
