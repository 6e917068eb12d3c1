"""Flags refused by every runner before any work, leaving the files it would have written as
they were: a float flag of inf or nan (absl's float flags accept them, and a network trained
with them is NaN at chance), and two output flags that name one file. And a network that
diverges in training: one line naming the epoch, a non-zero exit, no output written. And the
bad input of every class, runner by runner (BAD_INPUT): absurd numbers, an output that is an
input or a device, a write that fails, corrupt input files, sizes that cannot fit,
expressions and text that a library would fail on."""

import json
import os
import pathlib
import stat
import subprocess
import sys

import pytest

from tests.helpers import assert_failed_with_one_error, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(runner, *flags, max_file_bytes=None):
    return run_module(runner, *flags, timeout=120, max_file_bytes=max_file_bytes)


CASES = [
    ("experiments.mnist", "eta", "inf"),
    ("experiments.mnist", "l2", "inf"),
    ("experiments.mnist", "l1", "-inf"),
    ("experiments.mnist", "momentum", "nan"),
    ("experiments.conv", "eta", "inf"),
    ("experiments.conv", "l2", "inf"),
    ("experiments.conv", "dropout", "nan"),
    ("experiments.conv", "momentum", "-inf"),
]


@pytest.mark.parametrize("runner, flag, value", CASES)
def test_a_non_finite_float_flag_is_refused_and_writes_nothing(tmp_path, runner, flag, value):
    saved = tmp_path / ("net.json" if runner == "experiments.mnist" else "net.npz")
    saved.write_bytes(b"an earlier run's network")
    result = run(runner, f"--{flag}={value}", f"--save={saved}", "--epochs=1")
    assert_failed_with_one_error(result, f"--{flag} must be a finite number, got {value}")
    assert "Epoch" not in result.stdout  # refused before any training
    assert saved.read_bytes() == b"an earlier run's network"


COLLISIONS = [
    ("experiments.mnist", "net.json", ["--save={f}", "--metrics_out={f}"], "--save"),
    ("experiments.mnist", "checkpoint.npz", ["--checkpoint_dir={d}", "--save={f}"], "--save"),
    ("experiments.mnist", "w.png", ["--save={f}", "--misclassified_png={f}"], "--save"),
    ("experiments.conv", "out.json", ["--metrics_out={f}", "--predictions_out={f}"], "--metrics"),
    ("experiments.conv", "f.png", ["--filters_png={f}", "--misclassified_png={f}"], "--misclass"),
    ("experiments.conv", "net.npz", ["--save={f}", "--metrics_out={d}/./net.npz"], "--save"),
    ("experiments.sweep", "s.png", ["--jsonl={f}", "--png={f}"], "--jsonl"),
]


@pytest.mark.parametrize("runner, name, flags, first", COLLISIONS)
def test_two_outputs_naming_one_file_are_refused(tmp_path, runner, name, flags, first):
    path = tmp_path / name
    path.write_bytes(b"an earlier run's output")
    result = run(runner, *(f.format(f=path, d=tmp_path) for f in flags), "--epochs=1")
    assert_failed_with_one_error(result, f"name the same file {tmp_path}")
    assert first in result.stderr
    assert "Epoch" not in result.stdout
    assert path.read_bytes() == b"an earlier run's output"


DIVERGING = [
    ("experiments.mnist", ["net.json", "m.jsonl"], ["--l2=1e30", "--train_size=1000"]),
    (
        "experiments.conv",
        ["net.npz", "m.jsonl"],
        ["--eta=1e30", "--train_size=300", "--expand=none", "--layers=conv:4:5x5,fc:20,softmax"],
    ),
    ("experiments.sweep", [None, "s.jsonl"], ["--train_size=1000", "--seeds=0:2", "--l2=1e30"]),
]


