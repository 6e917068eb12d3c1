"""Saving networks (the book's JSON format) and checkpointing training runs.

``save``/``load`` use the format of the book's ``network2.py``: a JSON object with
``sizes``, ``weights`` (lists of rows), ``biases`` (column vectors, lists of one-element
lists) and ``cost`` (``"QuadraticCost"`` or ``"CrossEntropyCost"``), plus nnjax's own
``"nnjax"`` entry (cost and activation by nnjax's names). Files written by the book's code
load here. The book's ``network2.load`` reads the files of sigmoid networks with the
quadratic or cross-entropy cost written here; it knows no other cost (a log-likelihood
network's file fails there) and ignores the ``"nnjax"`` entry (a tanh or ReLU network's
file would run as sigmoid there).

``Run`` keeps a training run's state (one network or K) after every epoch in one ``.npz``
file: the exact parameters and optimizer states, the epochs so far and the settings of the
run. Every file is written to a temporary name and renamed over the old one, so a process
killed at any moment leaves either the old or the new file, never half of one.
"""

import errno
import json
import os
import pathlib
import tempfile
import zipfile
import zlib

import jax
import numpy as np

from nnjax import activations, costs, history, layers, network
from nnjax.data.fetch import clean_stale

BOOK_COST_NAMES = {"quadratic": "QuadraticCost", "cross_entropy": "CrossEntropyCost"}


class CheckpointError(Exception):
    """A file that cannot be read as a network or checkpoint; the message names it."""


class OtherSettings(CheckpointError):
    """A checkpoint of a run with other settings; ``changed`` names them."""

    def __init__(self, message: str, changed: list):
        super().__init__(message)
        self.changed = changed


# What reading a damaged file raises: a truncated one, flipped bytes (a bad CRC, a corrupt
# deflate stream), or one that is no zip at all.
_UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error)


def _unreadable(what: str, path, e: Exception) -> CheckpointError:
    """The one-line error for an unreadable checkpoint ``path``, saying how to start over."""
    detail = (str(e).strip().splitlines() or [type(e).__name__])[0]
    advice = "" if isinstance(e, FileNotFoundError) else "; delete it to start over"
    return CheckpointError(f"cannot read {what} {path} ({detail}){advice}")


def write_atomically(path, write) -> None:
    """Calls ``write(f)`` on a new binary file that then replaces ``path`` whole: a reader
    finds the old file or the new one, never half of one. Raises OSError, before writing
    anything, if ``path`` exists and is not a regular file (a device, a pipe, a directory):
    replacing it would destroy it, not write to it."""
    path = pathlib.Path(path)
    if path.exists() and not path.is_file():
        raise OSError(
            errno.EINVAL, "not a regular file (a device, a pipe or a directory)", os.fspath(path)
        )
    mask = os.umask(0)
    os.umask(mask)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp's 0600 would make every file private
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:  # name the file being written, not its temporary name
        raise OSError(e.errno, e.strerror or str(e), os.fspath(path)) from e
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def save(
    path,
    params,
    cost: costs.Cost = costs.quadratic,
    activation: activations.Activation = activations.sigmoid,
) -> None:
    """Writes the network to ``path`` as the book's ``network2.py`` JSON."""
    document = {
        "sizes": network.sizes_of(params),
        "weights": [np.asarray(w, np.float64).tolist() for w in params["weights"]],
        "biases": [np.asarray(b, np.float64)[:, None].tolist() for b in params["biases"]],
        "cost": BOOK_COST_NAMES.get(cost.name, cost.name),
        "nnjax": {"cost": cost.name, "activation": activation.name},
    }
    clean_stale(pathlib.Path(path).parent, pathlib.Path(path).name)  # a killed write's .tmp
    write_atomically(path, lambda f: f.write(json.dumps(document).encode()))


