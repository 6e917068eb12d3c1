"""A compiled C++ epoch for the book's one-hidden-layer networks on the CPU, called from
inside ``jit``.

This is a hand-fused copy of chapter 1's SGD step, and it is opt-in: the code that trains by
default is the JAX epoch (``nnjax.epoch``), ``jax.grad`` of the Python loss. XLA runs the
book's [784, 30, 10] network at mini-batch 10 far from the CPU's peak: each step is a handful
of tiny matrix products, each a separate library call and a separate pass over w1.
``kernels/sgd_epoch_cpu.cc`` does a whole epoch of the same updates in one XLA FFI call (see
the comments there); ``nnjax.epoch.epoch(kernel="cpp")`` (``--kernel=cpp``) runs it where
``check`` allows. The two compute the same SGD steps over the same mini-batches and differ
only in the order of float additions and the kernel's own e^x (within about 1 ulp; the tests
compare them). An edit to the Python model or cost does not reach the kernel.

The source is compiled when first asked for (``check``), with the system's C++ compiler
(``$CXX``, else ``c++``/``g++``/``clang++``), for this machine's CPU, into the cache directory
(``kernels/`` in the data directory: ``$NNJAX_DATA_DIR``, else ``$XDG_CACHE_HOME/nnjax``,
else ``~/.cache/nnjax``), and reused after that. With no compiler, or if the build fails,
``check`` says so. ``NNJAX_CPU_KERNEL=0`` turns the kernel off; it is read once, at the
kernel's first use in a process.
"""

import ctypes
import functools
import hashlib
import logging
import os
import pathlib
import platform
import shutil
import subprocess
import tempfile

import jax
import jax.numpy as jnp

from nnjax import costs, files, fused

SOURCE = pathlib.Path(__file__).with_name("kernels") / "sgd_epoch_cpu.cc"
TARGET = "nnjax_sgd_epoch_cpu"
MAX_MINI_BATCH = 32
# Reassociation lets the compiler vectorise sums; none of these flags changes how a
# single float operation rounds (no -ffast-math: it would set flush-to-zero process-wide).
CXXFLAGS = [
    "-O3",
    "-march=native",
    "-std=c++17",
    "-shared",
    "-fPIC",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fassociative-math",
    "-fno-signed-zeros",
    "-w",
]


def _compiler():
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cache_dir() -> pathlib.Path:
    from nnjax.data import default_data_dir

    return default_data_dir() / "kernels"


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU's model and feature flags."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = [l for l in f if l.startswith(("model name", "flags", "Features"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor()


def _library(compiler: str, cache_dir) -> pathlib.Path:
    """Where the kernel built by ``compiler`` for this source, jaxlib and CPU is cached."""
    key = hashlib.sha256(
        "\0".join(
            [
                SOURCE.read_text(),
                compiler,
                " ".join(CXXFLAGS),
                jax.__version__,
                platform.machine(),
                _cpu_signature(),
            ]
        ).encode()
    ).hexdigest()[:16]
    return pathlib.Path(cache_dir or _cache_dir()) / f"sgd_epoch_cpu-{key}.so"


def _cached(library: pathlib.Path) -> bool:
    """Whether ``library`` can be used as it is: its bytes match the SHA-256 kept beside it,
    or it was built before digests were kept, in a cache that cannot be written now."""
    digest = library.with_suffix(".sha256")
    if library.exists() and digest.exists():
        return digest.read_text() == _sha256(library)
    return library.exists() and not os.access(library.parent, os.W_OK)


def needs_build(compiler=None, cache_dir=None) -> bool:
    """Whether ``build`` would compile the kernel now (False without a compiler, where it
    cannot; True where the cache cannot be read, where it would try)."""
    compiler = compiler or _compiler()
    try:
        return compiler is not None and not _cached(_library(compiler, cache_dir))
    except OSError:
        return True


