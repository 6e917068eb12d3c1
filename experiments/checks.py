"""The checks every runner makes of its flags before any work: the error for a bad flag,
files that must be writable, float flags that must be finite, output flags that must name
distinct files (none of them an input), networks that must fit in memory. Lists are parsed
in ``flag_lists``; output files are written by ``writing``."""

import importlib.util
import math
import os
import sys

from absl import flags


class UsageError(Exception):
    """A bad flag value; its message names the flag."""


def check_writable(flag: str, path: str) -> None:
    """Raises UsageError unless ``path`` can be written, without creating or changing it
    (through a symbolic link, its target: what a write replaces)."""
    directory = os.path.dirname(os.path.realpath(path))
    if os.path.isdir(path):
        raise UsageError(f"--{flag}={path} is a directory")
    if not os.path.isdir(directory):
        raise UsageError(f"--{flag}={path}: directory {directory} does not exist")
    if not os.access(path if os.path.exists(path) else directory, os.W_OK):
        raise UsageError(f"--{flag}={path} is not writable")


def refuse_given(names, why: str) -> None:
    """Raises UsageError for the first of the flags ``names`` given on the command line,
    ``why`` saying what it is for: a flag the run would ignore, e.g. ``refuse_given(["jobs"],
    "is for training: leave it out with --table_only")``."""
    for name in names:
        if flags.FLAGS[name].present:
            raise UsageError(f"--{name} {why}")


def refuse_others(flag: str) -> None:
    """Raises UsageError for the first flag given besides --``flag`` (absl's own aside):
    one that does nothing with it (``--list``, which only shows what there is)."""
    for name in flags.FLAGS:
        module = flags.FLAGS.find_module_defining_flag(name, "")
        if name != flag and flags.FLAGS[name].present and not module.startswith("absl"):
            raise UsageError(f"--{name} does nothing with --{flag}: leave it out")


