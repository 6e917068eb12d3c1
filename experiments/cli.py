"""What the runners share: ``run_guarded`` (a runner's main, with its one-line errors) and
the flags several runners define. The checks of flags made before any work are in
``experiments.checks``, the devices in ``experiments.devices``, running other runners
(pinned to cores, several at once) in ``experiments.jobs``."""

import logging
import os
import select
import signal
import sys

from absl import flags

from experiments.checks import (
    UsageError,
    check_distinct_outputs,
    check_finite_floats,
    check_not_data,
    check_replaced_outputs,
    name_flag,
)

# PRNG seeds are 0 … 2^31 − 1, as nnjax.seeds.MAX_SEED (not imported here: that imports JAX,
# and flags are checked before it is): jax.random.key keeps only a seed's low 32 bits (2^32
# trains the network of seed 0) and cannot take one past 2^63.
MAX_SEED = 2**31 - 1
SEED_BOUNDS = dict(lower_bound=0, upper_bound=MAX_SEED)
# SGD steps compiled into one iteration of an epoch's loop (--unroll): more only makes the
# compile take minutes (unroll=100 took over a minute for a small network).
MAX_UNROLL = 100


def run_guarded(run, argv) -> None:
    """A runner's ``main``: rejects stray arguments, non-finite float flags, output flags
    naming one file, a device where a file would be replaced, or the data it reads, then
    calls ``run()``,
    turning a bad flag, a data problem, an unreadable checkpoint, a network that diverged or
    a file that cannot be written (a full disk, a read-only directory: the message names
    the file) into one ``error: ...`` line and a non-zero exit, and Ctrl-C into
    ``interrupted``. JAX's INFO logs are not shown unless --verbosity is given."""
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments {argv[1:]} (flags are written --name=value)")
    from nnjax import checkpoint, data, history

    if "verbosity" in flags.FLAGS and not flags.FLAGS["verbosity"].present:
        # absl shows INFO, and JAX logs its search for a TPU there on every CPU machine. Set
        # after JAX's import: a level set before it becomes jax_logging_level, for which JAX
        # adds a handler of its own, and its warnings would print twice.
        logging.getLogger("jax").setLevel(logging.WARNING)
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:  # as a shell's background job is started
        signal.signal(signal.SIGINT, _interrupt)
    try:
        check_finite_floats()
        check_distinct_outputs()
        check_replaced_outputs()
        check_not_data()
        run()
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
    except data.DataError as e:  # named by the flag that chose the dataset, if it is not
        message, value = str(e), flags.FLAGS.dataset if "dataset" in flags.FLAGS else None
        if isinstance(e, data.DataDirError):  # --data_dir's or NNJAX_DATA_DIR's fault
            value = None
        if value is not None and "--dataset" not in message:
            message = message if message.startswith(f"{value}:") else f"{value}: {message}"
            message = f"--dataset={message}"
        sys.exit(f"error: {message}")
    except (UsageError, checkpoint.CheckpointError) as e:
        sys.exit(f"error: {e}")
    except history.Diverged as e:  # nothing of the diverged network has been written
        # one η for the run (a sweep's --eta is a list, and its message names the network's)
        one = "eta" in flags.FLAGS and isinstance(flags.FLAGS.eta, float)
        eta = f" (--eta={flags.FLAGS.eta})" if one else ""
        sys.exit(f"error: {e}{eta}")
    except OSError as e:
        if isinstance(e, BrokenPipeError) and _stdout_closed():  # read by `| head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no more to say
            sys.exit(1)
        sys.exit(
            f"error: {name_flag(e.filename)}: {e.strerror or e}" if e.filename else f"error: {e}"
        )
    except KeyboardInterrupt:
        # Python's teardown while XLA still compiles or runs could crash ("interrupted", then
        # a segmentation fault); the run has nothing left to write, so it ends at once.
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        print("interrupted", file=sys.stderr, flush=True)
        os._exit(1)
    except (RuntimeError, AssertionError) as e:
        from experiments.devices import device_failure

        why = device_failure(e)
        if why is None:
            raise
        sys.exit(f"error: {why}")
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt(signum, frame):
    """Ctrl-C during a run: KeyboardInterrupt, which ends it as ``interrupted``; a second
    Ctrl-C (one the first's KeyboardInterrupt was swallowed by, or one while it ends) ends
    the process at once."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    raise KeyboardInterrupt


def _stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (``| head`` after its lines)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def parse_flags(argv: list) -> list:
    """A runner's flag parsing (``app.run(main, flags_parser=parse_flags)``): absl's, with a
    flag it cannot parse (``--eta=abc``, an unknown flag, an unreadable --flagfile) as one
    ``error: ...`` line and exit status 1, like every other bad input, in place of absl's
    two; ``--help`` (and absl's other help flags) exits 0 after printing the help, not absl's
    1. Returns the arguments left, as absl's parser does."""
    if any(arg.lstrip("-") == "flagfile=" for arg in argv[1:]):  # absl reads no file
        sys.exit("error: --flagfile is empty: name a file of flags")
    try:
        return flags.FLAGS(argv)
    except SystemExit as e:
        if e.code == 1 and any(_names_help(arg) for arg in _expanded(argv)):
            sys.exit(0)
        raise
    except flags.Error as e:
        message = " ".join(str(e).split()).removeprefix("ERROR:: ")
        sys.exit(f"error: {message} (--help lists the flags)")
    except (OSError, ValueError) as e:  # a --flagfile that cannot be read as text
        sys.exit(f"error: --flagfile: {' '.join(str(e).split())}")


HELP_FLAGS = {"help", "?", "helpshort", "helpfull", "helpxml"}


def _names_help(arg: str) -> bool:
    """Whether ``arg`` asks absl for help (``--help``, ``-?``, ``--helpfull=true``, …)."""
    if not arg.startswith("-"):
        return False
    name, _, value = arg.lstrip("-").partition("=")
    return name in HELP_FLAGS and value.lower() not in ("false", "0")


def _expanded(argv: list) -> list:
    """The flags of ``argv`` (up to a ``--``) with each --flagfile's lines in its place."""
    try:
        argv = flags.FLAGS.read_flags_from_files(argv, force_gnu=False)
    except (flags.Error, OSError, ValueError):
        pass  # absl has already said what is wrong with it
    return argv[1 : argv.index("--") if "--" in argv else len(argv)]


PRECISIONS = ("highest", "auto", "default")  # --matmul_precision's values, default first


def matmul_precision(name: str, backend: str) -> str:
    """The ``jax.default_matmul_precision`` that --matmul_precision=``name`` means on
    ``backend`` (``jax.default_backend()``): ``auto`` is ``default`` (TF32) on GPUs and
    ``highest`` (float32) elsewhere — TPUs' default is one bfloat16 pass, untested here."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown matmul precision {name!r}; one of {', '.join(PRECISIONS)}")
    if name == "auto":
        return "default" if backend == "gpu" else "highest"
    return name


# --data_dir's help, for every runner and benchmark (nnjax.data.default_data_dir's order).
DATA_DIR_HELP = (
    "Where datasets are cached (default $NNJAX_DATA_DIR, else "
    "$XDG_CACHE_HOME/nnjax, else ~/.cache/nnjax)."
)


def define_data_flags(requirement: str = "") -> None:
    """Defines ``--dataset`` and ``--data_dir`` (what ``nnjax.data.load`` takes); the
    runner's ``requirement`` on the images, if any, is added to the help."""
    runner = runner_module()
    flags.DEFINE_string(
        "dataset",
        "mnist",
        "mnist (the book's mnist.pkl.gz), tfds:NAME, or "
        "idx:DIR (raw IDX files)" + (f"; {requirement}." if requirement else "."),
        module_name=runner,
    )
    flags.DEFINE_string("data_dir", None, DATA_DIR_HELP, module_name=runner)


def define_network_flags() -> None:
    """Defines ``--cost``, ``--activation`` and ``--init`` of chapters 1–3's networks, from
    the registries ``nnjax.costs.COSTS`` and ``nnjax.activations.HIDDEN``."""
    from nnjax import activations, costs, network

    runner = runner_module()
    flags.DEFINE_enum(
        "cost",
        "quadratic",
        list(costs.COSTS),
        "Cost function; log_likelihood gives the network a softmax output layer.",
        module_name=runner,
    )
    flags.DEFINE_enum(
        "activation",
        "sigmoid",
        list(activations.HIDDEN),
        "Activation of the hidden layers.",
        module_name=runner,
    )
    flags.DEFINE_enum(
        "init",
        "normal",
        list(network.INITS),
        "Weights from N(0, 1) (chapter 1) or N(0, 1/n_in) (chapter 3).",
        module_name=runner,
    )


def define_training_flags() -> None:
    """Defines ``--optimizer`` (from the registry ``nnjax.optimizers.STEPS``), ``--momentum``
    and ``--matmul_precision``: the same names, choices and defaults in every runner."""
    from nnjax import optimizers

    runner = runner_module()
    flags.DEFINE_enum(
        "optimizer",
        "sgd",
        list(optimizers.STEPS),
        "The update rule, after the L2 weight decay: "
        + "; ".join(f"{name}: {step.what}" for name, step in optimizers.STEPS.items())
        + ".",
        module_name=runner,
    )
    flags.DEFINE_float(
        "momentum",
        0.0,
        "Momentum coefficient μ (sgd: the book's v → μv − η∇C, w → w + v; 0: plain SGD).",
        module_name=runner,
    )
    flags.DEFINE_enum(
        "matmul_precision",
        PRECISIONS[0],
        list(PRECISIONS),
        "highest: float32 products, as the book computes (in float64); auto: TF32 products "
        "on GPUs (faster; docs/performance.md), float32 elsewhere; default: XLA's "
        "choice (TF32 on recent GPUs, one bfloat16 pass on TPUs).",
        module_name=runner,
    )


def optimizer_from_flags(regularization: str = "l2"):
    """``nnjax.optimizers.make`` of --optimizer and --momentum; UsageError naming them if
    they do not go together."""
    from nnjax import optimizers

    try:
        return optimizers.make(flags.FLAGS.optimizer, flags.FLAGS.momentum, regularization)
    except ValueError as e:
        raise UsageError(f"--optimizer={flags.FLAGS.optimizer}: {e}") from None


def runner_module() -> str:
    """absl's module name of the runner that called our caller, so that its --helpshort
    lists the flags defined here (for the main module absl uses its path)."""
    name = sys._getframe(2).f_globals["__name__"]
    return sys.argv[0] if name == "__main__" else name
