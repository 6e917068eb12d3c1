"""Figures of digits and filters, for the runners of chapters 1 and 6: the first conv
layer's filters, digits with their labels, and the digits a network or an ensemble got wrong.

    draw_filters(w, "filters.png")                         # w (20, 5, 5) or (20, 1, 5, 5)
    draw_digits(x[:20], [str(d) for d in y[:20]], "digits.png")
    draw_misclassified(x[wrong], y[wrong], votes[wrong], "wrong.png")

Each writes a PNG with matplotlib's Agg renderer (a bare ``Figure``, no pyplot state),
replacing an earlier file only once the whole figure is written (``checks.save_figure``),
and returns the path; a wrong shape is a one-line ValueError naming the argument.
"""

import math

import numpy as np

from experiments.checks import save_figure

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
