"""The runners' figures: the first conv layer's filters, digits with their labels, the
digits a network or an ensemble got wrong (chapters 1 and 6), and a sweep's accuracies.

    draw_filters(w, "filters.png")                         # w (20, 5, 5) or (20, 1, 5, 5)
    draw_digits(x[:20], [str(d) for d in y[:20]], "digits.png")
    draw_misclassified(x[wrong], y[wrong], votes[wrong], "wrong.png")
    draw_sweep(grid.summarise(results), "sweep.png", title)

Each writes a PNG with matplotlib's Agg renderer (a bare ``Figure``, no pyplot state),
replacing an earlier file only once the whole figure is written (``writing.save_figure``);
``draw_mistakes`` returns the sentence the runner prints. A wrong shape is a one-line
ValueError naming the argument.
"""

import math

import numpy as np

from experiments.writing import save_figure

COLUMNS = 10  # grid width, for the book's 20 filters (2 rows) and up to ~100 digits


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _grid(k):
    columns = min(k, COLUMNS)
    return math.ceil(k / columns), columns


def draw_filters(filters, path, title=None):
    """Writes the grid of the filters ``filters`` (F, kh, kw) or (F, 1, kh, kw) to the PNG
    ``path``; returns ``path``.

    All filters share one colour scale, symmetric around 0 ([−m, m] with m the largest
    |weight|), drawn like the book: grey, white for the most negative weights and black
    for the most positive, with a colour bar; so filters can be compared with each other
    and a weight of 0 is always the same mid grey."""
    w = np.asarray(filters, dtype=np.float32)
    if w.ndim == 4 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 3 or 0 in w.shape:
        raise ValueError(
            f"filters must have shape (F, kh, kw) or (F, 1, kh, kw), got {np.shape(filters)}"
        )
    m = float(np.abs(w).max()) if np.isfinite(w).all() else float(np.nanmax(np.abs(w)))
    m = m if m > 0 and math.isfinite(m) else 1.0
    rows, columns = _grid(len(w))
    cell = 0.8
    fig = _figure(cell * columns + 1.0, cell * rows + (0.5 if title else 0.2))
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < len(w):
            image = ax.imshow(w[i], cmap="gray_r", vmin=-m, vmax=m, interpolation="nearest")
        else:
            ax.axis("off")
    fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.03, pad=0.02)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return path


def _digits(images, side):
    """``images`` as a float32 (k, side*side) array; a ValueError naming it otherwise."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != side * side:
        raise ValueError(
            f"images must have shape (k, {side * side}) for side={side}, got {np.shape(images)}"
        )
    return x


def draw_digits(images, titles, path, side=28, title=None, empty="no digits"):
    """Writes the grid of the digits ``images`` (k, side*side), values in [0, 1], ten a
    row, each titled by the string ``titles[i]`` (k of them), to the PNG ``path``; returns
    ``path``. With k = 0 the figure says ``empty``."""
    x = _digits(images, side)
    k = x.shape[0]
    if len(titles) != k:
        raise ValueError(f"titles must be {k} strings to match images, got {len(titles)}")
    if k == 0:
        fig = _figure(4, 1.5)
        fig.text(0.5, 0.5, empty, ha="center", va="center", fontsize=14)
    else:
        rows, columns = _grid(k)
        fig = _figure(1.0 * columns, 1.15 * rows + (0.5 if title else 0.1))
        axes = fig.subplots(rows, columns, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.set_xticks([])
            ax.set_yticks([])
            if i < k:
                ax.imshow(
                    x[i].reshape(side, side), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest"
                )
                ax.set_title(titles[i], fontsize=10)
            else:
                ax.axis("off")
        fig.subplots_adjust(
            left=0.02,
            right=0.98,
            bottom=0.02,
            wspace=0.1,
            hspace=0.35,
            top=1 - (0.5 if title else 0.25) / fig.get_figheight(),
        )
    if title:
        fig.suptitle(title)
    save_figure(fig, path)
    return path


def draw_misclassified(images, labels, predictions, path, side=28, title=None):
    """Writes the grid of the digits ``images`` (k, side*side), values in [0, 1], to the
    PNG ``path``, each titled "true → predicted" from ``labels`` (k,) and ``predictions``
    (k,); returns ``path``. With k = 0 the figure says there are none. Ten digits a row."""
    k = len(_digits(images, side))
    for name, a in (("labels", labels), ("predictions", predictions)):
        if np.shape(a) != (k,):
            raise ValueError(f"{name} must have shape ({k},) to match images, got {np.shape(a)}")
    titles = [f"{int(t)} → {int(p)}" for t, p in zip(labels, predictions)]
    return draw_digits(images, titles, path, side, title, empty="no misclassified digits")


MAX_DRAWN = 100  # misclassified digits drawn at most (the book's ensemble gets 33 wrong)


def mistakes(labels, predictions, limit=MAX_DRAWN):
    """The digits to draw: ``(shown, total)``, the indices (ascending, int64) of the first
    ``limit`` examples whose ``predictions`` (n,) differ from their ``labels`` (n,), and
    how many differ in all."""
    from nnjax import ensemble

    wrong = ensemble.misclassified(predictions, labels)
    return wrong[:limit], len(wrong)


def draw_mistakes(images, labels, predictions, path, side=28, limit=MAX_DRAWN) -> str:
    """Draws the first ``limit`` of the digits ``images`` (n, side*side) whose
    ``predictions`` (n,) differ from their ``labels`` (n,) to the PNG ``path``; returns the
    sentence that says so, for the runner to print."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    shown, total = mistakes(labels, predictions, limit)
    draw_misclassified(
        np.asarray(images)[shown], labels[shown], predictions[shown], path, side=side
    )
    which = f"the {total}" if len(shown) == total else f"the first {len(shown)} of the {total}"
    return f"Drew {which} misclassified digits to {path}."


