"""A run's seed: the one range of seeds, and the two PRNG keys every runner draws from one.

init_key, shuffle_key = run_keys(seed)
params = network.init(init_key, sizes)
fit(..., key=shuffle_key)            # epoch k shuffles with fold_in(shuffle_key, k)
"""

import jax

from nnjax.inputs import is_whole

# Seeds are 0 … 2^31 − 1: jax.random.key keeps only a seed's low 32 bits, so larger ones
# would repeat smaller ones' runs.
MAX_SEED = 2**31 - 1


def check_seed(seed) -> None:
    """ValueError unless ``seed`` is an integer from 0 to ``MAX_SEED``."""
    if not is_whole(seed):
        raise ValueError(f"seed {seed!r} is not an integer")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed} is outside 0 ... 2^31 − 1")


def run_keys(seed):
    """The two PRNG keys of the run that ``seed`` (an int, checked by ``check_seed``, or a
    traced uint32) names: ``(init_key, shuffle_key)``, the first for its initial
    parameters, the second for ``fit``'s ``key`` (epoch k shuffles with
    ``fold_in(shuffle_key, k)``). Every runner starts a seed's run so, which makes network
    i of a sweep or of ``experiments.conv --networks`` the single run of its seed."""
    if not isinstance(seed, jax.core.Tracer):
        check_seed(seed)
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    return init_key, shuffle_key
