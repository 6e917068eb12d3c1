r"""The plurality vote of chapter 6 networks saved by separate runs of ``experiments.conv``.

    for s in 0 1 2 3 4; do python -m experiments.conv --preset=dropout --seed=$s --save=d$s.npz; done
    python -m experiments.vote d0.npz d1.npz d2.npz d3.npz d4.npz    # the book's 99.67% row

Five runs of ``--preset=dropout`` with seeds 0–4 train exactly the networks that one run of
``--preset=ensemble --seed=0`` trains, so they can run on five machines, or one after
another across sessions, and be voted on afterwards. Each file may hold several networks
(``--networks=K``); they vote in the order given, which decides ties (the earliest network's
class wins). Prints every network's test accuracy, then the vote's.
"""

from absl import app, flags

from experiments.cli import DATA_DIR_HELP, UsageError, check_writable, run_guarded

FLAGS = flags.FLAGS
flags.DEFINE_enum("split", "test", ["test", "validation"], "The images to classify.")
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)
flags.DEFINE_string("misclassified_png", None, "Draw the digits the vote gets wrong to this "
                    "PNG (at most 100).")


def load(paths):
    """``(dataset name, [(label, layers, params), ...])`` for every network in the ``.npz``
    files ``paths`` (``experiments.conv --save``), in order; UsageError naming the file when
    one cannot be rebuilt or they were trained on different datasets."""
    import jax
    from nnjax import checkpoint, layers
    networks, datasets = [], {}
    for path in paths:
        saved, settings = checkpoint.load_layers(path)
        try:
            num_classes = saved[0][-1]["w"].shape[-1]     # the softmax layer's outputs
            net = tuple(layers.parse(settings["layers"], settings["activation"],
                                     settings["dropout"], settings["dropout_kind"],
                                     settings["init"], num_classes))
            datasets.setdefault(settings["dataset"], path)
        except (KeyError, IndexError, layers.LayerError) as e:
            raise UsageError(f"{path}: not networks saved by experiments.conv --save ({e})") \
                from None
        for i, params in enumerate(saved):
            label = f"{path}" + (f"[{i}]" if len(saved) > 1 else "")
            networks.append((label, net, jax.tree.map(jax.numpy.asarray, params)))
    if len(datasets) > 1:
        raise UsageError("the files were trained on different datasets: " + ", ".join(
            f"{name} ({path})" for name, path in datasets.items()))
    return next(iter(datasets)), networks


def run(paths) -> None:
    if not paths:
        raise UsageError("name the .npz files of the networks to vote "
                         "(python -m experiments.vote a.npz b.npz ...)")
    if FLAGS.misclassified_png:
        check_writable("misclassified_png", FLAGS.misclassified_png)
    dataset_name, networks = load(paths)
    import numpy as np
    from nnjax import data, ensemble, layers, network3
    dataset = data.load(dataset_name, FLAGS.data_dir, progress=print)
    split = getattr(dataset, FLAGS.split)
    shape = dataset.image_shape
    predictions = []
    for label, net, params in networks:
        try:
            predictions.append(np.asarray(network3.predict_all(
                params, split.x, layers=net, input_shape=shape)))
        except (TypeError, ValueError, layers.LayerError) as e:
            raise UsageError(f"{label}: does not fit {dataset_name}'s {shape} images "
                             f"({e})") from None
        print(f"{label}: {FLAGS.split} accuracy {100 * np.mean(predictions[-1] == split.y):.2f}%")
    accuracies = [np.mean(p == split.y) for p in predictions]
    votes = np.asarray(ensemble.plurality_vote(np.stack(predictions), dataset.num_classes))
    spread = f" ± {100 * np.std(accuracies, ddof=1):.2f}%" if len(networks) > 1 else ""
    print(f"{len(networks)} network{'s' * (len(networks) > 1)}, {FLAGS.split} accuracy "
          f"{100 * np.mean(accuracies):.2f}%"
          f"{spread} each. Their plurality vote: "
          f"{100 * ensemble.vote_accuracy(votes, split.y):.2f}% "
          f"({len(ensemble.misclassified(votes, split.y))} {FLAGS.split} digits wrong).")
    if FLAGS.misclassified_png:
        from experiments import conv_figures
        print(conv_figures.draw_mistakes(split.x, split.y, votes, FLAGS.misclassified_png,
                                         side=shape[0]))


def main(argv):
    run_guarded(lambda: run(argv[1:]), argv[:1])


if __name__ == "__main__":
    app.run(main)
