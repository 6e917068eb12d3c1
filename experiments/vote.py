r"""The plurality vote of chapter 6 networks saved by separate runs of ``experiments.conv``.

    for s in 0 1 2 3 4; do
        python -m experiments.conv --preset=dropout --seed=$s --save=d$s.npz
    done
    python -m experiments.vote d0.npz d1.npz d2.npz d3.npz d4.npz    # the book's 99.67 percent row
    python -m experiments.vote d0.npz --predictions_out=d0.predictions.json   # 20 KB, not 7 MB
    python -m experiments.vote d0.predictions.json d1.npz ...        # the same vote

Five runs of ``--preset=dropout`` with seeds 0–4 train the networks that one run of
``--preset=ensemble --seed=0`` trains (the same keys; bit for bit on a CPU, up to float
rounding where it vmaps them), so they can run on five machines, or one after another across
sessions, and be voted on afterwards. Each file may hold several networks
(``--networks=K``); they vote in the order given, which decides ties (the earliest network's
class wins). A network can also vote through its predictions: a ``.json`` file that
``--predictions_out`` (here, or in ``experiments.conv``) wrote, small enough to keep in a
repository. Prints every network's accuracy, then the vote's.
"""

from absl import app, flags

from experiments.checks import (
    UsageError,
    check_not_data,
    check_not_inputs,
    check_png,
    check_predictions_out,
    check_writable,
)
from experiments.cli import DATA_DIR_HELP, parse_flags, run_guarded
from experiments.voters import classify, load
from experiments.writing import write_summary

FLAGS = flags.FLAGS
flags.DEFINE_enum("split", "test", ["test", "validation"], "The images to classify.")
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)
flags.DEFINE_string(
    "misclassified_png", None, "Draw the digits the vote gets wrong to this PNG (at most 100)."
)
flags.DEFINE_string(
    "summary_out",
    None,
    "Write the vote's record to this .json file: its accuracy, the digits it gets wrong, "
    "each network's accuracy (experiments.chapter6 reads it).",
)
flags.DEFINE_string(
    "predictions_out",
    None,
    "Write every network's classes for --split's "
    "images to this .json file (about 20 KB a network), which "
    "experiments.vote reads in place of the networks.",
)


def run(paths) -> None:
    if not paths:
        raise UsageError(
            "name the .npz (or .json predictions) files of the networks to "
            "vote (python -m experiments.vote a.npz b.npz ...)"
        )
    check_not_inputs(paths, "one of the files to vote")
    if FLAGS.misclassified_png:
        check_png("misclassified_png", FLAGS.misclassified_png)
    if FLAGS.summary_out:
        check_writable("summary_out", FLAGS.summary_out)
    if FLAGS.predictions_out:
        check_predictions_out("predictions_out", FLAGS.predictions_out)
    dataset_name, voters = load(paths)
    check_not_data(dataset_name)  # known only now, from the networks' files
    import numpy as np

    from nnjax import data, ensemble, predictions

    try:
        dataset = data.load(dataset_name, FLAGS.data_dir, progress=print)
    except data.DataDirError:
        raise  # --data_dir's fault, which run_guarded names
    except data.DataError as e:  # the dataset the files name: name them
        files = f"{paths[0]} names" if len(paths) == 1 else f"{paths[0]} and the others name"
        raise UsageError(f"{files} the dataset {dataset_name}, which does not load: {e}") from None
    split = getattr(dataset, FLAGS.split)
    shape = dataset.image_shape

    accuracies = []

    def report(voter, p):
        accuracies.append(np.mean(p == split.y))
        print(f"{voter.label}: {FLAGS.split} accuracy {100 * accuracies[-1]:.2f}%", flush=True)

    classes = classify(voters, dataset, dataset_name, FLAGS.split, report=report)
    n = len(voters)
    if FLAGS.predictions_out:
        predictions.save(
            FLAGS.predictions_out,
            classes,
            split.y,
            dataset_name,
            FLAGS.split,
            names=[voter.name for voter in voters],
        )
        print(
            f"Wrote the {FLAGS.split} predictions of the {n} network{'s' * (n > 1)} to "
            f"{FLAGS.predictions_out}."
        )
    votes = np.asarray(ensemble.plurality_vote(classes, dataset.num_classes))
    wrong = f"({len(ensemble.misclassified(votes, split.y))} {FLAGS.split} digits wrong)"
    if n == 1:  # a vote of one is that network's classes
        print(f"1 network, {FLAGS.split} accuracy {100 * accuracies[0]:.2f}% {wrong}.")
    else:
        print(
            f"{n} networks, {FLAGS.split} accuracy {100 * np.mean(accuracies):.2f} ± "
            f"{100 * np.std(accuracies, ddof=1):.2f}% each. Their plurality vote: "
            f"{100 * ensemble.vote_accuracy(votes, split.y):.2f}% {wrong}."
        )
    if FLAGS.summary_out:
        write_summary(
            FLAGS.summary_out,
            {
                "split": FLAGS.split,
                "accuracy": 100 * ensemble.vote_accuracy(votes, split.y),
                "wrong": len(ensemble.misclassified(votes, split.y)),
                "networks": [100 * a for a in accuracies],
            },
        )
    if FLAGS.misclassified_png:
        from experiments import figures

        print(
            figures.draw_mistakes(split.x, split.y, votes, FLAGS.misclassified_png, side=shape[0])
        )


def main(argv):
    run_guarded(lambda: run(argv[1:]), argv[:1])


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
