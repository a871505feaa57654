"""Warnings that libraries raise while the benchmark measures: none lands between the
progress lines. A known-harmless one is dropped (each with the reason below); any other is
collected and reported once, in one line, after the table."""

import contextlib
import re
import warnings

# torch.compile of the reference traces ``real_dft_matrices`` (asrec/reference/frequency_filter.py),
# a functools.lru_cache over (seq_len, dtype, device). Dynamo traces the wrapped function
# instead of reading the cache and warns that a cached result might depend on state outside
# its arguments. This one depends on nothing else, and Dynamo guards on the shape, dtype and
# device it is called with, so the traced graph computes the same matrices: the risk the
# warning names is absent, and its multi-line text would otherwise split the progress output.
HARMLESS = (
    re.compile(r"Dynamo detected a call to a `functools\.lru_cache`-wrapped function at 'frequency_filter\.py:\d+'"),
)


def is_harmless(message: str) -> bool:
    return any(pattern.match(message) for pattern in HARMLESS)


@contextlib.contextmanager
def collected():
    """Within the block, warnings are recorded instead of printed; yields the list that
    ``reportable`` reads."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # record every one; ``reportable`` removes repeats
        yield caught


def reportable(caught: list) -> list:
    """One line per distinct warning that is not known to be harmless:
    ``Category: first line of the message (file:line)``."""
    lines = []
    for record in caught:
        message = str(record.message)
        if is_harmless(message):
            continue
        first = message.strip().splitlines()[0] if message.strip() else ""
        line = f"{record.category.__name__}: {first} ({record.filename}:{record.lineno})"
        if line not in lines:
            lines.append(line)
    return lines