def load(path, dtype=np.float32):
    """Reads a network saved by ``save`` or by the book's ``network2.py``.

    Returns ``(params, cost, activation)``: ``params["weights"][l]`` a NumPy array of
    ``dtype`` shaped (sizes[l+1], sizes[l]), ``params["biases"][l]`` (sizes[l+1],) (pass
    them to ``jax.tree.map(jnp.asarray, params)`` for JAX arrays); the ``costs.Cost`` and
    ``activations.Activation`` it was trained with (the book's files: sigmoid, and
    quadratic where they name no cost). Raises CheckpointError naming the file.
    """
    try:
        with open(path) as f:
            document = json.load(f)
        sizes = network.check_sizes(document["sizes"])
        weights = [np.asarray(w, dtype) for w in document["weights"]]
        biases = [np.asarray(b, dtype).reshape(-1) for b in document["biases"]]
        ours = document.get("nnjax", {})
        book_names = {v: k for k, v in BOOK_COST_NAMES.items()}
        cost = costs.get(ours.get("cost") or book_names.get(document.get("cost"), "quadratic"))
        activation = activations.get(ours.get("activation", "sigmoid"))
    except (*_UNREADABLE, TypeError) as e:
        raise CheckpointError(f"cannot read a network from {path}: {e}") from None
    shapes = [(n_out, n_in) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    if [w.shape for w in weights] != shapes or [b.shape for b in biases] != [s[:1] for s in shapes]:
        raise CheckpointError(f"{path}: weights and biases do not match sizes {sizes}")
    return {"weights": weights, "biases": biases}, cost, activation


def open_npz(path):
    """``np.load(path)`` for an ``.npz`` file; ValueError if ``path`` is a file of another
    kind (a damaged or truncated one), which np.load would try as a pickle and refuse with
    advice to unpickle it."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise ValueError("it is not an .npz file (damaged, or not written by nnjax)")
    return np.load(path)


def prepare_directory(directory) -> pathlib.Path:
    """Creates the checkpoint directory ``directory`` if need be and returns it as a path,
    having written (and removed) a file there: a directory that exists but cannot take the
    checkpoint is refused now, not after the first epoch. Temporary files a killed run's
    checkpoint left are removed. Raises CheckpointError naming it."""
    path = pathlib.Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".probe.", suffix=".tmp")
        os.close(fd)
        os.remove(probe)
        clean_stale(path, "checkpoint.npz")  # what a run killed mid-checkpoint left
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
        self.path = prepare_directory(directory) / "checkpoint.npz"
        self.settings = settings
        self.devices = []  # the device kind of each finished epoch

    def epochs_held(self) -> int:
        """How many epochs the checkpoint holds (0 if there is none), read from its meta
        alone; ``OtherSettings`` if it is a run with other settings."""
        if not self.path.exists():
            return 0
        meta = read_meta(self.path)
        saved = meta.get("settings")
        if not isinstance(saved, dict):
            raise _unreadable("the checkpoint", self.path, ValueError("it names no settings"))
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
            raise _unreadable("the checkpoint", self.path, why)
        return len(epochs[0])

    def resume(self, runs, device: str) -> int:
        """Puts the checkpoint's state into ``runs`` (``History``s, in place, initialised as
        the run starts: they give the structure) if there is one; returns how many epochs it
        holds. ``device`` stands for the device of epochs from checkpoints that did not
        record theirs."""
        done = self.epochs_held()
        if not done and not self.path.exists():
            return 0
        best = read_meta(self.path).get("best", True)  # older checkpoints all kept it
        tree, meta = read_tree(self.path, _state(runs, best))
        self.devices = meta.get("devices", [device] * done)
        for run, state, epochs in zip(runs, tree, meta["epochs"]):
            run.params, run.opt_state = state[:2]
            run.best_params = state[2] if best else None
            run.epochs = [history.EpochResult.from_dict(e) for e in epochs]
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


def save_layers(path, networks: list, settings: dict) -> None:
    """Writes chapter 6 networks (``nnjax.network3`` params: one list of per-layer dicts per
    network) and the ``settings`` that rebuild their layers (JSON-able, e.g. the runner's
    flags) to the ``.npz`` file ``path``."""
    arrays = {
        f"n{i}_l{l}_{name}": np.asarray(a)
        for i, params in enumerate(networks)
        for l, layer in enumerate(params)
        for name, a in layer.items()
    }
    meta = json.dumps(
        {
            "settings": settings,
            "networks": len(networks),
            "layers": [sorted(layer) for layer in networks[0]],
        }
    )
    clean_stale(pathlib.Path(path).parent, pathlib.Path(path).name)  # a killed write's .tmp
    write_atomically(path, lambda f: np.savez(f, meta=np.array(meta), **arrays))


def load_layers(path):
    """``(networks, settings)`` from ``save_layers``'s file, or CheckpointError naming it."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not an .npz file of networks (damaged, or not written by "
            "experiments.conv --save); delete it to start over"
        )
    try:
        with np.load(path) as archive:
            meta = json.loads(str(archive["meta"]))
            networks = [
                [
                    {name: archive[f"n{i}_l{l}_{name}"] for name in names}
                    for l, names in enumerate(meta["layers"])
                ]
                for i in range(meta["networks"])
            ]
        return networks, meta["settings"]
    except _UNREADABLE as e:
        raise _unreadable("the networks in", path, e) from None