def swept(summaries) -> list[str]:
    """The hyperparameters with more than one value, of "eta", "lmbda", "train_size"."""
    return [
        name
        for name in ("eta", "lmbda", "train_size")
        if len({getattr(s, name) for s in summaries}) > 1
    ]


LABELS = {"eta": "η", "lmbda": "λ", "train_size": "n"}
AXES = {
    "eta": "learning rate η",
    "lmbda": "L2 regularisation λ",
    "train_size": "training-set size n",
}


def label(summary, names) -> str:
    """ "η = 0.5, λ = 5"-style text of ``summary``'s values of the hyperparameters ``names``."""
    return ", ".join(f"{LABELS[n]} = {getattr(summary, n):g}" for n in names)


def draw_sweep(summaries, path, title: str) -> str:
    """Writes a sweep's figure (``summaries`` of ``nnjax.grid.summarise``) to the PNG
    ``path``: mean accuracy per epoch (±1 sd band) of every setting, and, when a
    hyperparameter was swept, best and final accuracy against it (error bars: ±1 sd over
    seeds; log x for η and n), one line per value of any other swept hyperparameter.
    Settings whose every network diverged are left out, and other diverged networks are
    not counted; the title says how many of each.
    Returns ``path``."""
    names = swept(summaries)
    lost = sum(1 for s in summaries if not s.seeds)  # settings whose every network diverged
    summaries = [s for s in summaries if s.seeds]
    some = sum(s.diverged for s in summaries)  # diverged networks of the settings drawn
    notes = [f"{lost} setting{'s' * (lost > 1)} not drawn: every network diverged"] * bool(lost)
    notes += [f"{some} diverged network{'s' * (some > 1)} not counted"] * bool(some)
    if notes:
        title += "\n" + "; ".join(notes)
    fig = _figure(12 if names else 6, 4.2)
    axes = fig.subplots(1, 2 if names else 1, squeeze=False)
    curves = axes[0][0]
    for s in summaries:
        epochs = range(len(s.epoch_means))
        mean = [100 * v for v in s.epoch_means]
        sd = [100 * v for v in s.epoch_sds]
        (line,) = curves.plot(epochs, mean, label=label(s, names) or None)
        curves.fill_between(
            epochs,
            [m - d for m, d in zip(mean, sd)],
            [m + d for m, d in zip(mean, sd)],
            color=line.get_color(),
            alpha=0.2,
        )
    curves.xaxis.get_major_locator().set_params(integer=True)
    curves.set_xlabel("epoch")
    curves.set_ylabel("accuracy on the evaluation data (%)")
    if names:
        curves.legend(fontsize="small")
        x_name, others = names[0], names[1:]
        ax = axes[0][1]
        groups = {}
        for s in summaries:
            groups.setdefault(tuple(getattr(s, n) for n in others), []).append(s)
        for group in groups.values():
            group = sorted(group, key=lambda s: getattr(s, x_name))
            xs = [getattr(s, x_name) for s in group]
            suffix = f" ({label(group[0], others)})" if others else ""
            best = ax.errorbar(
                xs,
                [100 * s.best_mean for s in group],
                yerr=[100 * s.best_sd for s in group],
                marker="o",
                capsize=3,
                label="best" + suffix,
            )
            ax.errorbar(
                xs,
                [100 * s.final_mean for s in group],
                yerr=[100 * s.final_sd for s in group],
                marker="s",
                capsize=3,
                linestyle="--",
                color=best.lines[0].get_color(),
                label="final" + suffix,
            )
        if x_name in ("eta", "train_size") or (
            x_name == "lmbda" and min(s.lmbda for s in summaries) > 0
        ):
            ax.set_xscale("log")
        values = sorted({getattr(s, x_name) for s in summaries})
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.minorticks_off()
        ax.set_xlabel(AXES[x_name])
        ax.set_ylabel("accuracy on the evaluation data (%)")
        ax.legend(fontsize="small")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    save_figure(fig, path)
    return path


if __name__ == "__main__":  # the name sounds like a runner's: say which one draws figures
    raise SystemExit(
        "error: experiments.figures is the runners' drawing code, not a runner; "
        "python -m experiments.plots draws the book's figures from --metrics_out files"
    )
