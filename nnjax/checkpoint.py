"""Checkpointing training runs, and reading nnjax's files safely.

``Run`` keeps a training run's state (one network or K) after every epoch in one ``.npz``
file: the exact parameters and optimizer states, the epochs so far and the settings of the
run, written whole or not at all (``nnjax.files.write_atomically``). A file that cannot be
read raises ``CheckpointError``, one line naming it.
"""

import json
import os
import pathlib
import tempfile
import zipfile
import zlib

import jax
import numpy as np

from nnjax import history
from nnjax.files import open_npz, write_atomically


class CheckpointError(Exception):
    """A file that cannot be read as a network or checkpoint; the message names it."""


class OtherSettings(CheckpointError):
    """A checkpoint of a run with other settings; ``changed`` names them."""

    def __init__(self, message: str, changed: list):
        super().__init__(message)
        self.changed = changed


# What reading a damaged file raises: a truncated one, flipped bytes (a bad CRC, a corrupt
# deflate stream), or one that is no zip at all.
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def unreadable(
    what: str, path, e: Exception, advice: str = "delete it to start over"
) -> CheckpointError:
    """The one-line error for an unreadable ``path`` (a checkpoint, unless ``what`` says
    otherwise), with ``advice`` (how to start over) unless the file is missing."""
    detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if isinstance(e, KeyError):  # NumPy's: "'meta is not a file in the archive'"
        key = str(e.args[0]) if e.args else detail
        detail = f"it holds no {key.removesuffix(' is not a file in the archive')}"
    advice = "" if isinstance(e, FileNotFoundError) else f"; {advice}"
    return CheckpointError(f"cannot read {what} {path} ({detail}){advice}")


def prepare_directory(directory) -> pathlib.Path:
    """Creates the checkpoint directory ``directory`` if need be and returns it as a path,
    having written (and removed) a file there: a directory that exists but cannot take the
    checkpoint is refused now, not after the first epoch. Raises CheckpointError naming
    it."""
    path = pathlib.Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".probe.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise CheckpointError(
            f"cannot use the checkpoint directory {directory}: {e.strerror}"
        ) from None
    return path


