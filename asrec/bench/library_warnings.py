"""Warnings that libraries raise while the benchmark measures: none lands between the
progress lines; each distinct one is collected and reported once, in one line, after the
table. (asrec raises none of its own: the DFT matrices' cache is one Dynamo traces without
a warning, ``asrec.reference._constant_cache``.)"""

import contextlib
import warnings


@contextlib.contextmanager
def collected():
    """Within the block, warnings are recorded instead of printed; yields the list that
    ``reportable`` reads."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # record every one; ``reportable`` removes repeats
        yield caught


def reportable(caught: list) -> list:
    """One line per distinct warning: ``Category: first line of the message (file:line)``."""
    lines = []
    for record in caught:
        message = str(record.message)
        first = message.strip().splitlines()[0] if message.strip() else ""
        line = f"{record.category.__name__}: {first} ({record.filename}:{record.lineno})"
        if line not in lines:
            lines.append(line)
    return lines
