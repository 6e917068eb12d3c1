"""The comma-separated lists runners' flags take (``--hidden=30,30``, ``--rows=a,b``,
``--z=0.6,-1``), parsed into Python lists; a bad list is a UsageError naming its flag."""

import math

from experiments.checks import UsageError


def _split(flag: str, text) -> tuple[str, list[str]]:
    """``(text, items)``: the flag's text (absl's list ``["10", "40"]`` joined) and its
    comma-separated items, stripped (none for an empty text); UsageError naming --``flag``
    for an empty item. (``nnjax.grid`` parses the sweep's lists alike, but imports JAX.)"""
    text = text if isinstance(text, str) else ",".join(text)
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    if not all(parts):
        raise UsageError(f"--{flag}={text!r} has an empty item")
    return text, parts


def parse_hidden(text: str) -> list[int]:
    """``"30,30"`` → ``[30, 30]`` (``""``: none); raises UsageError naming --hidden if it
    is not that."""
    return parse_positive_ints("hidden", text, allow_none=True)


def parse_positive_ints(flag: str, text, allow_none: bool = False, most=None) -> list[int]:
    """``"10,40"`` (or absl's list ``["10", "40"]``) → ``[10, 40]``; raises UsageError
    naming --``flag`` unless every value is a positive integer (at most ``most``, if given)
    and, unless ``allow_none``, there is at least one."""
    text, parts = _split(flag, text)
    values = []
    for part in parts:
        try:
            values.append(int(part))
        except ValueError:
            raise UsageError(f"--{flag} must be comma-separated integers, got {text!r}") from None
    if any(n <= 0 for n in values):
        raise UsageError(f"--{flag} values must be positive, got {text!r}")
    if most is not None and max(values, default=0) > most:
        raise UsageError(f"--{flag}={text!r}: at most {most:,}")
    if not values and not allow_none:
        raise UsageError(f"--{flag} needs at least one value")
    return values


def parse_names(flag: str, text, choices) -> list[str]:
    """``"a,b"`` (or absl's list ``["a", "b"]``) → ``["a", "b"]``; raises UsageError naming
    --``flag`` unless there is at least one, each is one of ``choices`` and none comes twice."""
    text, parts = _split(flag, text)
    if not parts:
        raise UsageError(f"--{flag} needs at least one of {', '.join(choices)}")
    unknown = [p for p in parts if p not in choices]
    if unknown:
        raise UsageError(f"--{flag}: unknown {unknown[0]!r}; choose from {', '.join(choices)}")
    twice = [p for i, p in enumerate(parts) if p in parts[:i]]
    if twice:
        raise UsageError(f"--{flag}={text} names {twice[0]} twice")
    return parts


def parse_floats(flag: str, text) -> list[float]:
    """``"0.6,-1"`` (or absl's list ``["0.6", "-1"]``) → ``[0.6, -1.0]``; raises UsageError
    naming --``flag`` unless every item is a finite number."""
    text, parts = _split(flag, text)
    if not parts:
        raise UsageError(f"--{flag}={text!r} has an empty item")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--{flag} must be comma-separated numbers, got {text!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"--{flag} must be finite numbers, got {text!r}")
    return values