class Run:
    """Training runs checkpointed in ``directory``, one ``checkpoint.npz`` for one network
    or K: every network's parameters, optimizer state and best parameters exactly
    (``write_tree``), and its epochs, the run's ``settings`` (JSON-able: the choices that
    decide its trajectory) and the device kind that trained each epoch (the meta).

        run = Run(directory, settings)
        done = run.resume(histories, device)      # 0 if there is no checkpoint yet
        run.save(histories, device)               # after every epoch
    """

    def __init__(self, directory, settings: dict):
        try:  # as the file will hold them, so that they compare equal when it is read
            self.settings = json.loads(json.dumps(settings, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"a checkpoint's settings are JSON (strings, finite numbers, lists, dicts); {e}"
            ) from None
        self.path = prepare_directory(directory) / "checkpoint.npz"
        self.devices = []  # the device kind of each finished epoch

    def _meta(self):
        """The checkpoint's meta (None if there is none yet), checked before any array is
        read: ``OtherSettings`` if it is a run with other settings, CheckpointError if it
        is no checkpoint of this nnjax."""
        if not self.path.exists():
            return None
        meta = read_meta(self.path)
        saved = meta.get("settings")
        if not isinstance(saved, dict):
            raise unreadable("the checkpoint", self.path, ValueError("it names no settings"))
        if saved != self.settings:  # other settings may not even fit the arrays
            keys = set(saved) | set(self.settings)
            changed = sorted(k for k in keys if saved.get(k) != self.settings.get(k))
            raise OtherSettings(
                f"{self.path} is a run with other settings ({', '.join(changed)})"
                ": rerun with its settings or use another directory",
                changed,
            )
        epochs = meta.get("epochs")
        if not (isinstance(epochs, list) and epochs and isinstance(epochs[0], list)):
            # nnjax before 0.1's one checkpoint format kept one network's epochs unnested
            why = ValueError("not a checkpoint of this nnjax: written by an older one?")
            raise unreadable("the checkpoint", self.path, why)
        return meta

    def resume(self, runs, device: str) -> int:
        """Puts the checkpoint's state into ``runs`` (``History``s, in place, initialised as
        the run starts: they give the structure) if there is one; returns how many epochs it
        holds (0 if none). ``device`` stands for the device of epochs from checkpoints that
        did not record theirs."""
        meta = self._meta()
        if meta is None:
            return 0
        done, best = len(meta["epochs"][0]), meta.get("best", True)  # older ones all kept it
        held = len(meta["epochs"])
        if held != len(runs):  # the caller's doing, not the file's: nothing to delete
            raise CheckpointError(
                f"{self.path} holds a run of {held} network{'s' * (held != 1)}, not "
                f"{len(runs)}: resume it with as many Histories, or use another directory"
            )
        tree, _ = read_tree(self.path, _state(runs, best))
        devices = meta.get("devices", [device] * done)
        try:
            epochs = [[history.EpochResult.from_dict(e) for e in run] for run in meta["epochs"]]
            if not (isinstance(devices, list) and all(isinstance(d, str) for d in devices)):
                raise ValueError("its devices are not a list of names")
        except (TypeError, ValueError, AttributeError) as e:
            raise unreadable("the checkpoint", self.path, e) from None
        self.devices = devices
        for run, state, run_epochs in zip(runs, tree, epochs):
            run.params, run.opt_state = state[:2]
            run.best_params = state[2] if best else None
            run.epochs = run_epochs
        return done

    def save(self, runs, device: str) -> None:
        """Checkpoints ``runs`` after their finished epochs, the new ones trained on
        ``device``."""
        trained = len(runs[0].epochs)
        self.devices = self.devices[:trained] + [device] * (trained - len(self.devices))
        best = any(run.best_params is not None for run in runs)
        meta = {
            "settings": self.settings,
            "epochs": [[r.as_dict() for r in run.epochs] for run in runs],
            "devices": self.devices,
            "best": best,
        }
        write_tree(self.path, _state(runs, best), meta)


def _state(runs, best: bool) -> list:
    """What a checkpoint keeps of each run: (params, opt_state), and its best params (or,
    before it has any, its params) when ``best``."""
    return [
        (r.params, r.opt_state)
        + ((r.params if r.best_params is None else r.best_params,) if best else ())
        for r in runs
    ]


def write_tree(path, tree, meta: dict) -> None:
    """Writes every array of the pytree ``tree`` exactly, and the JSON-able ``meta``, to the
    ``.npz`` file ``path`` (atomically)."""
    arrays = {}
    for i, a in enumerate(jax.tree.leaves(tree)):
        a = np.asarray(a)
        if a.dtype.kind == "V":  # ml_dtypes' (bfloat16): .npy keeps only raw bytes, so
            arrays[f"t{i}"] = np.array(a.dtype.name)  # the name goes beside them
            a = a.view(f"u{a.dtype.itemsize}")
        arrays[f"a{i}"] = a
    write_atomically(path, lambda f: np.savez(f, meta=np.array(json.dumps(meta)), **arrays))


def read_meta(path) -> dict:
    """The ``meta`` of ``write_tree``'s file alone (its arrays are not read); CheckpointError
    naming the file if it cannot be read."""
    try:
        with open_npz(path) as archive:
            return json.loads(str(archive["meta"]))
    except UNREADABLE as e:
        raise unreadable("the checkpoint", path, e) from None


def read_tree(path, like):
    """``(tree, meta)`` from ``write_tree``'s file, the arrays put back into the structure of
    the pytree ``like``; CheckpointError naming the file if it cannot be read or does not
    hold such a tree (as many arrays, each of the shape and dtype of ``like``'s)."""
    structure = jax.tree.structure(like)
    try:
        with open_npz(path) as archive:
            meta = json.loads(str(archive["meta"]))
            count = sum(1 for k in archive.files if k.startswith("a"))
            if count != structure.num_leaves:
                raise ValueError(f"it holds {count} arrays, not {structure.num_leaves}")
            leaves = []
            for i, want in enumerate(jax.tree.leaves(like)):
                a, shape = archive[f"a{i}"], np.shape(want)
                dtype = want.dtype if hasattr(want, "dtype") else np.asarray(want).dtype
                # an ml_dtypes array's dtype, whose bytes write_tree keeps as unsigned ints
                kept = str(archive[f"t{i}"]) if f"t{i}" in archive.files else None
                if kept == np.dtype(dtype).name:
                    a = a.view(dtype)
                if a.shape != shape or a.dtype != dtype:
                    raise ValueError(
                        f"its array a{i} is {kept or a.dtype} {a.shape}, where this run has "
                        f"{dtype} {shape}"
                    )
                leaves.append(jax.numpy.asarray(a))
    except UNREADABLE as e:
        raise unreadable("the checkpoint", path, e) from None
    return jax.tree.unflatten(structure, leaves), meta