@pytest.mark.parametrize("runner, names, flags", DIVERGING, ids=["mnist", "conv", "sweep"])
def test_a_diverged_network_stops_with_one_line_and_writes_nothing(tmp_path, runner, names, flags):
    save, lines = names
    flag = "jsonl" if runner == "experiments.sweep" else "metrics_out"
    outputs = [f"--{flag}={tmp_path / lines}"]
    if save:
        outputs += [f"--save={tmp_path / save}", f"--checkpoint_dir={tmp_path / 'run'}"]
    for name in filter(None, names):
        (tmp_path / name).write_bytes(b"an earlier run's output")
    result = run(runner, *flags, *outputs, "--epochs=2")
    assert_failed_with_one_error(result, "training diverged in epoch 0:")
    # a sweep's line names the first network's η; --eta is added where it is the network's
    suffix = "try a smaller η (or λ)\n" if runner == "experiments.sweep" else "(or λ) (--eta="
    assert suffix in result.stderr
    for name in filter(None, names):
        assert (tmp_path / name).read_bytes() == b"an earlier run's output"
    assert not (tmp_path / "run" / "checkpoint.npz").exists()  # the NaN network is not kept


LIBRARY_ERRORS = [
    (
        "experiments.chapter6",
        ["--table_only", "--dir={d}/missing"],
        "--dir={d}/missing: no such directory",
    ),
    (
        "experiments.baselines",
        ["--svm", "--svm_train_size=1"],
        "--svm_train_size=1: the first 1 training images are all of one class",
    ),
    (
        "experiments.baselines",
        ["--svm", "--svm_train_size=50001"],
        "--svm_train_size=50001 exceeds the 50000 training images",
    ),
    ("experiments.mnist", ["--hidden=30,,30"], "--hidden='30,,30' has an empty item"),
    ("experiments.sweep", ["--hidden=30,"], "--hidden='30,' has an empty item"),
    ("experiments.sweep", ["--eta=0.5,,"], "--eta"),
    ("experiments.slowdown", ["--softmax", "--z=1,,2"], "--z='1,,2' has an empty item"),
    ("experiments.slowdown", ["--starts=2:,1:1"], "--starts: '2:' is not w:b"),
    ("experiments.vanishing", ["--w=1,2,,4"], "--w='1,2,,4' has an empty item"),
    ("experiments.vanishing", ["--b=1,x,3,4"], "--b must be comma-separated numbers"),
    ("experiments.universality", ["--bumps=5,,10"], "--bumps='5,,10' has an empty item"),
    ("experiments.mnist", ["--dataset=bogus"], "--dataset=bogus: unknown dataset 'bogus'"),
    (
        "experiments.conv",
        ["--dataset=idx:{d}/missing", "--epochs=1"],
        "--dataset=idx:{d}/missing: {d}/missing is not a directory",
    ),
    (  # the trained comparison samples f where the check's grid does not (x < 0.0005)
        "experiments.universality",
        [
            "--f=0.5 + 0.1*sqrt(x - 0.00049)",
            "--compare_trained",
            "--epochs=1",
            "--bumps=5",
            "--seed=1",
        ],
        "--f: f must lie strictly between 0 and 1",
    ),
    ("benchmarks.backprop_speed", ["--sizes=784,,10"], "--sizes='784,,10' has an empty item"),
]


@pytest.mark.parametrize("runner, flags, message", LIBRARY_ERRORS)
def test_input_a_library_would_fail_on_is_refused_first(tmp_path, runner, flags, message):
    result = run(runner, *(f.format(d=tmp_path) for f in flags))
    assert_failed_with_one_error(result, message.format(d=tmp_path))
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize(
    "runner, flag",
    [("experiments.mnist", "metrics_out"), ("experiments.sweep", "jsonl")],
)
def test_a_full_disk_names_the_flag_and_the_file(runner, flag):
    result = run(runner, "--train_size=1000", "--epochs=1", f"--{flag}=/dev/full")
    assert_failed_with_one_error(result, f"--{flag}=/dev/full: No space left on device")


TOO_LARGE = [
    ("experiments.mnist", ["--hidden=100000000"], "--hidden=100000000: training needs at least"),
    (
        "experiments.conv",
        ["--layers=fc:100000000,softmax", "--epochs=1"],
        "--layers=fc:100000000,softmax: training needs at least",
    ),
    (  # refused before a key is made for each (which took minutes and gigabytes)
        "experiments.conv",
        ["--layers=conv:2:5x5,fc:10,softmax", "--networks=2147483647"],
        "(3 × 12.2 kB of parameters, gradients and updates for each of 2,147,483,647 networks",
    ),
    # one network that cannot fit (a sweep trains as many at once as fit)
    ("experiments.sweep", ["--hidden=100000000"], "--hidden=100000000: training needs at least"),
    ("experiments.sweep", ["--seeds=0:2000000000"], "more than 1,048,576 seeds"),
    ("experiments.sweep", ["--seeds=5:3000000000"], "seed 2999999999 is outside"),
]


