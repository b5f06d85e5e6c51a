"""Value checks shared by every config and loader (one definition each)."""

from __future__ import annotations

import math

SEED_LIMIT = 2**32  # seeds go to sklearn and imbalanced-learn, which take 0 <= seed < 2**32
# torch accepts any thread count, but each thread is an OS thread: a typo like 100000 would try to
# start that many. 1024 is above the core count of any machine this study runs on.
MAX_THREADS = 1024


def is_int(value) -> bool:
    """An int that is not a bool (YAML ``true`` is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite int or float, not a bool (YAML ``.inf`` / ``.nan`` are floats too, and break training)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_seed(value) -> bool:
    return is_int(value) and 0 <= value < SEED_LIMIT


def is_positive_int(value) -> bool:
    return is_int(value) and value > 0
