"""Data parallel training: a 1-D mesh of devices, on one or many hosts, and the global
arrays the epoch reads.

With a ``mesh``, ``nnjax.epoch.epoch`` splits every mini-batch along its batch axis over the
mesh's devices (a sharding constraint) and XLA partitions the step (GSPMD): each device
computes its rows' share of the gradient and the shares are summed across devices, so every
device ends the step with the same parameters. The shuffle, dropout masks and shifts are the
single-device ones (JAX's random bits do not depend on how an array is split), so the result
is the single-device epoch's up to the order of float additions. A last partial mini-batch
(n mod m examples, its size not divisible by the devices) is computed whole on every device.

The training data are replicated: every device holds the whole training set, so any device
can gather any example the shuffle puts in its share of a mini-batch. MNIST is 157 MB; a
data set too large for that would need the batches gathered on the host instead.

Across hosts (``jax.distributed.initialize`` first), the mesh takes the same number of devices
from every process; each process passes the same data and parameters (same files, same seed)
and ``replicate`` assembles them into global arrays without copying between hosts. The
opt-in epochs (``kernel`` "cpp", "pallas" or "blocked") train on one device.
"""

import operator
import os
from typing import Union

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

AXIS = "data"


def device_count(devices: Union[int, str] = "all") -> int:
    """The number of devices ``devices`` asks for: ``"all"`` → ``jax.device_count()`` (every
    process's), an int → itself. Raises ValueError (one line, naming ``devices``) if it is
    not positive, more than there are, or, with several processes, not a multiple of their
    number."""
    available, processes = jax.device_count(), jax.process_count()
    if devices == "all":
        return available
    try:
        n = int(devices) if isinstance(devices, str) else operator.index(devices)
    except (TypeError, ValueError):
        raise ValueError(f"devices must be a positive integer or 'all', got {devices!r}") from None
    if n <= 0:
        raise ValueError(f"devices must be a positive integer or 'all', got {devices!r}")
    if n > available:
        there = f"{available} {jax.default_backend()} device" + (
            "s are" if available != 1 else " is"
        )
        raise ValueError(f"devices={n} but only {there} available")
    if n % processes:
        raise ValueError(f"devices={n} is not a multiple of the {processes} processes")
    return n


def check_mini_batch(mini_batch_size: int, n_devices: int) -> None:
    """Raises ValueError (one line, naming both) unless ``n_devices`` divides
    ``mini_batch_size``: every device takes an equal share of each mini-batch."""
    if mini_batch_size % n_devices:
        raise ValueError(
            f"mini_batch_size={mini_batch_size} is not divisible by devices={n_devices}"
        )


def make_mesh(devices: Union[int, str] = "all") -> jax.sharding.Mesh:
    """A 1-D mesh with axis ``"data"`` over ``device_count(devices)`` devices: with several
    processes, the same number of each process's own devices (its first ones)."""
    n = device_count(devices)
    per_process = n // jax.process_count()
    chosen = [
        d
        for p in range(jax.process_count())
        for d in sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)[
            :per_process
        ]
    ]
    return jax.make_mesh((n,), (AXIS,), (jax.sharding.AxisType.Auto,), devices=chosen)


def replicate(tree, mesh: jax.sharding.Mesh):
    """``tree`` (NumPy or JAX arrays, the same on every process) as global arrays with a copy
    on every device of ``mesh``. Each process copies from its own host memory, so nothing
    crosses between hosts (and nothing checks that the processes agree)."""
    sharding = NamedSharding(mesh, P())

    def put(a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])

    return jax.tree.map(put, tree)


def local_copy(tree):
    """A replicated global ``tree`` (as the epoch on a mesh returns it) as arrays on this
    process's first device of the mesh: for scoring, saving and printing without the mesh."""
    return jax.tree.map(lambda a: a.addressable_data(0), tree)


def free_memory(device=None) -> tuple[int, str]:
    """``(bytes, what)``: the memory free for arrays on ``device`` (default: this process's
    first device): ``bytes_limit`` less ``bytes_in_use`` on a GPU or TPU; on the CPU the
    host's available memory (``MemAvailable``), else its physical memory. ``what`` names
    where, for messages."""
    device = device or jax.local_devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), str(device)
    try:
        with open("/proc/meminfo") as f:
            fields = dict(line.split(":", 1) for line in f)
        return int(fields["MemAvailable"].split()[0]) * 1024, "this machine's free memory"
    except (OSError, KeyError, ValueError):
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return pages, "this machine's memory"