@pytest.mark.parametrize("runner, flags, message", TOO_LARGE)
def test_what_cannot_fit_is_refused_with_what_it_needs(runner, flags, message):
    """Refused before anything is allocated (the OS killed --hidden=100000000; XLA gave a
    24-line out-of-memory traceback for fc:100000000), naming what it needs and what there
    is."""
    result = run(runner, *flags)
    assert_failed_with_one_error(result, message)
    if "needs" in message:
        assert "GB" in result.stderr and "memory is" in result.stderr


EARLIER = b"an earlier run's output"
FULL = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")


def epoch_line(k, **more):
    return json.dumps({"epoch": k, "accuracy": 0.5, **more}) + "\n"


def bad_input_files(d):
    """The files BAD_INPUT's cases name: an earlier output (old.png), data files (the book's
    MNIST and an IDX labels file, which no output may overwrite), a metrics file with
    gradient norms (m.jsonl, and the same named m.png), corrupt metrics files, pipes where
    a file would be replaced, and full.png, a link to /dev/full."""
    (d / "old.png").write_bytes(EARLIER)
    (d / "binary.flags").write_bytes(bytes(range(128, 256)))  # no text: a bad --flagfile
    for data_file in ("mnist.pkl.gz", "t10k-labels-idx1-ubyte"):  # what an output must not be
        (d / data_file).write_bytes(EARLIER)
    os.link(d / "mnist.pkl.gz", d / "hard_link.jsonl")  # the same file by another name
    good = epoch_line(0, gradient_norms=[0.1, 0.01]) + epoch_line(1, gradient_norms=[0.1, 0.02])
    (d / "m.jsonl").write_text(good)
    (d / "m.png").write_text(good)
    corrupt = {
        "epoch_text": '{"epoch": "a", "accuracy": 0.5}\n',
        "epoch_null": '{"epoch": null, "accuracy": 0.5}\n',
        "accuracy_text": '{"epoch": 0, "accuracy": "abc"}\n',
        "accuracy_list": '{"epoch": 0, "accuracy": [1, 2]}\n',
        "norms_zero": epoch_line(0, gradient_norms=[0.0, 0.1]),
        "norms_nan": epoch_line(0, gradient_norms=[float("nan"), 0.1]),
        "norms_layers": epoch_line(0, gradient_norms=[0.1]) + epoch_line(1, gradient_norms=[1, 2]),
        "two_networks": epoch_line(0, network=0) + epoch_line(0, network=1),
        "epoch_again": epoch_line(0) + epoch_line(1) + epoch_line(1),
    }
    for name, text in corrupt.items():
        (d / f"{name}.jsonl").write_text(text)
    for name in ("fifo.json", "fifo.npz"):
        os.mkfifo(d / name)
    if os.path.exists("/dev/full"):
        (d / "full.png").symlink_to("/dev/full")