def build(compiler=None, cache_dir=None) -> pathlib.Path:
    """Compiles the kernel (once per source, compiler, jaxlib and CPU) and returns the
    shared library's path; a cached library whose bytes no longer match the SHA-256 kept
    beside it is built again. Raises RuntimeError with the compiler's message if it
    fails."""
    compiler = compiler or _compiler()
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set $CXX or install g++)")
    include = jax.ffi.include_dir()
    library = _library(compiler, cache_dir)
    if _cached(library):
        return library
    cache_dir, digest = library.parent, library.with_suffix(".sha256")
    # missing, or altered since it was built (loading a truncated library crashes Python)
    cache_dir.mkdir(parents=True, exist_ok=True)
    logging.debug("nnjax: compiling the CPU kernel into %s", library)
    fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".so.tmp")
    os.close(fd)
    try:
        result = subprocess.run(
            [compiler, *CXXFLAGS, f"-I{include}", str(SOURCE), "-o", tmp],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{compiler} failed: {result.stderr.strip()[-2000:]}")
        files.write_atomically(digest, lambda f: f.write(_sha256(pathlib.Path(tmp)).encode()))
        os.replace(tmp, library)  # atomic: concurrent builders each publish a whole file
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return library


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def _unavailable() -> str:
    """Builds and registers the FFI target once per process: "" when done, else why not."""
    if os.environ.get("NNJAX_CPU_KERNEL", "1") == "0":
        return "NNJAX_CPU_KERNEL=0 turns it off"
    try:
        library = ctypes.cdll.LoadLibrary(str(build()))
        jax.ffi.register_ffi_target(
            TARGET, jax.ffi.pycapsule(library.NnjaxSgdEpoch), platform="cpu"
        )
        return ""
    except (RuntimeError, OSError, subprocess.SubprocessError, AttributeError) as e:
        return (str(e).strip().splitlines() or [type(e).__name__])[0]


def check(model, tx, params, x, mini_batch_size: int, on_build=None) -> None:
    """Raises ValueError (one line saying why) unless the kernel can run this epoch: the CPU
    backend, and what ``fused.reason`` asks with mini-batches of at most ``MAX_MINI_BATCH``.
    Only then is the kernel built (once per machine; ``on_build()`` is called first, e.g.
    to say so) and registered."""
    if jax.default_backend() != "cpu":
        why = f"it runs on the CPU only, not on {jax.default_backend()}"
    else:
        why = fused.reason(model, tx, params, x, mini_batch_size, MAX_MINI_BATCH)
    enabled = os.environ.get("NNJAX_CPU_KERNEL", "1") != "0"
    if not why and enabled and on_build is not None and needs_build():
        on_build()
    if not why and _unavailable():
        why = f"it is unavailable ({_unavailable()})"
    if why:
        raise ValueError(f"the C++ CPU epoch cannot train this network: {why}")


def book_epoch(params, opt_state, x, y, batches, model):
    """``fused.book_epoch`` by the C++ kernel. Call inside ``jit``, after ``check``."""
    return fused.book_epoch(sgd_epoch, params, opt_state, x, y, batches, model)


def _threads_from_environment() -> int | None:
    """$NNJAX_CPU_THREADS as a positive int; None if unset (or not one: says so once)."""
    text = os.environ.get("NNJAX_CPU_THREADS", "").strip()
    if not text:
        return None
    try:
        if int(text) > 0:
            return int(text)
    except ValueError:
        pass
    _warn_bad_threads(text)
    return None


@functools.cache
def _warn_bad_threads(text: str) -> None:
    logging.warning("nnjax: NNJAX_CPU_THREADS=%r is not a positive integer; ignoring it", text)


def default_threads() -> int:
    """Threads for the kernel: $NNJAX_CPU_THREADS, else the cores this process may use, at
    most 4 (a step's serial part limits what more would give)."""
    fixed = _threads_from_environment()
    if fixed:
        return fixed
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def describe_threads() -> str:
    """The default thread count in words, for reports: e.g. "up to 2 threads (1 on busy
    cores)", or "1 thread (NNJAX_CPU_THREADS)" when that variable fixes it."""
    n = default_threads()
    if _threads_from_environment():
        return f"{n} thread{'s' * (n > 1)} (NNJAX_CPU_THREADS)"
    return f"up to {n} threads (1 on busy cores)" if n > 1 else "1 thread"


def sgd_epoch_and_threads(
    params,
    x,
    y,
    batches,
    eta,
    threads=None,
    cost: costs.Cost = costs.quadratic,
    decay=1.0,
    stop_after=-1,
):
    """``sgd_epoch``, also returning the threads its last steps ran on (an int32 scalar).
    ``stop_after`` between 1 and steps − 1 makes the kernel go on on one thread after that
    many steps, as it does by itself on busy cores (for tests: the result must not change)."""
    watch = not (threads or _threads_from_environment())
    (w1, w2), (b1, b2) = params["weights"], params["biases"]
    shapes = [jax.ShapeDtypeStruct(a.shape, a.dtype) for a in (w1, b1, w2, b2)]
    shapes.append(jax.ShapeDtypeStruct((), jnp.int32))
    w1, b1, w2, b2, used = jax.ffi.ffi_call(TARGET, shapes)(
        w1,
        b1,
        w2,
        b2,
        x,
        y.astype(jnp.int32),
        batches.astype(jnp.int32),
        jnp.asarray(eta, jnp.float32),
        jnp.asarray(decay, jnp.float32),
        threads=int(threads or default_threads()),
        watch=watch,
        stop_after=int(stop_after),
        cross_entropy=cost is costs.cross_entropy,
    )
    return {"weights": [w1, w2], "biases": [b1, b2]}, used


def sgd_epoch(
    params, x, y, batches, eta, threads=None, cost: costs.Cost = costs.quadratic, decay=1.0
):
    """The SGD updates over ``batches`` (steps, m) int32 indices into ``x`` (n, n_in) and
    ``y`` (n,), in order; returns the new params. Call inside ``jit``. Each update first
    multiplies the weights by ``decay`` (1 − ηλ/n for L2; 1 without). The result does not
    depend on ``threads``. It defaults to ``default_threads()``; then, unless
    $NNJAX_CPU_THREADS is set, the kernel finishes the epoch on one thread as soon as its
    threads keep waiting for each other (other work holds the cores)."""
    return sgd_epoch_and_threads(params, x, y, batches, eta, threads, cost, decay)[0]
