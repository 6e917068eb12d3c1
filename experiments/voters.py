"""The voters of ``experiments.vote``: networks saved by ``experiments.conv --save`` (``.npz``)
or their predictions (``.json``, ``nnjax.predictions``), read from files and classifying a
split's images. No flags here, so tests and other runners can import it."""

import typing

from experiments.checks import UsageError


class Voter(typing.NamedTuple):
    """One network that votes: ``label`` names it in the output; either ``net`` (its layers
    and params, to classify the images) or ``record`` and ``index`` (its row of a
    predictions record) give its classes; ``name`` is what a predictions file calls it."""

    label: str
    name: str
    net: tuple = None
    record: object = None
    index: int = 0


def _label(path, i: int, count: int) -> str:
    """How the output names network ``i`` of the ``count`` in the file ``path``."""
    return f"{path}" + (f"[{i}]" if count > 1 else "")


def load(paths):
    """``(dataset name, [Voter, ...])`` for the files ``paths``, in order: ``.json``
    predictions (``nnjax.predictions``) or ``.npz`` networks (``experiments.conv --save``).
    UsageError naming the file when one cannot be read or they are of different datasets."""
    from nnjax import checkpoint, predictions, saving

    voters, datasets = [], {}
    for path in paths:
        if str(path).endswith(predictions.SUFFIX):
            try:
                record = predictions.load(path)
            except predictions.PredictionsError as e:
                raise UsageError(f"{path}: {e}") from None
            datasets.setdefault(record.dataset, path)
            voters += [
                Voter(_label(path, i, len(record.names)), name, record=record, index=i)
                for i, name in enumerate(record.names)
            ]
            continue
        try:
            net, saved, settings = saving.load_networks(path)
        except checkpoint.CheckpointError as e:
            raise UsageError(str(e)) from None
        if "dataset" not in settings:
            raise UsageError(
                f"{path}: not networks saved by experiments.conv --save (its "
                "settings name no dataset)"
            )
        datasets.setdefault(settings["dataset"], path)
        for i, params in enumerate(saved):
            label = _label(path, i, len(saved))
            voters.append(Voter(label, label, net=(net, params)))
    if len(datasets) > 1:
        raise UsageError(
            "the files were trained on different datasets: "
            + ", ".join(f"{name} ({path})" for name, path in datasets.items())
        )
    return next(iter(datasets)), voters


def classify(voters, dataset, dataset_name: str, split_name: str, report=None):
    """Every voter's class for each image of the split: int array (N_voters, n).
    ``report(voter, classes)``, when given, is called as each voter's classes are known,
    so a long vote shows its progress."""
    import numpy as np

    from nnjax import layers, network3, predictions

    split = getattr(dataset, split_name)
    out = []
    for voter in voters:
        if voter.record is not None:
            try:
                predictions.check(
                    voter.record, dataset_name, split_name, split.y, dataset.num_classes
                )
            except predictions.PredictionsError as e:
                raise UsageError(f"{voter.label}: {e}") from None
            out.append(np.asarray(voter.record.predictions[voter.index]))
        else:
            net, params = voter.net
            try:
                outputs = network3.model(net, dataset.image_shape).classes(params)
                classes = network3.predict_all(
                    params, split.x, layers=net, input_shape=dataset.image_shape
                )
            except (TypeError, ValueError, layers.LayerError) as e:
                raise UsageError(
                    f"{voter.label}: does not fit {dataset_name}'s "
                    f"{dataset.image_shape} images ({e})"
                ) from None
            if outputs != dataset.num_classes:
                raise UsageError(
                    f"{voter.label}: has {outputs} outputs, but {dataset_name} has "
                    f"{dataset.num_classes} classes"
                )
            out.append(np.asarray(classes))
        if report is not None:
            report(voter, out[-1])
    return np.stack(out)