def check_directory(flag: str, path: str) -> None:
    """Raises UsageError unless ``path`` is a directory that can be written, or one the run
    can create in a writable directory, without creating it. A missing parent is taken for
    a typo, as for --data_dir and the output files: a checkpoint directory's would start a
    run afresh instead of resuming it."""
    existing = os.path.abspath(path)
    if not os.path.exists(existing):
        existing = os.path.dirname(existing)
        if not os.path.exists(existing):
            raise UsageError(f"--{flag}={path}: directory {existing} does not exist")
    if not os.path.isdir(existing):
        where = "" if existing == os.path.abspath(path) else f" ({existing} is a file)"
        raise UsageError(f"--{flag}={path} is not a directory{where}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"--{flag}={path} is not writable")


def check_png(flag: str, path: str) -> None:
    """Raises UsageError naming --``flag`` unless ``path`` names a .png file that can be
    written (``check_writable``) and matplotlib is installed."""
    if not path.lower().endswith(".png"):
        raise UsageError(f"--{flag}={path} must name a .png file")
    if importlib.util.find_spec("matplotlib") is None:  # before any work, not after it
        raise UsageError(f'--{flag} draws with matplotlib: pip install -e ".[plots]"')
    check_writable(flag, path)


def plain_text(text: str) -> str:
    """``text`` (a label or title from a flag) as matplotlib draws it literally: its ``$``
    escaped, which would otherwise start mathtext and fail on ``$\\frac{$``."""
    return text.replace("$", r"\$")


def check_predictions_out(flag: str, path: str) -> None:
    """UsageError naming --``flag`` unless ``path`` can be written as a predictions file
    (its name ends in .json, so that experiments.vote reads it as one)."""
    from nnjax import predictions

    if not path.endswith(predictions.SUFFIX):
        raise UsageError(
            f"--{flag}={path}: a predictions file's name must end in {predictions.SUFFIX}"
        )
    check_writable(flag, path)


def check_finite_floats() -> None:
    """Raises UsageError naming the first float flag given a non-finite value (absl's float
    flags accept ``inf`` and ``nan``; a network trained with them is NaN)."""
    for name in flags.FLAGS:
        flag = flags.FLAGS[name]
        if isinstance(flag.parser, flags.FloatParser) and flag.value is not None:
            if not math.isfinite(flag.value):
                raise UsageError(f"--{name} must be a finite number, got {flag.value}")


# The flags through which runners write files; --checkpoint_dir=D writes D/checkpoint.npz.
OUTPUT_FLAGS = (
    *("save", "metrics_out", "predictions_out", "misclassified_png", "filters_png"),
    *("png", "jsonl", "out", "checkpoint_dir", "summary_out"),
)


def _outputs():
    """``(flag, value, path)`` of each output flag the runner was given: the file it writes."""
    for name in OUTPUT_FLAGS:
        value = flags.FLAGS[name].value if name in flags.FLAGS else None
        if value:
            path = os.path.join(value, "checkpoint.npz") if name == "checkpoint_dir" else value
            yield name, value, path


def check_distinct_outputs() -> None:
    """Raises UsageError if two of the runner's output flags name the same file (one run's
    output would overwrite the other's)."""
    seen = {}
    for name, value, path in _outputs():
        key = os.path.realpath(path)
        if key in seen:
            raise UsageError(f"--{seen[key]} and --{name}={value} name the same file {path}")
        seen[key] = f"{name}={value}"


def own_stream(path):
    """``sys.stdout`` or ``sys.stderr`` if ``path`` is the very file it writes to (opening
    or replacing the path would cut or lose what the run printed); else None."""
    try:
        target = os.stat(path)
    except OSError:
        return None
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = os.fstat(stream.fileno())
        except (OSError, ValueError, AttributeError):  # closed, or not a real file
            continue
        if (fd.st_dev, fd.st_ino) == (target.st_dev, target.st_ino):
            return stream
    return None


# The output flags whose file is replaced by a new one (written to a temporary name, then
# renamed): naming a device there, as root, would replace /dev/full itself.
REPLACED_FLAGS = ("save", "predictions_out", "summary_out", "checkpoint_dir")


def check_replaced_outputs() -> None:
    """Raises UsageError if an output flag of ``REPLACED_FLAGS`` names something that is not
    a regular file (a device, a pipe), which would be replaced, not written to, or the file
    the run's own stdout or stderr goes to, which would be replaced under it."""
    for name, value, path in _outputs():
        if name not in REPLACED_FLAGS:
            continue
        if os.path.isdir(path):
            raise UsageError(f"--{name}={value}: {path} is a directory")
        if os.path.exists(path) and not os.path.isfile(path):
            raise UsageError(
                f"--{name}={value}: {path} is not a regular file (a device or a pipe); "
                "it would be replaced, not written to"
            )
        stream = own_stream(path)
        if stream is not None:
            raise UsageError(
                f"--{name}={value} is the file this run's "
                f"{'stdout' if stream is sys.stdout else 'stderr'} goes to; it would be "
                "replaced under it: name another file"
            )


def check_not_inputs(paths, what: str) -> None:
    """Raises UsageError if an output flag names one of ``paths``, the files the runner
    reads (through links, hard links too), which ``what`` describes ("also the input file
    of --run"): the run would overwrite what it reads."""
    for path in paths:
        for name, value, target in _outputs():
            if _same_or_under(target, os.path.realpath(path)):
                raise UsageError(f"--{name}={value} is {what} ({path})")


def check_not_data(name=None) -> None:
    """Raises UsageError if an output flag names a file the runner's dataset is read from
    (``nnjax.data.sources`` of ``name``, else of --dataset, else of the book's MNIST, in
    --data_dir): the run would overwrite its own data (an IDX file would be lost for good)."""
    if "data_dir" not in flags.FLAGS:
        return
    from nnjax import data

    name = name or (flags.FLAGS.dataset if "dataset" in flags.FLAGS else None) or "mnist"
    for source in data.sources(name, flags.FLAGS.data_dir):
        where = os.path.realpath(source)
        for flag, value, target in _outputs():
            if _same_or_under(target, where):
                raise UsageError(f"--{flag}={value} would overwrite the data it reads ({source})")


def _same_or_under(target, where: str) -> bool:
    """Whether the file ``target`` is ``where`` (through links, hard links too) or lies
    under the directory ``where``."""
    real = os.path.realpath(target)
    if real == where or real.startswith(where + os.sep):
        return True
    return os.path.exists(target) and os.path.exists(where) and os.path.samefile(target, where)


def name_flag(path) -> str:
    """``--flag=value`` of the output flag that writes ``path``, or ``path`` itself."""
    for name, value, target in _outputs():
        if os.path.realpath(target) == os.path.realpath(path):
            return f"--{name}={value}" + (f" ({path})" if target != value else "")
    return str(path)


def square_side(dataset, what: str) -> int:
    """The side of ``dataset``'s images (its ``image_shape``); UsageError naming --dataset
    unless they are square and greyscale, which ``what`` (a runner or a flag) needs."""
    height, width, channels = dataset.image_shape
    if height != width or channels != 1:
        raise UsageError(
            f"--dataset={flags.FLAGS.dataset}: {what} needs square greyscale images, not "
            f"{height}×{width}×{channels}"
        )
    return height


def check_fits(flag: str, value, params, copies: int, data_bytes: int, networks: int = 1) -> None:
    """Raises UsageError naming --``flag``=``value`` if ``copies`` of the network ``params``
    (a pytree of arrays or of ``jax.ShapeDtypeStruct``, e.g. from ``jax.eval_shape`` of its
    init, so that nothing is allocated) and ``data_bytes`` of data cannot fit in the memory
    free on the device, for each of ``networks``. ``copies``: how many copies of each
    network training holds at once (parameters, gradients, updates). An estimate from below:
    a refused run would fail for sure, a run that passes may still run short."""
    import jax

    per_copy = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(params))
    each = f" for each of {networks:,} networks" if networks > 1 else ""
    check_memory(
        flag,
        value,
        networks * copies * per_copy + data_bytes,
        f"training needs at least {{need}} ({copies} × {bytes_text(per_copy)} of parameters, "
        f"gradients and updates{each}, and {bytes_text(data_bytes)} of data)",
    )


def check_memory(flag: str, value, need: int, what: str) -> None:
    """Raises UsageError naming --``flag``=``value`` if ``need`` bytes exceed the memory
    free on the device; ``what`` says what needs them, ``{need}`` standing for the amount
    (e.g. "the hidden layer's outputs need {need}")."""
    from nnjax import parallel

    have, where = parallel.free_memory()
    if need > have:
        raise UsageError(
            f"--{flag}={value}: {what.format(need=bytes_text(need))}; {where} is {bytes_text(have)}"
        )


def bytes_text(n: int) -> str:
    """``n`` bytes in kB, MB, GB or TB, for messages."""
    if n >= 1e12:
        return f"{n / 1e12:,.1f} TB"
    if n < 1e5:
        return f"{n / 1e3:.1f} kB"
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"
