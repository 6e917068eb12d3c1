"""The runners' --kernel and --block flags: which epoch trains (nnjax.epoch's kernels),
defined and checked the same way in every runner that offers them."""

from absl import flags

from experiments.checks import UsageError
from experiments.cli import runner_module

KERNEL_HELP = {
    "jax": "the JAX epoch, jax.grad of the Python loss",
    "cpp": "on the CPU, chapter 1's one-hidden-layer sigmoid network with plain SGD in "
    "nnjax's hand-fused C++ copy of the same step (faster; see docs/performance.md)",
    "pallas": "on a GPU, chapter 1's one-hidden-layer sigmoid network with plain SGD in "
    "one persistent Pallas kernel, the whole epoch in one launch (nnjax/gpu_kernel.py)",
    "blocked": "chapters 1-5's networks with plain SGD, --block mini-batches at a time with "
    "the first layer's weights held and corrected exactly (nnjax/blocked.py; less memory "
    "traffic for many networks at once)",
}


def define_kernel_flags(kernels) -> None:
    """Defines ``--kernel`` (one of ``kernels``, keys of ``KERNEL_HELP``; "jax" first, the
    default) and ``--block`` (mini-batches per block of ``--kernel=blocked``)."""
    runner = runner_module()
    flags.DEFINE_enum(
        "kernel",
        kernels[0],
        list(kernels),
        "; ".join(f"{name}: {KERNEL_HELP[name]}" for name in kernels) + ".",
        module_name=runner,
    )
    flags.DEFINE_integer(
        "block",
        8,
        "Mini-batches per block of --kernel=blocked.",
        lower_bound=1,
        upper_bound=64,
        module_name=runner,
    )


def check_kernel(model, tx, mesh=None) -> None:
    """UsageError naming --kernel, --block or --devices if the chosen kernel cannot train
    ``model`` with ``tx`` (on ``mesh``). Needs no data, so runners call it before loading
    any; the C++ and Pallas kernels' own checks need the data (``check_kernel_data``)."""
    import jax

    from nnjax import blocked

    if flags.FLAGS.kernel == "pallas" and jax.default_backend() != "gpu":
        raise UsageError(
            f"--kernel=pallas runs on a GPU, not on {jax.default_backend()} (there it would "
            "run in Pallas's interpreter, which is for the tests)"
        )
    if flags.FLAGS.kernel != "jax" and mesh is not None:
        raise UsageError(f"--kernel={flags.FLAGS.kernel} trains on one device: leave out --devices")
    if flags.FLAGS.kernel != "blocked":
        if flags.FLAGS["block"].present:
            raise UsageError("--block is for --kernel=blocked")
        return
    try:
        blocked.check(model, tx, mesh)
    except ValueError as e:
        raise UsageError(f"--kernel=blocked: {e}") from None


def check_kernel_data(model, tx, params, x, say=print) -> None:
    """UsageError naming --kernel if the C++ CPU epoch or the Pallas GPU epoch cannot train
    ``params`` on the training images ``x`` (N, n_in) here; nothing to check for the
    other kernels. Says so (by ``say``) before the C++ epoch is compiled, the first time."""
    kernel = flags.FLAGS.kernel
    if kernel not in ("cpp", "pallas"):
        return
    from nnjax import cpu_kernel, gpu_kernel

    def compiling():
        say("Compiling the C++ CPU epoch (once for this CPU and jaxlib) …", flush=True)

    try:
        if kernel == "cpp":
            cpu_kernel.check(model, tx, params, x, flags.FLAGS.mini_batch_size, compiling)
        else:
            gpu_kernel.check(model, tx, params, x, flags.FLAGS.mini_batch_size)
    except ValueError as e:
        raise UsageError(f"--kernel={kernel}: {e}") from None


def describe_kernel() -> str:
    """How the header names a kernel other than the JAX epoch ("" for that)."""
    kernel = flags.FLAGS.kernel
    if kernel == "cpp":
        return " (nnjax's C++ CPU epoch)"
    if kernel == "pallas":
        return " (nnjax's Pallas GPU epoch)"
    if kernel == "blocked":
        return f" (blocked epoch, {flags.FLAGS.block} mini-batches a block)"
    return ""
