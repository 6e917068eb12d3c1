r"""Network-epochs per second of a sweep: K networks [784, 30, 10], mini-batch 10.

    python -m benchmarks.sweep_speed                  # default K for this backend
    python -m benchmarks.sweep_speed --k=1,64,1024,4096 --strategies=vmap

For each K, each strategy of ``nnjax.sweep`` trains K networks (seeds 0..K−1, η = 3.0,
quadratic cost) on the book's 50,000 training images and is timed over ``--epochs`` epochs,
compile excluded (reported separately), evaluation excluded:

* ``vmap``: ``sweep.sweep_epoch``, all K networks in one compiled epoch;
* ``loop``: ``sgd.sgd_epoch`` network after network (on the CPU, nnjax's C++ kernel);
* ``loop-xla`` (CPU only): the same loop with ``kernel="xla"``, the pure-JAX epoch.

A loop's rate does not depend on K, so it is timed only for K ≤ ``--loop_max_k``.
Prints one row per (K, strategy): network-epochs per second and seconds per epoch of all K.
"""

import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("k", None, "Numbers of networks (default: 1,4,16 on the CPU; "
                  "1,64,256,1024,4096 elsewhere).")
flags.DEFINE_list("strategies", ["vmap", "loop"], "vmap and/or loop (loop-xla is added on "
                  "the CPU with loop).")
flags.DEFINE_integer("epochs", 2, "Timed epochs per (K, strategy).")
flags.DEFINE_integer("loop_max_k", 16, "Time the loop only up to this K.")
flags.DEFINE_integer("train_size", 50000, "Training images per epoch.")
flags.DEFINE_string("data_dir", None, "Dataset cache (default $NNJAX_DATA_DIR or ~/.cache/nnjax).")
flags.DEFINE_enum("matmul_precision", "highest", ["highest", "default"],
                  "Precision of float32 products (default: TF32 on recent GPUs).")

SIZES = [784, 30, 10]
M = 10
ETA = 3.0


def time_vmap(k, x, y):
    import jax
    import jax.numpy as jnp
    from nnjax import costs, sweep

    params, keys = sweep.init_networks(range(k), SIZES)
    eta = jnp.full((k,), ETA, jnp.float32)
    lmbda = jnp.zeros((k,), jnp.float32)
    fold = jax.jit(jax.vmap(jax.random.fold_in, in_axes=(0, None)))
    args = (x, y, fold(keys, 0), eta, lmbda)
    start = time.perf_counter()
    epoch = sweep.sweep_epoch.lower(params, *args, FLAGS.train_size, M,
                                    costs.quadratic).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(params)
    start = time.perf_counter()
    for e in range(FLAGS.epochs):
        params = epoch(params, x, y, fold(keys, e), eta, lmbda)
    jax.block_until_ready(params)
    return (time.perf_counter() - start) / FLAGS.epochs, compile_s


def time_loop(k, x, y, kernel):
    import jax
    import jax.numpy as jnp
    from nnjax import costs, network, sgd

    x, y = x[:FLAGS.train_size], y[:FLAGS.train_size]
    eta, lmbda = jnp.float32(ETA), jnp.float32(0.0)
    nets = []
    for seed in range(k):
        init_key, key = jax.random.split(jax.random.key(seed))
        nets.append((network.init(init_key, SIZES), key))
    start = time.perf_counter()
    epoch = sgd.sgd_epoch.lower(nets[0][0], x, y, nets[0][1], eta, M, costs.quadratic,
                                kernel=kernel, lmbda=lmbda).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    for params, key in nets:
        for e in range(FLAGS.epochs):
            params = epoch(params, x, y, jax.random.fold_in(key, e), eta, lmbda=lmbda)
        jax.block_until_ready(params)
    return (time.perf_counter() - start) / FLAGS.epochs, compile_s


def main(argv):
    del argv
    import jax
    from nnjax import cpu_kernel, data

    cpu = jax.default_backend() == "cpu"
    ks = [int(k) for k in (FLAGS.k or (["1", "4", "16"] if cpu else
                                       ["1", "64", "256", "1024", "4096"]))]
    strategies = list(FLAGS.strategies)
    if cpu and "loop" in strategies:
        strategies.append("loop-xla")
    dataset = data.load("mnist", FLAGS.data_dir, progress=print)
    x, y = jax.device_put(dataset.train.x), jax.device_put(dataset.train.y)
    device = jax.devices()[0]
    kernel_note = ""
    if cpu:
        from nnjax import costs, network
        probe = network.init(jax.random.key(0), SIZES)
        kernel_note = (f"; loop uses the C++ kernel, {cpu_kernel.default_threads()} threads"
                       if cpu_kernel.supports(probe, x, M, costs.quadratic) else
                       "; no C++ kernel")
    print(f"backend {jax.default_backend()}: {device.device_kind}; {SIZES}, mini-batch {M}, "
          f"η = {ETA}, {FLAGS.train_size} images, {FLAGS.epochs} timed epochs{kernel_note}",
          flush=True)
    print(f"{'K':>6s} {'strategy':9s} {'network-epochs/s':>17s} {'s per epoch':>12s} "
          f"{'compile s':>10s}", flush=True)
    with jax.default_matmul_precision(FLAGS.matmul_precision):
        for k in ks:
            for strategy in strategies:
                if strategy.startswith("loop") and k > FLAGS.loop_max_k:
                    continue
                if strategy == "vmap":
                    seconds, compile_s = time_vmap(k, x, y)
                else:
                    seconds, compile_s = time_loop(k, x, y,
                                                   "xla" if strategy == "loop-xla" else "auto")
                print(f"{k:6d} {strategy:9s} {k / seconds:17.1f} {seconds:12.3f} "
                      f"{compile_s:10.2f}", flush=True)


if __name__ == "__main__":
    app.run(main)
