"""The runners' ``--checkpoint_dir``: resume a run from its checkpoint and checkpoint it
after every epoch, the same way for one network (``experiments.mnist``) or K
(``experiments.conv``), through ``nnjax.checkpoint.Run``."""

from absl import flags

from experiments.checks import UsageError
from experiments.cli import matmul_precision


def arithmetic(backend: str) -> dict:
    """The flags that change a run's arithmetic, not its networks, where they are not the
    default: the resolved --matmul_precision (a GPU's TF32 products train other parameters
    than float32's), --kernel and --kernel=blocked's --block (each rounds differently). A
    checkpoint keeps them with the settings, so that a resumed run ends with exactly the
    parameters of an uninterrupted one; left out at their defaults, so that checkpoints
    written before they were kept still resume."""
    found = flags.FLAGS
    out = {}
    precision = matmul_precision(found.matmul_precision, backend)
    if precision != "highest":
        out["matmul_precision"] = precision
    if "kernel" in found and found.kernel != "jax":
        out["kernel"] = found.kernel
        if found.kernel == "blocked":
            out["block"] = found.block
    return out


def resume(runs, settings: dict, device: str, say=print, primary: bool = True):
    """Restores ``runs`` (``History``s, in place) from --checkpoint_dir's checkpoint if there
    is one; the run's ``settings`` (with its ``arithmetic``) must be the checkpoint's.
    Returns ``after_epoch(runs)``, which checkpoints them (on the ``primary`` process only;
    ``device`` is the kind that trains them), and the device kind of each restored epoch.
    UsageError naming --checkpoint_dir (or --epochs, when the checkpoint already holds more)
    otherwise."""
    import jax

    from nnjax import checkpoint

    directory, epochs = flags.FLAGS.checkpoint_dir, flags.FLAGS.epochs
    settings = {**settings, **arithmetic(jax.default_backend())}
    try:
        saved = checkpoint.Run(directory, settings)
        held = saved.resume(runs, device)
    except checkpoint.OtherSettings as e:  # the settings are flags: name them so
        foreign = [name for name in e.changed if name not in flags.FLAGS]
        if foreign:  # only the checkpoint can hold a setting this runner has no flag for
            raise UsageError(
                f"--checkpoint_dir={directory} holds a run of another runner (it has "
                f"{', '.join('--' + name for name in foreign)}, which this one lacks)"
            ) from None
        raise UsageError(
            f"--checkpoint_dir={directory} holds a run with other settings "
            f"({', '.join('--' + name for name in e.changed)})"
        ) from None
    except checkpoint.CheckpointError as e:
        raise UsageError(f"--checkpoint_dir={directory}: {e}") from None
    if held > epochs:
        raise UsageError(
            f"--epochs={epochs}: --checkpoint_dir={directory} already holds {held} epochs"
        )
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        found = multihost_utils.process_allgather(held).tolist()
        if len(set(found)) > 1:
            raise UsageError(
                f"--checkpoint_dir={directory} must be the same directory for every process "
                f"(they found {found} finished epochs)"
            )
    if held:
        say(f"Resuming from {saved.path} after {held} epoch{'s' * (held != 1)}.", flush=True)

    def after_epoch(runs):
        if primary:
            saved.save(runs, device)

    return after_epoch, list(saved.devices)
