"""What ``experiments.mnist`` prints and writes: the run's header, the book's ``Epoch k:
correct / total`` lines, and what it does after training (the summary, ``--save``,
``--misclassified_png``)."""

from absl import flags

from experiments.kernels import describe_kernel

FLAGS = flags.FLAGS


def header(sizes, activation, cost, mesh, dataset: str, n_train: int, n_eval: int) -> str:
    """The run's first line: the network, its training and where it runs."""
    import jax

    regularised = (
        (f", L2 λ={FLAGS.l2:g}" if FLAGS.l2 else "")
        + (f", L1 λ={FLAGS.l1:g}" if FLAGS.l1 else "")
        + (f", momentum {FLAGS.momentum:g}" if FLAGS.momentum else "")
    )
    where = (
        jax.default_backend() + describe_kernel()
        if mesh is None
        else (
            f"{mesh.size} {jax.default_backend()} devices"
            + (f" of {jax.process_count()} processes" if jax.process_count() > 1 else "")
        )
    )
    return (
        f"nnjax: {sizes} {activation.name} network, {cost.name} cost, {FLAGS.init} "
        f"initialisation{regularised}, {FLAGS.optimizer} η={FLAGS.eta:g}, "
        f"mini-batch {FLAGS.mini_batch_size}, {FLAGS.epochs} epoch{'s' * (FLAGS.epochs != 1)} on "
        f"{where}; {dataset}: {n_train} training, {n_eval} {FLAGS.eval_split} images"
    )


def norms_line(before: str, norms) -> str:
    """``before`` then chapter 5's ‖∂C/∂b‖ of each hidden layer, ``norms``."""
    return f"{before}‖∂C/∂b‖ of the hidden layers: " + " ".join(f"{v:.4g}" for v in norms)


def epoch_lines(r, progress: str) -> str:
    """The book's ``Epoch k: correct / total`` for the ``EpochResult`` ``r``, with what
    --monitor and --gradient_norms add."""
    eta = f", η={r.eta:g}" if FLAGS.halve_eta_after else ""
    lines = [f"Epoch {r.epoch}: {r.correct} / {r.total}  ({r.seconds:.2f} s{eta}; {progress})"]
    if FLAGS.monitor:
        lines.append(
            f"  cost on training data: {r.training_cost:.4f}; accuracy on training data: "
            f"{r.training_correct} / {r.training_total}; cost on evaluation data: "
            f"{r.evaluation_cost:.4f}"
        )
    if r.gradient_norms is not None:
        lines.append(norms_line("  ", r.gradient_norms))
    return "\n".join(lines)


def finish(run, test, side, cost, activation, say, primary: bool) -> None:
    """After training: saves the network (--save), prints why it stopped and the summary,
    draws the test digits it gets wrong (--misclassified_png; ``side`` × ``side`` pixels)."""
    import jax

    from nnjax import network, saving

    if FLAGS.save and primary:
        saving.save(FLAGS.save, run.params, cost, activation)
        say(f"Saved the network to {FLAGS.save}.")
    if run.stopped:
        say(f"Stopped: {run.stopped}.")
    best, last = run.best, run.epochs[-1]
    say(
        f"Best: epoch {best.epoch}, {best.correct} / {best.total} ({100 * best.accuracy:.2f}%)."
        f" Final: {last.correct} / {last.total} ({100 * last.accuracy:.2f}%)."
        f" {len(run.epochs)} epoch{'s' * (len(run.epochs) != 1)}"
        f" in {run.train_seconds:.1f} s"
        f" (+{run.compile_seconds:.1f} s compile)."
    )
    if FLAGS.misclassified_png and primary:
        from experiments import figures

        predictions = jax.device_get(network.predict(run.params, test.x, activation))
        say(figures.draw_mistakes(test.x, test.y, predictions, FLAGS.misclassified_png, side=side))
