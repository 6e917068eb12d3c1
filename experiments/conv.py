r"""Chapter 6: the book's convolutional networks (``network3.py``) on MNIST.

    python -m experiments.conv --preset=conv2          # 2 conv-pool layers + FC-100: ~99.06%
    python -m experiments.conv --preset=dropout        # the book's 99.60% network
    python -m experiments.conv --preset=ensemble       # 5 of those, plurality vote: 99.67%
    python -m experiments.conv --layers=conv:20,fc:100,softmax --activation=relu --eta=0.03
    python -m experiments.conv --list                  # the presets
    python -m experiments.conv --preset=conv2 --devices=all   # data parallel (also multi-host)

Prints, like network3, every epoch's validation accuracy and, when it is at least the best
so far, the test accuracy; then the chapter 6 number (the test accuracy at the best
validation epoch) and the final test accuracy. A preset sets the book's flags for its row;
flags given on the command line override it.
"""

from absl import app, flags

from experiments import checkpoints, conv_flags, conv_report, presets
from experiments.checks import UsageError, check_fits, refuse_others, square_side
from experiments.cli import matmul_precision, optimizer_from_flags, parse_flags, run_guarded
from experiments.conv_flags import SETTINGS, check_flags, parse_layers
from experiments.devices import device_mesh, start_processes
from experiments.training import check_mini_batch, first_images
from experiments.writing import JsonLines
from nnjax.progress import Progress

# --helpshort lists the flags defined there as this runner's own
flags.adopt_module_key_flags(conv_flags)
FLAGS = flags.FLAGS


def run() -> None:
    net_layers = check_flags()
    import jax

    say = start_processes()  # print on process 0, which alone writes the files
    primary = jax.process_index() == 0

    from nnjax import data, expand, network3, optimizers
    from nnjax import fit as fit_lib
    from nnjax.history import History

    tx = optimizer_from_flags()
    mesh = device_mesh(FLAGS.devices, FLAGS.mini_batch_size)
    dataset = data.load(FLAGS.dataset, FLAGS.data_dir, progress=say)
    side = square_side(dataset, "experiments.conv")
    shape = (side, side, 1)
    if dataset.num_classes != 10:
        net_layers = parse_layers(dataset.num_classes)
    train_x, train_y = first_images(dataset.train, FLAGS.train_size, dataset.name)
    if FLAGS.expand == "book":
        train_x, train_y = expand.expand(train_x, train_y)
    check_mini_batch(len(train_y))
    k = FLAGS.networks
    params, seeds = init_networks(net_layers, shape, dataset, train_x.nbytes, k)
    n_train = len(train_y)
    networks = [
        History(p, optimizers.init(tx, p, FLAGS.eta, FLAGS.l2 / n_train), best_rule="last")
        for p in params
    ]
    strategy = fit_lib.pick_strategy(FLAGS.strategy, k)
    precision = matmul_precision(FLAGS.matmul_precision, jax.default_backend())
    say(
        conv_report.header(net_layers, strategy, precision, mesh, dataset.name, n_train), flush=True
    )

    device = jax.local_devices()[0].device_kind  # e.g. "cpu", "NVIDIA H200"
    after_epoch, devices = None, []
    if FLAGS.checkpoint_dir:
        settings = {name: FLAGS[name].value for name in SETTINGS if name != "epochs"}
        after_epoch, devices = checkpoints.resume(networks, settings, device, say, primary)
    # the metrics file describes the whole run, resumed or not, each epoch by its device
    metrics = JsonLines(
        FLAGS.metrics_out if primary else None,
        (
            {"network": i, **n.epochs[e].as_dict(), "device": devices[e]}
            for e in range(len(networks[0].epochs))
            for i, n in enumerate(networks)
        ),
    )
    clock = Progress(FLAGS.epochs)

    def report(i, r) -> None:
        say(
            conv_report.epoch_lines(
                i, r, clock.tick(r.epoch, networks[0].compile_seconds) if i == 0 else ""
            ),
            flush=True,
        )
        metrics.write({"network": i, **r.as_dict(), "device": device})

    with metrics:
        fit_lib.fit(
            network3.model(tuple(net_layers), shape, FLAGS.expand == "random"),
            tx,
            networks,
            (train_x, train_y),
            eval_data=(dataset.validation.x, dataset.validation.y),
            test_data=(dataset.test.x, dataset.test.y),
            epochs=FLAGS.epochs,
            mini_batch_size=FLAGS.mini_batch_size,
            keys=[shuffle_key for _, shuffle_key in seeds],
            shuffle=FLAGS.shuffle,
            drop_last=True,
            strategy=strategy,
            mesh=mesh,
            unroll=FLAGS.unroll,
            matmul_precision=precision,
            keep_best=True,
            on_epoch=report,
            after_epoch=after_epoch,
        )
    conv_report.finish(networks, net_layers, shape, dataset, say, primary)


def init_networks(net_layers, shape, dataset, train_bytes: int, k: int):
    """The initial parameters of the ``k`` networks of seeds --seed, --seed + 1, …, and their
    ``(init_key, shuffle_key)``s; UsageError naming --layers if they cannot be built, do not
    fit in memory (checked first) or do not end in as many outputs as ``dataset`` has
    classes."""
    import jax

    from nnjax import layers, network3
    from nnjax.seeds import run_keys

    try:
        shapes = jax.eval_shape(lambda: network3.init(jax.random.key(0), net_layers, shape))
        data_bytes = train_bytes + dataset.validation.x.nbytes + dataset.test.x.nbytes
        check_fits("layers", FLAGS.layers, shapes, 3, data_bytes, networks=k)
        seeds = [run_keys(FLAGS.seed + i) for i in range(k)]
        params = [network3.init(init_key, net_layers, shape) for init_key, _ in seeds]
    except layers.LayerError as e:
        raise UsageError(f"--layers={FLAGS.layers}: {e}") from None
    n_out = network3.model(net_layers, shape).classes(params[0])
    if n_out != dataset.num_classes:
        raise UsageError(
            f"--layers={FLAGS.layers}: the softmax layer has {n_out} outputs, "
            f"but {dataset.name} has {dataset.num_classes} classes (write "
            f"softmax for as many outputs as classes)"
        )
    return params, seeds


def list_presets():
    refuse_others("list")
    print(presets.describe())


def main(argv):
    run_guarded(list_presets if FLAGS.list else run, argv)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
