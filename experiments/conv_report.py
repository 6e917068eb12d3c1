"""What ``experiments.conv`` prints and writes: the run's header, network3's epoch lines, and
after training each network's result, the ensemble's vote and the files the flags ask for
(``--predictions_out``, ``--save``, ``--filters_png``, ``--misclassified_png``,
``--summary_out``)."""

from absl import flags

from experiments.conv_flags import SETTINGS
from experiments.writing import write_summary

FLAGS = flags.FLAGS


def header(net_layers, strategy: str, precision: str, mesh, dataset: str, n_train: int) -> str:
    """The run's first line: the layers, their training, where it runs and on what."""
    import jax

    from nnjax import layers

    k = FLAGS.networks
    gpu = jax.default_backend() == "gpu"
    return (
        f"nnjax: {layers.describe(net_layers)}; {FLAGS.optimizer} η={FLAGS.eta:g}, "
        f"λ={FLAGS.l2:g}, mini-batch {FLAGS.mini_batch_size}, "
        f"{FLAGS.epochs} epoch{'s' * (FLAGS.epochs != 1)}, "
        f"{k} network{'s' * (k > 1)} ({strategy}) on {jax.default_backend()}"
        f"{' (TF32 products where the GPU has them)' * (precision == 'default' and gpu)}"
        f"{f' ({mesh.size} devices, data parallel)' if mesh else ''}; "
        f"{dataset}: {n_train} training images"
        f"{' (expanded)' if FLAGS.expand == 'book' else ''}"
        f"{', random shifts' if FLAGS.expand == 'random' else ''}"
    )


def epoch_lines(i: int, r, progress: str) -> str:
    """Network ``i``'s epoch ``r`` as network3 prints it: the validation accuracy and, when
    it is the best so far, the test accuracy; the first network's line also has the
    epoch's time and ``progress`` (``Progress.tick``'s, e.g. "3 of 60 epochs done, about 5
    min left")."""
    k = FLAGS.networks
    # r.seconds is each network's share of the epoch; the time shown is the whole epoch's
    took = f"  ({r.seconds * k:.1f} s{f' for the {k} networks' * (k > 1)}" if i == 0 else ""
    took += f"; {progress})" if i == 0 else ""
    who = f"Network {i}, e" if k > 1 else "E"
    line = f"{who}poch {r.epoch}: validation accuracy {100 * r.accuracy:.2f}%{took}"
    if r.test_correct is not None:
        line += f"\n  the corresponding test accuracy is {100 * r.test_correct / r.test_total:.2f}%"
    return line


def finish(networks, net_layers, shape, dataset, say, primary: bool) -> None:
    """After training: prints each network's chapter 6 number and final test accuracy and
    the ensemble's vote, then writes the files the flags ask for (on process 0 only)."""
    import numpy as np

    from nnjax import ensemble, network3, saving

    k, test_x, test_y = len(networks), dataset.test.x, dataset.test.y

    def predict(p):
        return np.asarray(
            network3.predict_all(p, test_x, layers=tuple(net_layers), input_shape=shape)
        )

    n_test = len(test_y)
    seconds = sum(r.seconds for n in networks for r in n.epochs)
    summary = {"networks": [], "vote": None, "train_seconds": seconds}
    for i, net in enumerate(networks):
        best = net.best
        final = int(np.sum(predict(net.params) == test_y))
        summary["networks"].append(
            {
                "seed": FLAGS.seed + i,
                "best_epoch": best.epoch,
                "validation_accuracy": 100 * best.accuracy,
                "test_accuracy": 100 * best.test_correct / best.test_total,
                "final_test_accuracy": 100 * final / n_test,
            }
        )
        say(
            f"{f'Network {i}: b' if k > 1 else 'B'}est validation accuracy "
            f"{100 * best.accuracy:.2f}% at epoch {best.epoch}; the corresponding test "
            f"accuracy is {100 * best.test_correct / best.test_total:.2f}%. Final test "
            f"accuracy {100 * final / n_test:.2f}%."
        )
    votes = classes = np.stack([predict(n.best_params) for n in networks])
    if k > 1:
        votes = np.asarray(ensemble.plurality_vote(classes, dataset.num_classes))
        tests = [n.best.test_correct / n.best.test_total for n in networks]
        accuracy, wrong = (
            ensemble.vote_accuracy(votes, test_y),
            ensemble.misclassified(votes, test_y),
        )
        summary["vote"] = {"test_accuracy": 100 * accuracy, "wrong": len(wrong)}
        say(
            f"Test accuracy at the best validation epoch: mean {100 * np.mean(tests):.2f}% "
            f"± {100 * np.std(tests, ddof=1):.2f}% over {k} networks. Their plurality vote: "
            f"{100 * accuracy:.2f}% ({len(wrong)} test digits wrong)."
        )
    compile_seconds = networks[0].compile_seconds
    if FLAGS.predictions_out and primary:
        from nnjax import predictions

        names = [f"{FLAGS.preset or 'conv'} seed {FLAGS.seed + i}" for i in range(k)]
        predictions.save(FLAGS.predictions_out, classes, test_y, FLAGS.dataset, "test", names)
        say(f"Wrote the test predictions to {FLAGS.predictions_out}.")
    say(f"Trained in {seconds:.1f} s (+{compile_seconds:.1f} s compile).")
    if not primary:  # process 0 alone writes the files
        return
    if FLAGS.save:
        saving.save_layers(
            FLAGS.save,
            [n.best_params for n in networks],
            {name: FLAGS[name].value for name in SETTINGS},
        )
        say(f"Saved the networks (at their best validation epochs) to {FLAGS.save}.")
    if FLAGS.filters_png or FLAGS.misclassified_png:
        from experiments import figures

        if FLAGS.filters_png:
            w = np.asarray(networks[0].best_params[0]["w"])  # (kh, kw, C, F)
            figures.draw_filters(
                w[:, :, 0, :].transpose(2, 0, 1),
                FLAGS.filters_png,
                title="first conv-pool layer's filters",
            )
            say(f"Drew the filters to {FLAGS.filters_png}.")
        if FLAGS.misclassified_png:
            side = shape[0]
            say(
                figures.draw_mistakes(
                    test_x, test_y, votes.reshape(-1), FLAGS.misclassified_png, side=side
                )
            )
    if FLAGS.summary_out:  # the last file a finished run writes
        write_summary(FLAGS.summary_out, {**summary, "compile_seconds": compile_seconds})
        say(f"Wrote the run's record to {FLAGS.summary_out}.")
