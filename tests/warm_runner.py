"""Runs ``python -m module args`` for the tests from a warm interpreter: this process imports
JAX, optax, NumPy and absl once (about a second a process, most of what a refused flag
costs), then forks one child per request, which runs the module as ``python -m`` would, in
its own working directory and environment. No runner is imported here and no JAX backend
is started, so each child starts JAX, defines its flags and runs as a fresh process would.

Protocol (one JSON object a line): the test sends ``{"module", "args", "cwd", "env",
"stdout", "stderr"}`` (the last two: files to write the child's output to); this process
answers ``{"pid": …}`` once the child runs and ``{"rc": …}`` when it has exited (negative:
killed by that signal, as ``subprocess`` says)."""

import atexit
import json
import os
import runpy
import sys
import traceback

import absl.app  # noqa: F401  (imported once here: the point of this process)
import absl.flags  # noqa: F401
import jax  # noqa: F401
import jax.numpy  # noqa: F401
import numpy  # noqa: F401
import optax  # noqa: F401


def child(request) -> None:
    """Runs the request's module in this (forked) process, then exits with its status."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for fd, name in ((1, "stdout"), (2, "stderr")):
        target = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    devnull = os.open(os.devnull, os.O_RDONLY)  # not the pipe the requests come through
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(0, closefd=False)
    sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
    sys.argv = [request["module"], *request["args"]]
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as e:
        if isinstance(e.code, int) or e.code is None:
            code = e.code or 0
        else:  # sys.exit("message"): the message to stderr, status 1
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    serve()
