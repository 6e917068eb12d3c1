"""Small helpers shared by the tests."""

import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


# ``python -m argv[2]`` with files limited to argv[1] bytes, the limit set by the child
# itself: a preexec_fn would run Python in a fork of a test process that may hold JAX's
# threads (and their locks).
_LIMITED = (
    "import resource, runpy, sys; n = int(sys.argv.pop(1)); sys.argv.pop(0); "
    "resource.setrlimit(resource.RLIMIT_FSIZE, (n, n)); "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


def run_module(module: str, *flags, timeout: float = 300, max_file_bytes=None):
    """``python -m module flags`` run from the repository's root, as a user runs a runner:
    its ``subprocess.CompletedProcess`` (text output captured; figures drawn off-screen,
    output unbuffered; with ``max_file_bytes``, no file it writes may grow past that, as on
    a full disk). Forked from a warm interpreter (``tests/warm_runner.py``) where it can be:
    the same run, without the second of importing JAX each time."""
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", module, *flags]
    if max_file_bytes is not None:
        command = [sys.executable, "-c", _LIMITED, str(max_file_bytes), module, *flags]
    warm = None if max_file_bytes is not None else _warm_runner(env)
    if warm is None:
        return subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
        )
    return warm.run(command, module, list(flags), env, timeout)


# What an interpreter reads when it starts or imports JAX: a run whose environment differs
# here from the warm interpreter's starts a fresh process instead.
STARTUP = ("PYTHON", "JAX_", "XLA_", "TF_", "LD_", "CUDA", "OMP_", "MKL_")


class _Warm:
    """The test process's ``tests.warm_runner`` process and the environment it started in."""

    def __init__(self, env: dict):
        self.env = env
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.warm_runner"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.buffer = b""

    def fits(self, env: dict) -> bool:
        keys = {k for k in (*env, *self.env) if k.startswith(STARTUP)}
        return self.process.poll() is None and all(env.get(k) == self.env.get(k) for k in keys)

    def _answer(self, deadline=None):
        while b"\n" not in self.buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.process.stdout], [], [], wait)[0]:
                return None
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError("tests.warm_runner exited")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, command, module, args, env, timeout):
        with tempfile.TemporaryDirectory() as d:
            out, err = pathlib.Path(d, "stdout"), pathlib.Path(d, "stderr")
            request = dict(module=module, args=args, cwd=str(ROOT), env=env)
            request.update(stdout=str(out), stderr=str(err))
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
            pid = self._answer()["pid"]
            answer = self._answer(time.monotonic() + timeout)
            if answer is None:
                os.kill(pid, signal.SIGKILL)
                self._answer()
                raise subprocess.TimeoutExpired(command, timeout, out.read_text(), err.read_text())
            return subprocess.CompletedProcess(
                command, answer["rc"], out.read_text(), err.read_text()
            )


_WARM = []  # this test process's _Warm, started at the first run_module


def _warm_runner(env: dict):
    """The warm interpreter for a run in ``env``, or None where a fresh process is needed."""
    if os.name != "posix" or os.environ.get("NNJAX_TESTS_COLD"):
        return None
    if not _WARM or _WARM[0].process.poll() is not None:
        _WARM[:] = [_Warm(env)]
    return _WARM[0] if _WARM[0].fits(env) else None


def assert_one_line(exc_info):
    """The message of a raised exception (pytest's ``ExceptionInfo``), checked to be one
    non-empty line; returns it."""
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, msg
    return msg


def assert_failed_with_one_error(result, names: str) -> None:
    """A finished command (``subprocess.CompletedProcess``) failed with exactly one line
    of stderr that says "error" and contains ``names``, and no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and names in errors[0], result.stderr


def sgd_epoch(
    params,
    x,
    y,
    key,
    eta,
    mini_batch_size,
    cost=None,
    activation=None,
    kernel="jax",
    lmbda=0.0,
    regularization="l2",
    momentum=0.0,
    opt_state=None,
    mesh=None,
):
    """One chapter 1-5 epoch through the public API (``nnjax.epoch.epoch`` of
    ``network.model`` with the book's SGD, λ over the training set's size), in the argument
    order of the tests' reference loops. Returns the params, or ``(params, opt_state)`` when
    an ``opt_state`` (``optimizers.init``) is given."""
    from nnjax import activations, costs, network, optimizers, parallel
    from nnjax.epoch import epoch

    tx = optimizers.make("sgd", momentum, regularization)
    state = opt_state
    if state is None:
        state = optimizers.init(tx, params, eta, lmbda / x.shape[0])
    model = network.model(cost or costs.quadratic, activation or activations.sigmoid)
    args = (params, state, x, y)
    if mesh is not None:
        args = parallel.replicate(args, mesh)
    new = epoch(
        *args, key, model=model, tx=tx, mini_batch_size=mini_batch_size, kernel=kernel, mesh=mesh
    )
    if mesh is not None:
        new = parallel.local_copy(new)
    return new if opt_state is not None else new[0]


def mini_batches(key, n, mini_batch_size):
    """The mini-batches ``nnjax.epoch.epoch`` draws with ``key``: ``(full, rest)``."""
    import jax

    from nnjax import epoch

    return epoch.mini_batches(jax.random.split(key)[0], n, mini_batch_size)


def train(
    params,
    train_data,
    *,
    eta,
    lmbda=0.0,
    regularization="l2",
    momentum=0.0,
    cost=None,
    activation=None,
    opt_state=None,
    done=(),
    optimizer="sgd",
    **kwargs,
):
    """A chapter 1-5 run through ``nnjax.fit.fit`` (the book's SGD unless ``optimizer``);
    returns ``(params, opt_state, History)``."""
    from nnjax import activations, costs, network, optimizers
    from nnjax.fit import fit
    from nnjax.history import History

    tx = optimizers.make(optimizer, momentum, regularization)
    if opt_state is None:
        opt_state = optimizers.init(tx, params, eta, lmbda / len(train_data[1]))
    cost, activation = cost or costs.quadratic, activation or activations.sigmoid
    model = network.model(cost, activation, lmbda, regularization)
    run = History(params, opt_state, list(done))
    if kwargs.get("gradient_norms"):
        from nnjax import backprop

        n = kwargs.pop("gradient_norms")
        x, y = train_data[0][:n], costs.one_hot(train_data[1][:n], params["biases"][-1].shape[0])
        kwargs["metrics"] = lambda p: {
            "gradient_norms": [
                float(v) for v in backprop.hidden_layer_speeds(p, x, y, cost, activation)
            ]
        }
    kwargs.pop("gradient_norms", None)
    if "on_epoch" in kwargs and kwargs["on_epoch"] is not None:
        report = kwargs["on_epoch"]
        kwargs["on_epoch"] = lambda i, r: report(r)
    if "after_epoch" in kwargs and kwargs["after_epoch"] is not None:
        after = kwargs["after_epoch"]
        kwargs["after_epoch"] = lambda runs: after(
            runs[0].params, runs[0].opt_state, runs[0].epochs
        )
    fit(model, tx, run, train_data, **kwargs)
    return run.params, run.opt_state, run