def load_networks(path):
    """Chapter 6 networks saved by ``save_layers`` (``experiments.conv --save``), ready to
    classify. Returns ``(net, networks, settings)``: the tuple of ``nnjax.layers.Layer``
    that ``network3.apply`` and ``network3.predict_all`` take, one list of per-layer param
    dicts (JAX arrays) per network, and the saved settings (the runner's flags, e.g.
    ``settings["dataset"]``). Raises CheckpointError naming the file."""
    networks, settings = load_layers(path)
    try:
        num_classes = networks[0][-1]["w"].shape[-1]  # the softmax layer's outputs
        net = tuple(
            layers.parse(
                settings["layers"],
                settings["activation"],
                settings["dropout"],
                settings["dropout_kind"],
                settings["init"],
                num_classes,
            )
        )
        if len(net) != len(networks[0]):
            raise ValueError(
                f"{settings['layers']!r} has {len(net)} layers, the file {len(networks[0])}"
            )
    except (KeyError, IndexError, TypeError, ValueError, layers.LayerError) as e:
        raise CheckpointError(
            f"{path}: not networks saved by experiments.conv --save ({e})"
        ) from None
    return net, [jax.tree.map(jax.numpy.asarray, params) for params in networks], settings


def write_tree(path, tree, meta: dict) -> None:
    """Writes every array of the pytree ``tree`` exactly, and the JSON-able ``meta``, to the
    ``.npz`` file ``path`` (atomically)."""
    arrays = {f"a{i}": np.asarray(a) for i, a in enumerate(jax.tree.leaves(tree))}
    write_atomically(path, lambda f: np.savez(f, meta=np.array(json.dumps(meta)), **arrays))


def read_meta(path) -> dict:
    """The ``meta`` of ``write_tree``'s file alone (its arrays are not read); CheckpointError
    naming the file if it cannot be read."""
    try:
        with open_npz(path) as archive:
            return json.loads(str(archive["meta"]))
    except _UNREADABLE as e:
        raise _unreadable("the checkpoint", path, e) from None


def read_tree(path, like):
    """``(tree, meta)`` from ``write_tree``'s file, the arrays put back into the structure of
    the pytree ``like``; CheckpointError naming the file if it cannot be read or does not
    hold such a tree."""
    structure = jax.tree.structure(like)
    try:
        with open_npz(path) as archive:
            meta = json.loads(str(archive["meta"]))
            count = sum(1 for k in archive.files if k.startswith("a"))
            if count != structure.num_leaves:
                raise ValueError(f"it holds {count} arrays, not {structure.num_leaves}")
            leaves = [jax.numpy.asarray(archive[f"a{i}"]) for i in range(count)]
    except _UNREADABLE as e:
        raise _unreadable("the checkpoint", path, e) from None
    return jax.tree.unflatten(structure, leaves), meta
