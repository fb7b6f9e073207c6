"""Argument checks that raise errors naming the argument and its value."""

import numbers


def check_positive_int(name, value):
    """Raises unless `value` is an int >= 1 (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be a positive int. Received: {name}={value!r} "
            f"of type {type(value).__name__}."
        )
    if value < 1:
        raise ValueError(
            f"`{name}` must be a positive int. Received: {name}={value}."
        )


def check_ratio(name, value):
    """Raises unless `value` is a real number strictly inside (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"`{name}` must be a float in the open interval (0, 1). "
            f"Received: {name}={value!r} of type {type(value).__name__}."
        )
    if not 0.0 < float(value) < 1.0:
        raise ValueError(
            f"`{name}` must be in the open interval (0, 1). "
            f"Received: {name}={value}."
        )


def check_choice(name, value, choices):
    """Raises unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices)}. "
            f"Received: {name}={value!r}."
        )


def check_bool(name, value, allow_none=False):
    """Raises a TypeError unless `value` is True or False (or None, with
    `allow_none`: an option whose default is decided from other
    arguments)."""
    if allow_none and value is None:
        return
    if not isinstance(value, bool):
        allowed = "None, True or False" if allow_none else "True or False"
        raise TypeError(
            f"`{name}` must be {allowed}. Received: {name}={value!r}."
        )


def check_count(name, value):
    """Raises unless `value` is an int >= 0 (bools are rejected)."""
    if value != 0 or isinstance(value, bool):
        check_positive_int(name, value)


def check_pair(name, value, what="(low, high)"):
    """`value` as two floats `(low, high)`; a `ValueError` naming `name`
    and its value when it is not a pair of numbers. The caller checks the
    order it needs."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a pair of numbers {what}. Received: "
            f"{name}={value!r}."
        ) from None
    return low, high


def check_seed(name, value):
    """Raises unless `value` is an int >= 0 (a NumPy generator's seed):
    `TypeError` for another type (bools included), `ValueError` below 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"`{name}` must be an int. Received: {name}={value!r}."
        )
    if value < 0:
        raise ValueError(
            f"`{name}` must be >= 0. Received: {name}={value}."
        )