PLOT = ["--y=gradient_norms", "--out={d}/old.png"]
TRAIN = ["--train_size=500", "--epochs=1"]  # mnist: 0.1 s of training
CONV = [*TRAIN, "--expand=none", "--layers=conv:4:5x5,fc:20,softmax"]
BAD_INPUT = [
    # (0) an epoch that cannot train this network, named before any work
    ("experiments.mnist", ["--block=4"], "--block is for --kernel=blocked"),
    ("experiments.mnist", ["--kernel=pallas"], "--kernel=pallas runs on a GPU, not on cpu"),
    (
        "experiments.sweep",
        ["--kernel=blocked", "--optimizer=adam"],
        "--kernel=blocked: the blocked epoch cannot train this network: it runs the book's "
        "plain SGD",
    ),
    # an optimizer and a momentum that do not go together
    (
        "experiments.mnist",
        ["--optimizer=adam", "--momentum=0.9"],
        "--optimizer=adam: the adam optimizer takes no momentum μ, got 0.9",
    ),
    ("experiments.conv", ["--optimizer=nesterov"], "the nesterov optimizer needs a momentum μ > 0"),
    # (1) absurd numbers; divergence (one line naming the epoch, suggesting a smaller η)
    ("experiments.slowdown", ["--y=2"], "--y must be in [0, 1], got 2.0"),
    (
        "experiments.slowdown",
        ["--starts=1e308:1e308", "--png={d}/old.png"],
        "--starts=1e+308:1e+308: the cross_entropy cost at the start is nan",
    ),
    (
        "experiments.slowdown",
        ["--x=1e308", "--png={d}/old.png"],
        "training diverged in epoch 1 (cross_entropy cost, start 0.6:0.9): w, b or the cost "
        "became inf or NaN; try a smaller η (--eta=0.15)",
    ),
    (
        "experiments.vanishing",
        ["--w=1e308,1,1,1"],
        "--w: z_1 = 1e+308, where σ′(z) rounds to 0 in float64",
    ),
    ("experiments.vanishing", ["--x=1000"], "--x: z_1 = 1879, where σ′(z) rounds to 0"),
    (
        "experiments.vanishing",
        ["--w=40,1,1,1", "--b=0,0,0,0"],
        "--w/--b: z_1 = 40, where σ′(z) rounds to 0 in float64",
    ),
    (
        "experiments.plots",
        ["--run=nan={d}/m.jsonl", "--against_label", "--out={d}/old.png"],
        "--against_label needs labels that are positive numbers",
    ),
    # (2) an output that is an input, or a device that would be replaced
    (
        "experiments.plots",
        ["--run=a={d}/m.png", "--out={d}/m.png"],
        "--out={d}/m.png is also the input file of --run ({d}/m.png)",
    ),
    ("experiments.mnist", ["--save={d}/fifo.json"], "--save={d}/fifo.json: {d}/fifo.json is not a"),
    ("experiments.conv", ["--save={d}/fifo.npz"], "--save={d}/fifo.npz: {d}/fifo.npz is not a"),
    (
        "experiments.vote",
        ["--summary_out={d}/fifo.json", "{d}/m.jsonl"],
        "--summary_out={d}/fifo.json: {d}/fifo.json is not a regular file",
    ),
    # (3) a write that fails names the flag and the file
    pytest.param(
        "experiments.slowdown",
        ["--epochs=5", "--png={d}/full.png"],
        "--png={d}/full.png: No space left on device",
        marks=FULL,
    ),
    pytest.param(
        "experiments.universality",
        ["--bumps=5", "--png={d}/full.png"],
        "--png={d}/full.png: No space left on device",
        marks=FULL,
    ),
    pytest.param(
        "experiments.digits",
        ["--count=2", "--png={d}/full.png"],
        "--png={d}/full.png: No space left on device",
        marks=FULL,
    ),
    pytest.param(
        "experiments.mnist",
        [*TRAIN, "--misclassified_png={d}/full.png"],
        "--misclassified_png={d}/full.png: No space left on device",
        marks=FULL,
    ),
    pytest.param(
        "experiments.conv",
        [*CONV, "--filters_png={d}/full.png"],
        "--filters_png={d}/full.png: No space left on device",
        marks=FULL,
    ),
    pytest.param(
        "experiments.plots",
        ["--run=a={d}/m.jsonl", "--y=gradient_norms", "--out={d}/full.png"],
        "--out={d}/full.png: No space left on device",
        marks=FULL,
    ),
    ("experiments.digits", ["--png={d}/d.jpg"], "--png={d}/d.jpg must name a .png file"),
    (
        "experiments.mnist",
        ["--misclassified_png={d}/d.jpg"],
        "--misclassified_png={d}/d.jpg must name a .png file",
    ),
    # (4) corrupt input files: one line naming the file
    (
        "experiments.plots",
        ["--run=a={d}/two_networks.jsonl", *PLOT],
        "{d}/two_networks.jsonl holds the epochs of 2 networks",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/epoch_again.jsonl", *PLOT],
        "{d}/epoch_again.jsonl: epoch 1 comes after epoch 1",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/epoch_text.jsonl", *PLOT],
        """{d}/epoch_text.jsonl is not a --metrics_out file: line 1's "epoch" is 'a'""",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/epoch_null.jsonl", *PLOT],
        """{d}/epoch_null.jsonl is not a --metrics_out file: line 1's "epoch" is None""",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/accuracy_text.jsonl", "--out={d}/old.png"],
        "{d}/accuracy_text.jsonl: line 1's accuracy is 'abc', not a number",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/accuracy_list.jsonl", "--out={d}/old.png"],
        "{d}/accuracy_list.jsonl: line 1's accuracy is [1, 2], not a number",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/norms_zero.jsonl", *PLOT],
        "{d}/norms_zero.jsonl: line 1's gradient_norms is [0.0, 0.1]; a log axis draws only",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/norms_nan.jsonl", *PLOT],
        "{d}/norms_nan.jsonl: line 1's gradient_norms is [nan, 0.1]",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/norms_layers.jsonl", *PLOT],
        "{d}/norms_layers.jsonl: its lines record different numbers of hidden layers",
    ),
    ("experiments.plots", ["--run=a=/dev/zero", *PLOT], "cannot read /dev/zero: not a regular"),
    # (5) sizes that cannot fit: refused with a bound or an estimate, before allocating
    (
        "experiments.slowdown",
        ["--epochs=1000000000000"],
        "--epochs=1000000000000 is more than 1,000,000: the run keeps w, b, a and C of every "
        "epoch, 32.0 TB here",
    ),
    (
        "experiments.universality",
        ["--bumps=100000000"],
        "--bumps=100000000: at most 1,000 (the error is measured on 1,000 points); "
        "100,000,000 would need 1.6 TB",
    ),
    (
        "experiments.universality",
        ["--two_d", "--towers=100000"],
        "--towers=100000: at most 100 (the error is measured on a 200 × 200 grid)",
    ),
    (
        "experiments.universality",
        ["--compare_trained", "--epochs=1000000000000"],
        "--epochs=1000000000000 is more than 100,000",
    ),
    ("experiments.vanishing", ["--neurons=100000000"], "--neurons must be in [2, 200]"),
    (
        "benchmarks.backprop_speed",
        ["--sizes=784,100000000,10"],
        "--sizes=784,100000000,10: the gradients need at least 2.3 TB (2.2 TB for the network",
    ),
    (
        "benchmarks.backprop_speed",
        ["--check", "--mini_batch_sizes=1000000000"],
        "--mini_batch_sizes=1000000000: the gradients need at least 19.8 TB",
    ),
    (
        "benchmarks.backprop_speed",
        ["--mini_batch_sizes=100000"],
        "--mini_batch_sizes=100000: at most 10,000 when timing",
    ),
    (
        "benchmarks.backprop_speed",
        ["--repeats=1000000000"],
        "--repeats=1000000000 × --round_seconds=0.1: timing would take at least 800,000,000 s",
    ),
    # (6) what a library would fail on, or hang on, is refused first; lists alike everywhere
    (
        "experiments.universality",
        ["--f=10**10**10", "--png={d}/old.png"],
        "--f must lie strictly between 0 and 1 (the output neuron's σ undoes σ⁻¹(f)); it "
        "takes the value inf",
    ),
    ("experiments.universality", ["--two_d", "--f2=9**9**9"], "it takes the value inf"),
    ("experiments.universality", ["--f='a'*10**10"], "'a' is not a number"),
    ("experiments.universality", ["--f=(x,)*10**10"], "no Tuple here, only arithmetic"),
    ("experiments.universality", ["--f=[x for x in x]"], "no ListComp here, only arithmetic"),
    ("experiments.universality", ["--f=lambda: 0.5"], "no Lambda here, only arithmetic"),
    ("experiments.universality", ["--f=sin(x, out=x)"], "a function takes arrays, without"),
    (
        "experiments.slowdown",
        ["--costs=quadratic,,cross_entropy"],
        "--costs='quadratic,,cross_entropy' has an empty item",
    ),
    (
        "experiments.plots",
        ["--run=a={d}/m.jsonl", "--y=gradient_norms,,accuracy", "--out={d}/old.png"],
        "--y='gradient_norms,,accuracy' has an empty item",
    ),
    ("experiments.conv", ["--save={d}/net.json"], "--save={d}/net.json: a networks file's name"),
    ("experiments.mnist", ["--eta=1e300"], "--eta=1e+300 is past float32's range"),
    ("experiments.conv", ["--eta=1e39"], "--eta=1e+39 is past float32's range"),
    ("experiments.sweep", ["--l2=1,1e100"], "--l2=1e+100 is past float32's range"),
    (
        "experiments.universality",
        ["--compare_trained", "--eta=1e100"],
        "--eta=1e+100 is past float32's range",
    ),
    ("experiments.universality", ["--f=" + "-" * 500 + "x"], "nested too deeply to evaluate"),
    ("benchmarks.kernel_threads", ["--busy=1000000"], "--busy=1000000 is more than 4 per usable"),
    ("experiments.mnist", ["--flagfile="], "--flagfile is empty: name a file of flags"),
    (
        "experiments.mnist",
        ["--data_dir={d}/old.png"],
        "error: data directory {d}/old.png is a file",
    ),
    # --list only shows what there is: another flag would do nothing
    ("experiments.conv", ["--list", "--layers=garbage"], "--layers does nothing with --list"),
    ("experiments.reproduce", ["--list", "--seeds=3"], "--seeds does nothing with --list"),
    # an unroll past MAX_UNROLL only makes the compile take minutes
    ("experiments.conv", ["--unroll=1000"], "--unroll=1000: 1000 is not integer <= 100"),
    ("benchmarks.epoch_speed", ["--unroll=1,100000"], "--unroll='1,100000': at most 100"),
    # an epoch of no step is not timed
    ("benchmarks.data_parallel", ["--mini_batch_sizes=50001"], "50001 exceeds the 50000 training"),
    ("benchmarks.sweep_speed", ["--train_size=5"], "not an integer in the range [10, 50000]"),
    ("benchmarks.conv_speed", ["--images=5"], "not an integer in the range [10, 50000]"),
    ("experiments.chapter6", ["--rows=", "--dir={d}"], "--rows needs at least one of fc100"),
    ("experiments.slowdown", ["--costs=quadratic,quadratic"], "names quadratic twice"),
    ("experiments.plots", ["--run=a={d}/m.jsonl", *PLOT, "--from_epoch=-1"], "--from_epoch must"),
    ("experiments.mnist", ["--hidden=", "--gradient_norms=5"], "--gradient_norms measures hidden"),
    ("experiments.conv", ["--summary_out={d}"], "--summary_out={d}: {d} is a directory"),
    (  # refused before the data loads, not after
        "experiments.mnist",
        ["--checkpoint_dir={d}/old.png"],
        "--checkpoint_dir={d}/old.png is not a directory",
    ),
    ("experiments.conv", ["--checkpoint_dir={d}/m.jsonl"], "--checkpoint_dir={d}/m.jsonl is not"),
    (
        "experiments.mnist",
        ["--checkpoint_dir={d}/old.png/run"],
        "--checkpoint_dir={d}/old.png/run is not a directory ({d}/old.png is a file)",
    ),
    (  # a typo in the parent would start the run afresh instead of resuming it
        "experiments.conv",
        ["--checkpoint_dir={d}/runz/run1"],
        "--checkpoint_dir={d}/runz/run1: directory {d}/runz does not exist",
    ),
    ("experiments.chapter6", ["--dir={d}/runz/c6"], "--dir={d}/runz/c6: directory {d}/runz does"),
    # a flag the run would ignore, and flags checked as every runner checks them
    (
        "experiments.plots",
        ["--run=1000={d}/m.jsonl", "--against_label", "--from_epoch=1", "--out={d}/old.png"],
        "--from_epoch draws against the epoch: leave it out with --against_label",
    ),
    ("benchmarks.backprop_speed", ["--check", "--repeats=3"], "--repeats is for timing"),
    ("experiments.chapter6", ["--table_only", "--jobs=2", "--dir={d}"], "--jobs is for training"),
    (
        "experiments.chapter6",
        ["--flags=--summary_out={d}/x.json", "--dir={d}"],
        "--flags: --summary_out={d}/x.json is set by experiments.chapter6 itself",
    ),
    (
        "experiments.mnist",
        ["--train_size=500", "--gradient_norms=1000"],
        "--gradient_norms=1000 exceeds the 500 training examples",
    ),
    ("experiments.sweep", ["--momentum=1.5"], "--momentum must be in [0, 1), got 1.5"),
    ("benchmarks.epoch_speed", ["--unroll=0"], "--unroll values must be positive"),
    (  # an output that is a file to vote, here by a hard link
        "experiments.vote",
        ["--summary_out={d}/hard_link.jsonl", "{d}/mnist.pkl.gz"],
        "--summary_out={d}/hard_link.jsonl is one of the files to vote ({d}/mnist.pkl.gz)",
    ),
    # absl's own parsing errors, one line too
    ("experiments.mnist", ["--eta=abc"], "error: flag --eta=abc: could not convert string"),
    ("benchmarks.sweep_speed", ["--bogus"], "error: Unknown command line flag 'bogus'"),
    ("experiments.conv", ["--flagfile={d}/binary.flags"], "error: --flagfile: 'utf-8' codec"),
    # (7) an output that is the data the run reads
    (
        "experiments.mnist",
        ["--dataset=idx:{d}", "--metrics_out={d}/t10k-labels-idx1-ubyte"],
        "--metrics_out={d}/t10k-labels-idx1-ubyte would overwrite the data it reads",
    ),
    (
        "experiments.sweep",
        ["--data_dir={d}", "--jsonl={d}/hard_link.jsonl"],
        "--jsonl={d}/hard_link.jsonl would overwrite the data it reads",
    ),
    (
        "experiments.sweep",
        ["--data_dir={d}", "--jsonl={d}/mnist.pkl.gz"],
        "--jsonl={d}/mnist.pkl.gz would overwrite the data it reads",
    ),
    (
        "experiments.conv",
        ["--dataset=tfds:mnist", "--data_dir={d}", "--save={d}/tfds/net.npz"],
        "--save={d}/tfds/net.npz would overwrite the data it reads ({d}/tfds)",
    ),
]


