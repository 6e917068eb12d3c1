"""The book's chapter 6 rows as settings of ``python -m experiments.conv``: each preset is
(what the book ran, its published test accuracy in %, the runner's flags for it)."""

CONV2 = "conv:20:5x5,conv:40:5x5,fc:100,softmax"
BIG = "conv:20:5x5,conv:40:5x5,fc:1000,fc:1000,softmax"
# The book's chapter 6 rows: (what it reports, its number, the flags that reproduce it).
CHAPTER6 = {
    "fc100": (
        "FC-100 sigmoid + softmax, η = 0.1",
        97.80,
        dict(layers="fc:100,softmax", eta=0.1, epochs=60),
    ),
    "conv1": (
        "+ conv-pool (20 filters 5×5)",
        98.78,
        dict(layers="conv:20:5x5,fc:100,softmax", eta=0.1, epochs=60),
    ),
    "conv2": ("+ second conv-pool (40 filters 5×5)", 99.06, dict(layers=CONV2, eta=0.1, epochs=60)),
    "relu": (
        "ReLU, η = 0.03, λ = 1.0 (network3's 0.1)",
        99.23,
        dict(layers=CONV2, activation="relu", eta=0.03, l2=1.0, epochs=60),
    ),
    "expanded": (
        "+ expanded data (250,000 images)",
        99.37,
        dict(layers=CONV2, activation="relu", eta=0.03, l2=1.0, epochs=60, expand="book"),
    ),
    "fc100x2": (
        "two FC-100 layers",
        99.43,
        dict(
            layers="conv:20:5x5,conv:40:5x5,fc:100,fc:100,softmax",
            activation="relu",
            eta=0.03,
            l2=1.0,
            epochs=60,
            expand="book",
        ),
    ),
    "dropout": (
        "FC-1000 × 2, dropout 0.5, expanded data, 40 epochs",
        99.60,
        dict(layers=BIG, activation="relu", eta=0.03, dropout=0.5, epochs=40, expand="book"),
    ),
    "ensemble": (
        "plurality vote of 5 such networks",
        99.67,
        dict(
            layers=BIG,
            activation="relu",
            eta=0.03,
            dropout=0.5,
            epochs=40,
            expand="book",
            networks=5,
        ),
    ),
}


def command(name: str) -> str:
    """The command line that reproduces the preset ``name``'s row."""
    return f"python -m experiments.conv --preset={name}"


def describe() -> str:
    """Every preset: its row of the book, its number, its command and the flags it sets."""
    return "\n".join(
        f"{name:9} {what} (book: {number:.2f}%)\n          {command(name)}  = "
        + " ".join(f"--{k}={v}" for k, v in settings.items())
        for name, (what, number, settings) in CHAPTER6.items()
    )
