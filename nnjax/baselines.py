"""Chapter 1's baselines: how well do much simpler methods classify MNIST?"""

import numpy as np


def darkness_fit(x, y, num_classes: int = 10):
    """The average total darkness (sum of pixels) of the training images of each digit.

    ``x`` (N, n_in), ``y`` (N,) → float64 array (num_classes,), computed in float64 as the
    book's Python code does. ValueError unless every class 0 … num_classes − 1 has an image
    (a class without one would have no mean, and win every image).
    """
    darkness = np.asarray(x, np.float64).sum(axis=1)
    y = np.asarray(y)
    if y.shape != darkness.shape or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"y must be the {darkness.shape[0]} images' integer classes, got {y.dtype} {y.shape}"
        )
    missing = sorted(set(range(num_classes)) - set(y.tolist()))
    if missing:
        raise ValueError(f"no training image of class {missing[0]}: each class needs one")
    return np.array([darkness[y == d].mean() for d in range(num_classes)])


def darkness_predict(means, x):
    """For each image in ``x`` (N, n_in), the digit whose average darkness is nearest to
    its own: int array (N,). Ties go to the smaller digit."""
    darkness = np.asarray(x, np.float64).sum(axis=1)
    return np.argmin(np.abs(darkness[:, None] - np.asarray(means)[None, :]), axis=1)
