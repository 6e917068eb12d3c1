"""The devices a runner trains on: ``--devices`` (data parallel on one host) and the
multi-host flags, the same in every runner that takes them; and the backend a fresh
process finds (``backend_name``), and what a backend that cannot start, or a device out of
memory, means (``device_failure``)."""

import os
import subprocess
import sys

from absl import flags

from experiments.checks import UsageError
from experiments.cli import runner_module


def parse_devices(text: str):
    """``"all"`` or a positive int; raises UsageError naming --devices otherwise."""
    if text == "all":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise UsageError(f"--devices must be a positive integer or all, got {text!r}")
    return n


def check_divides(devices, n: int, mini_batch_size: int) -> None:
    """UsageError naming --mini_batch_size and --devices unless its ``n`` devices divide
    the mini-batch: each takes an equal share of it. (``nnjax.parallel.check_mini_batch``
    is the library's check; this one runs before JAX is imported.)"""
    if mini_batch_size % n:
        count = "" if devices == n else f" ({n} devices)"
        raise UsageError(
            f"--mini_batch_size={mini_batch_size} is not divisible by --devices={devices}{count}"
        )


def device_mesh(devices, mini_batch_size: int):
    """The mesh that ``--devices`` (``"all"`` or a positive int) asks for, or None for one
    device on one process. Raises UsageError naming --devices or --mini_batch_size."""
    import jax

    from nnjax import parallel

    try:
        n = parallel.device_count(devices)
    except ValueError as e:
        hint = " (use --devices=all)" if "processes" in str(e) else ""
        raise UsageError(f"--{e}{hint}") from None
    check_divides(devices, n, mini_batch_size)
    return None if n == 1 and jax.process_count() == 1 else parallel.make_mesh(n)


def define_device_flags() -> None:
    """Defines ``--devices`` and the multi-host flags (``--coordinator_address``,
    ``--num_processes``, ``--process_id``), the same in every runner that trains."""
    runner = runner_module()
    flags.DEFINE_string(
        "devices",
        "1",
        "Split every mini-batch over this many devices (an integer, or all: every device of "
        "every process), data parallel; it must divide --mini_batch_size. 1: one device.",
        module_name=runner,
    )
    flags.DEFINE_string(
        "coordinator_address",
        None,
        "Multi-host: HOST:PORT of process 0, for jax.distributed.initialize (with "
        "--num_processes and --process_id).",
        module_name=runner,
    )
    flags.DEFINE_integer(
        "num_processes", None, "Multi-host: the number of processes.", module_name=runner
    )
    flags.DEFINE_integer(
        "process_id",
        None,
        "Multi-host: this process's index, 0 … --num_processes − 1; process 0 prints and "
        "writes the files.",
        module_name=runner,
    )


def check_process_flags() -> None:
    """The multi-host flags come together: all three or none (UsageError naming them)."""
    names = ("coordinator_address", "num_processes", "process_id")
    given = [name for name in names if flags.FLAGS[name].value is not None]
    if given and len(given) < 3:
        missing = [f"--{name}" for name in names if name not in given]
        raise UsageError(f"--{given[0]} needs {' and '.join(missing)} too")
    if given:
        n, i = flags.FLAGS.num_processes, flags.FLAGS.process_id
        if n <= 0:
            raise UsageError(f"--num_processes must be positive, got {n}")
        if not 0 <= i < n:
            raise UsageError(f"--process_id must be in 0 … {n - 1}, got {i}")


JOIN_TIMEOUT = 300  # seconds, JAX's default


def start_processes():
    """Joins the other processes (``jax.distributed.initialize``) when the multi-host flags
    are given; must come before any JAX computation. Returns ``say``: ``print`` on process
    0, which prints and writes the files, and a function that does nothing elsewhere."""
    import jax

    f = flags.FLAGS
    if f.coordinator_address is not None:
        if jax.config.jax_cpu_collectives_implementation is None:
            # CPU processes exchange gradients over TCP with gloo (JAX's default since 0.5).
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        print(  # the runtime waits in silence for every process to join
            f"process {f.process_id} of {f.num_processes}: waiting for the others at "
            f"--coordinator_address={f.coordinator_address} (up to {JOIN_TIMEOUT // 60} min) …",
            file=sys.stderr,
            flush=True,
        )
        try:
            jax.distributed.initialize(
                coordinator_address=f.coordinator_address,
                num_processes=f.num_processes,
                process_id=f.process_id,
                initialization_timeout=JOIN_TIMEOUT,
            )
        except Exception as e:  # the runtime's errors are long and of many types
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UsageError(
                f"--coordinator_address={f.coordinator_address}: cannot start "
                f"process {f.process_id} of {f.num_processes}: {first}"
            ) from None
    return print if jax.process_index() == 0 else (lambda *args, **kwargs: None)


def backend_name() -> str:
    """``jax.default_backend()`` as a fresh process sees it: asking here would make this
    process hold on to the GPU (and most of its memory) while the runs train."""
    out = subprocess.run(
        [sys.executable, "-c", "import jax; print(jax.default_backend())"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0 or not out.stdout.split():
        said = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        kind, _, text = said.partition(": ")  # the child's last line: "Kind: text"
        raise UsageError(_platforms_failure(kind, text) or f"JAX failed to start: {said}")
    return out.stdout.split()[-1]


NO_DEVICE = "no device of that platform is on this machine"


def device_failure(error: BaseException):
    """One line saying why JAX could not start the backend that ``JAX_PLATFORMS`` asks for,
    if ``error`` is that failure (``_platforms_failure``), or that the device ran out of
    memory where no estimate refused the run first; None for any other error."""
    text = str(error).strip()
    if isinstance(error, RuntimeError) and text.startswith("RESOURCE_EXHAUSTED"):
        what = text.splitlines()[0].removeprefix("RESOURCE_EXHAUSTED: ").rstrip(".")
        return f"the device ran out of memory ({what}): ask for fewer or smaller networks"
    return _platforms_failure(type(error).__name__, text)


def _platforms_failure(kind: str, text: str):
    """``device_failure`` for an error named ``kind`` with message ``text``: JAX's
    RuntimeError "Unable to initialize backend …" (a misspelt platform), or the bare
    AssertionError it raises when it finds none of them (``cuda`` on a machine without an
    NVIDIA GPU), where ``JAX_PLATFORMS`` is set; else None."""
    platforms, text = os.environ.get("JAX_PLATFORMS", ""), text.strip()
    if not platforms:
        return None
    if kind == "RuntimeError" and text.startswith("Unable to initialize backend"):
        why = text.splitlines()[0].split(" (set JAX_PLATFORMS=")[0]
    elif kind == "AssertionError" and not text:
        why = NO_DEVICE
    else:
        return None
    return (
        f"JAX_PLATFORMS={platforms}: JAX cannot start it here: {why} (unset it to let JAX choose)"
    )