@pytest.mark.parametrize("runner, flags, message", BAD_INPUT)
def test_bad_input_is_one_line_and_leaves_every_file_as_it_was(tmp_path, runner, flags, message):
    bad_input_files(tmp_path)
    names = sorted(os.listdir(tmp_path))
    files = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    result = run(runner, *(f.format(d=tmp_path) for f in flags))
    assert_failed_with_one_error(result, message.format(d=tmp_path))
    assert sorted(os.listdir(tmp_path)) == names  # nothing written beside them
    assert all(p.read_bytes() == content for p, content in files.items())
    assert all(stat.S_ISFIFO((tmp_path / f).lstat().st_mode) for f in ("fifo.json", "fifo.npz"))


def test_a_figure_that_cannot_be_written_whole_leaves_the_earlier_one():
    """A write that fails part-way (here: past a file-size limit, as a full disk would) names
    the flag and leaves the earlier figure whole: the new one replaces it only once written."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        png = pathlib.Path(d) / "slowdown.png"
        png.write_bytes(EARLIER)
        # 10,000 bytes: the figure is larger; Python ignores SIGXFSZ, so writes fail
        result = run("experiments.slowdown", "--epochs=5", f"--png={png}", max_file_bytes=10_000)
        assert_failed_with_one_error(result, f"--png={png}: File too large")
        assert png.read_bytes() == EARLIER
        assert sorted(os.listdir(d)) == ["slowdown.png"]  # no temporary file left


@pytest.mark.parametrize(
    "flags",
    [
        ["--run=a=M", "--title=$\\frac{$"],
        ["--run=$\\frac{$=M", "--run=b=M"],  # two runs: a legend
        ["--run=1=M", "--run=2=M", "--against_label"],
    ],
)
def test_a_title_or_label_is_drawn_as_written(tmp_path, flags):
    """Text given on the command line is drawn literally: matplotlib's mathtext would fail
    on an unmatched $...$ in a title or a legend."""
    (tmp_path / "m.jsonl").write_text(epoch_line(0) + epoch_line(1))
    flags = [f.replace("=M", f"={tmp_path / 'm.jsonl'}") for f in flags]
    result = run("experiments.plots", *flags, f"--out={tmp_path / 'x.png'}")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "platform, why",
    [
        pytest.param(
            "cuda",
            "no device of that platform is on this machine",
            marks=pytest.mark.skipif(os.path.exists("/dev/nvidia0"), reason="a GPU is here"),
        ),
        ("nosuch", "Unable to initialize backend 'nosuch'"),
    ],
)
@pytest.mark.parametrize("runner", ["experiments.mnist", "experiments.sweep"])
def test_a_backend_jax_cannot_start_is_one_line(monkeypatch, platform, why, runner):
    monkeypatch.setenv("JAX_PLATFORMS", platform)  # read at start: a fresh process runs it
    result = run(runner, "--epochs=1", "--train_size=100")
    assert_failed_with_one_error(result, f"JAX_PLATFORMS={platform}: JAX cannot start it here")
    assert why in result.stderr


def run_into(path, *flags):
    """experiments.mnist with its stdout and stderr going to the file ``path`` (appended)."""
    with open(path, "a") as out:
        return subprocess.run(
            [sys.executable, "-m", "experiments.mnist", "--epochs=2", "--train_size=100", *flags],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            timeout=120,
        )


@pytest.mark.parametrize("flag", ["save", "summary_out"])
def test_an_output_that_is_the_runs_own_log_file_is_refused(tmp_path, flag):
    log = tmp_path / "log.txt"
    log.write_text("earlier lines\n")
    runner = "experiments.conv" if flag == "summary_out" else "experiments.mnist"
    with open(log, "a") as out:
        result = subprocess.run(
            [sys.executable, "-m", runner, "--epochs=1", "--train_size=100", f"--{flag}={log}"],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            timeout=120,
        )
    assert result.returncode == 1
    text = log.read_text()
    assert text.startswith("earlier lines\n") and "Traceback" not in text
    assert f"--{flag}={log} is the file this run's stdout goes to" in text


def test_metrics_written_to_the_runs_own_log_file_interleave_with_its_lines(tmp_path):
    log = tmp_path / "log.txt"
    assert run_into(log, f"--metrics_out={log}").returncode == 0
    lines = log.read_text().splitlines()
    assert lines[0].startswith("nnjax: ") and lines[-1].startswith("Best: ")
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert lines.index(next(l for l in lines if l.startswith("Epoch 0:"))) < lines.index(
        next(l for l in lines if l.startswith("{"))
    )


def test_chapter6_asks_a_fresh_process_and_says_the_same(monkeypatch, tmp_path):
    """chapter6 asks a child for the backend (so as not to hold the GPU itself)."""
    monkeypatch.setenv("JAX_PLATFORMS", "nosuch")
    result = run("experiments.chapter6", "--rows=ensemble", "--seeds=1", f"--dir={tmp_path}")
    assert_failed_with_one_error(result, "JAX_PLATFORMS=nosuch: JAX cannot start it here")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "runner, flags",
    [
        ("experiments.reproduce", ["--list"]),
        ("experiments.mnist", ["--epochs=2", "--train_size=100"]),
    ],
)
def test_a_closed_stdout_ends_the_run_without_a_word(runner, flags):
    """As under `| head -1`: the reader has gone before the run prints."""
    child = subprocess.Popen(
        [sys.executable, "-m", runner, *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    child.stdout.close()
    stderr = child.stderr.read()
    assert child.wait(timeout=120) == 1
    assert stderr == ""


def test_an_output_link_to_a_missing_directory_is_refused_before_training(tmp_path):
    link = tmp_path / "net.json"
    link.symlink_to(tmp_path / "gone" / "net.json")
    result = run("experiments.mnist", "--epochs=1", "--train_size=100", f"--save={link}")
    assert_failed_with_one_error(result, f"--save={link}: directory {tmp_path / 'gone'}")
    assert "Epoch" not in result.stdout and link.is_symlink()
