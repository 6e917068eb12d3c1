"""What the training runners (``experiments.mnist``, ``experiments.conv``,
``experiments.sweep``) share before they train: the ranges of their training flags, the
devices they split mini-batches over, and the training images they take."""

from absl import flags

from experiments.checks import UsageError
from experiments.devices import check_divides, check_process_flags, parse_devices

FLAGS = flags.FLAGS


def check_ranges(positive=(), non_negative=(), fractions=()) -> None:
    """The flags named in ``positive`` are > 0, those in ``non_negative`` ≥ 0 and those in
    ``fractions`` in [0, 1), checked in that order (a flag whose value is None is
    skipped), and none past float32's range, in which networks train. Raises UsageError
    naming the first flag out of range (nan is out of every range)."""
    for name in positive:
        value = FLAGS[name].value
        if value is not None and not value > 0:
            raise UsageError(f"--{name} must be positive, got {value}")
        check_float32(name, value)
    for name in non_negative:
        value = FLAGS[name].value
        if value is not None and not value >= 0:
            raise UsageError(f"--{name} must be zero or positive, got {value}")
        check_float32(name, value)
    for name in fractions:
        value = FLAGS[name].value
        if value is not None and not 0 <= value < 1:
            raise UsageError(f"--{name} must be in [0, 1), got {value}")


FLOAT32_MAX = 3.4028234663852886e38


def check_float32(name: str, value) -> None:
    """UsageError naming --``name`` if the float ``value`` is past float32's range."""
    if isinstance(value, float) and value > FLOAT32_MAX:
        raise UsageError(f"--{name}={value:g} is past float32's range, in which networks train")


def check_devices() -> None:
    """--devices is a positive integer or all, and divides --mini_batch_size; the multi-host
    flags come together (UsageError naming the flags otherwise). Checked before JAX starts;
    ``experiments.devices.device_mesh`` checks the device count itself once it has."""
    check_process_flags()
    devices = parse_devices(FLAGS.devices)
    if devices != "all":
        check_divides(devices, devices, FLAGS.mini_batch_size)


def first_images(split, train_size, dataset_name: str):
    """``(x, y)``: the first ``train_size`` examples of ``split`` (all of them for None);
    UsageError naming --train_size if the split has fewer."""
    if train_size is None:
        return split.x, split.y
    if train_size > len(split.y):
        raise UsageError(
            f"--train_size={train_size} exceeds the {len(split.y)} training images of "
            f"{dataset_name}"
        )
    return split.x[:train_size], split.y[:train_size]


def check_mini_batch(n: int) -> None:
    """--mini_batch_size is at most the ``n`` examples trained on (UsageError otherwise)."""
    if FLAGS.mini_batch_size > n:
        raise UsageError(
            f"--mini_batch_size={FLAGS.mini_batch_size} exceeds the {n} training examples"
        )
