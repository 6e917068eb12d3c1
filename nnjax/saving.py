"""Saved networks: chapters 1-5's in the book's JSON format, chapter 6's as ``.npz``.

``save``/``load`` use the format of the book's ``network2.py``: a JSON object with
``sizes``, ``weights`` (lists of rows), ``biases`` (column vectors, lists of one-element
lists) and ``cost`` (``"QuadraticCost"`` or ``"CrossEntropyCost"``), plus nnjax's own
``"nnjax"`` entry (cost and activation by nnjax's names). Files written by the book's code
load here. The book's ``network2.load`` reads the files of sigmoid networks with the
quadratic or cross-entropy cost written here; it knows no other cost (a log-likelihood
network's file fails there) and ignores the ``"nnjax"`` entry (a tanh or ReLU network's
file would run as sigmoid there).

``save_layers``/``load_layers``/``load_networks``: chapter 6 networks (``experiments.conv
--save``) with the settings that rebuild their layers. Every file is written whole or not
at all (``files.write_atomically``); one that cannot be read raises
``checkpoint.CheckpointError`` naming it.
"""

import json
import os
import zipfile

import jax
import numpy as np

from nnjax import activations, costs, layers, network
from nnjax.checkpoint import UNREADABLE, CheckpointError, unreadable
from nnjax.files import write_atomically

BOOK_COST_NAMES = {"quadratic": "QuadraticCost", "cross_entropy": "CrossEntropyCost"}
# Added to the message when a saved file names a cost, activation or layer kind unknown here.
UNREGISTERED = "one registered outside nnjax where the file was saved must be registered here too"


def save(
    path,
    params,
    cost: costs.Cost = costs.quadratic,
    activation: activations.Activation = activations.sigmoid,
) -> None:
    """Writes the network to ``path`` as the book's ``network2.py`` JSON (``cost`` and
    ``activation`` may be given by name)."""
    cost, activation = costs.get(cost), activations.get(activation)
    document = {
        "sizes": network.sizes_of(params),
        "weights": [np.asarray(w, np.float64).tolist() for w in params["weights"]],
        "biases": [np.asarray(b, np.float64)[:, None].tolist() for b in params["biases"]],
        "cost": BOOK_COST_NAMES.get(cost.name, cost.name),
        "nnjax": {"cost": cost.name, "activation": activation.name},
    }
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
        if not isinstance(ours, dict):
            raise TypeError(f'its "nnjax" entry is {type(ours).__name__}, not an object')
        book_names = {v: k for k, v in BOOK_COST_NAMES.items()}
        book_cost = document.get("cost")
        if "cost" not in ours and book_cost is not None and book_cost not in book_names:
            raise CheckpointError(
                f"{path}: the book's cost {book_cost!r} is none of {', '.join(book_names)}"
            )
        try:
            cost = costs.get(ours.get("cost") or book_names.get(book_cost, "quadratic"))
            activation = activations.get(ours.get("activation", "sigmoid"))
        except ValueError as e:
            raise CheckpointError(f"{path}: {e} ({UNREGISTERED})") from None
    except (*UNREADABLE, TypeError) as e:
        raise CheckpointError(f"cannot read a network from {path}: {e}") from None
    shapes = [(n_out, n_in) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
    if [w.shape for w in weights] != shapes or [b.shape for b in biases] != [s[:1] for s in shapes]:
        raise CheckpointError(f"{path}: weights and biases do not match sizes {sizes}")
    if not all(np.isfinite(a).all() for a in (*weights, *biases)):
        raise CheckpointError(f"{path}: its weights or biases hold NaN or inf")
    return {"weights": weights, "biases": biases}, cost, activation


def save_layers(path, networks: list, settings: dict) -> None:
    """Writes chapter 6 networks (``nnjax.network3`` params: one list of per-layer dicts per
    network) and the ``settings`` that rebuild their layers (JSON-able, e.g. the runner's
    flags) to the ``.npz`` file ``path``."""
    if not (
        isinstance(networks, (list, tuple))
        and networks
        and all(isinstance(n, (list, tuple)) and n for n in networks)
        and all(isinstance(layer, dict) for n in networks for layer in n)
    ):
        raise ValueError(
            "networks must be a non-empty list of network3 params, each a list of per-layer "
            "dicts (chapters 1-5's networks are saved with save)"
        )
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
    write_atomically(path, lambda f: np.savez(f, meta=np.array(meta), **arrays))


def load_layers(path):
    """``(networks, settings)`` from ``save_layers``'s file, or CheckpointError naming it."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path} is not an .npz file of networks (damaged, or not written by "
            "experiments.conv --save)"
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
    except UNREADABLE as e:
        advice = "is it networks saved by experiments.conv --save?"
        raise unreadable("the networks in", path, e, advice) from None


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
        if str(e).startswith("unknown "):  # a layer kind or activation: see UNREGISTERED
            raise CheckpointError(f"{path}: {e} ({UNREGISTERED})") from None
        raise CheckpointError(
            f"{path}: not networks saved by experiments.conv --save ({e})"
        ) from None
    return net, [jax.tree.map(jax.numpy.asarray, params) for params in networks], settings
