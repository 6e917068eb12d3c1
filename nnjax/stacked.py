"""K networks' parameters and optimizer states on the device, for the host loop
(``nnjax.fit``): stacked on a leading axis K (``vmap``) or one pair per network, with what
the loop does to them between epochs (train, revert, score, keep the best, hand back)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import history, optimizers
from nnjax.epoch import correct


def stack(trees):
    """K pytrees of equal structure as one, with a leading axis K on every leaf."""
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def unstack(tree, k: int) -> list:
    """The K pytrees of a stacked ``tree`` (leading axis K), as a list."""
    leading = {a.shape[0] if a.ndim else None for a in jax.tree.leaves(tree)}
    if leading != {k}:
        raise ValueError(
            f"the tree is not stacked on a leading axis of {k}: {sorted(leading, key=str)}"
        )
    return [jax.tree.map(lambda a, i=i: a[i], tree) for i in range(k)]


@functools.partial(jax.jit, static_argnames=("model", "batch"))
def _correct_all(stacked, x, y, *, model, batch):
    return jax.lax.map(lambda p: correct(p, x, y, model=model), stacked, batch_size=batch)


@jax.jit
def select(mask, new, old):
    """Rows of the stacked ``new`` where ``mask`` (K,) holds, of ``old`` elsewhere."""
    return jax.tree.map(
        lambda a, b: jnp.where(mask.reshape(-1, *[1] * (a.ndim - 1)), a, b), new, old
    )


class Networks:
    """The K networks' parameters and optimizer states on the device: stacked on a leading
    axis (``vmap``) or one pair per network; ``local`` gives a copy for scoring."""

    def __init__(self, runs, vmap: bool, put, local, keep_best: bool, revertible: bool = False):
        self.k, self.vmap, self.local, self.revertible = len(runs), vmap, local, revertible
        best = [r.params if r.best_params is None else r.best_params for r in runs]
        best = best if keep_best else None
        if vmap:
            self.state = put((stack([r.params for r in runs]), stack([r.opt_state for r in runs])))
            self.best = stack(best) if keep_best else None
        else:
            self.state = [put((r.params, r.opt_state)) for r in runs]
            self.best = best
        self.trained = self.previous = None

    def example(self, x, y, key) -> tuple:
        """Arguments to compile the epoch for."""
        if self.vmap:
            return (*self.state, x, y, jnp.stack([key] * self.k))
        return (*self.state[0], x, y, key)

    def train(self, compiled, x, y, keys, active, etas):
        """One epoch of the ``active`` networks; ``etas`` (one per network) set η first."""
        if self.revertible:  # what ``revert`` goes back to
            self.previous = self.state if self.vmap else list(self.state)
        if self.vmap:
            params, opt_state = self.state
            if etas is not None:
                opt_state = optimizers.set_hyperparams(opt_state, learning_rate=np.asarray(etas))
            new = compiled(params, opt_state, x, y, jnp.stack(keys))
            if len(active) < self.k:  # stopped networks keep what they had
                mask = jnp.asarray(np.isin(np.arange(self.k), active))
                new = select(mask, new, (params, opt_state))
            self.state = jax.block_until_ready(new)
            self.trained = self.local(self.state[0])
            return
        for i in active:
            params, opt_state = self.state[i]
            if etas is not None:
                opt_state = optimizers.set_hyperparams(opt_state, learning_rate=etas[i])
            self.state[i] = jax.block_until_ready(compiled(params, opt_state, x, y, keys[i]))

    def revert(self, networks) -> None:
        """Networks ``networks`` back to their state before the last ``train``."""
        if self.vmap:
            keep = jnp.asarray(~np.isin(np.arange(self.k), networks))
            self.state = select(keep, self.state, self.previous)
            self.trained = self.local(self.state[0])
        else:
            for i in networks:
                self.state[i] = self.previous[i]

    def params(self, i: int):
        """Network i's parameters now (this process's copy)."""
        if self.vmap:
            return jax.tree.map(lambda a: a[i], self.trained)
        return self.local(self.state[i][0])

    def diverged(self, active) -> list:
        """The active networks whose parameters are not all finite."""
        if self.vmap:
            finite = history.finite_networks(self.trained)
            return [i for i in active if not finite[i]]
        one = [jax.tree.map(lambda a: a[None], self.params(i)) for i in active]
        return [i for i, p in zip(active, one) if not history.finite_networks(p)[0]]

    def correct(self, model, x, y, active, batch) -> np.ndarray:
        """How many examples of ``x`` each network classifies as ``y``: int (K,)."""
        if self.vmap:
            return np.asarray(_correct_all(self.trained, x, y, model=model, batch=batch))
        counts = np.zeros(self.k, int)
        for i in active:
            counts[i] = int(correct(self.params(i), x, y, model=model))
        return counts

    def keep_best(self, improved) -> None:
        """Remembers the parameters of the networks whose epoch was their best so far."""
        if self.vmap:
            self.best = select(jnp.asarray(improved), self.trained, self.best)
        else:
            for i in np.flatnonzero(improved):
                self.best[i] = self.params(int(i))

    def sync(self, runs, keep_best: bool) -> None:
        """Every ``History``'s params, opt_state (and best_params) as trained so far."""
        if self.vmap:
            states = unstack(self.local(self.state), self.k)
            best = unstack(self.best, self.k) if keep_best else [None] * self.k
        else:
            states = [self.local(s) for s in self.state]
            best = self.best if keep_best else [None] * self.k
        for r, (params, opt_state), b in zip(runs, states, best):
            r.params, r.opt_state = params, opt_state
            if keep_best:
                r.best_params = b
