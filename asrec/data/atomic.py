"""Reading RecBole atomic ``.inter`` files: tab-separated, a typed header (``name:type``)."""

import os

import numpy as np


class DataFormatError(ValueError):
    """An interaction file that cannot be read as a RecBole atomic file."""


# The strings pandas.read_csv reads as missing by default, ``dtype=str`` or not: RecBole 1.2
# loads atomic files with read_csv, so an id written as one of these is a missing id there.
MISSING_VALUES = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                            "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])


def read_header(path: str) -> list:
    """Field names of an atomic file, without their ``:type`` suffix."""
    with open(path, encoding="utf-8") as f:
        first = f.readline().rstrip("\r\n")
    if not first:
        raise DataFormatError(f"{path}: empty file, expected a RecBole atomic header like "
                              "'user_id:token<TAB>item_id:token<TAB>timestamp:float'")
    fields = [column.split(":", 1)[0] for column in first.split("\t")]
    if any(":" not in column for column in first.split("\t")):
        raise DataFormatError(f"{path}: header {first!r} is not typed ('name:type' columns)")
    return fields


def _parse_times(values: np.ndarray, path: str, field: str) -> np.ndarray:
    """float64 times; a missing value (see ``MISSING_VALUES``) becomes NaN, as in RecBole."""
    missing = np.isin(values, list(MISSING_VALUES))
    times = np.full(len(values), np.nan)
    try:
        times[~missing] = values[~missing].astype(np.float64)
    except ValueError as error:
        raise DataFormatError(f"{path}: field {field!r} is not numeric ({error})") from None
    return times


def read_interactions(path: str, user_field: str, item_field: str, time_field: str) -> dict:
    """The user tokens, item tokens and timestamps of an atomic ``.inter`` file.

    Returns ``{"user": (n,) str array, "item": (n,) str array, "time": (n,) float64}`` in
    file order. Rows whose user or item is missing (empty, or a string pandas reads as NaN
    such as ``NA``) are dropped, as RecBole drops NaN ids; a missing time is NaN (RecBole
    fills it with the mean time after filtering, ``build_sequences`` does the same).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"interaction file not found: {path}")
    fields = read_header(path)
    missing = [f for f in (user_field, item_field, time_field) if f not in fields]
    if missing:
        raise DataFormatError(f"{path}: fields {missing} not in its header {fields}")
    columns = [fields.index(f) for f in (user_field, item_field, time_field)]
    with open(path, encoding="utf-8") as f:
        f.readline()
        rows = [line.rstrip("\r\n").split("\t") for line in f if line.strip()]
    bad = next((i for i, row in enumerate(rows) if len(row) != len(fields)), None)
    if bad is not None:
        raise DataFormatError(f"{path}: line {bad + 2} has {len(rows[bad])} columns, the header has {len(fields)}")
    users, items, times = (np.array([row[c] for row in rows], dtype=str) for c in columns)
    times = _parse_times(times, path, time_field)
    present = ~np.isin(users, list(MISSING_VALUES)) & ~np.isin(items, list(MISSING_VALUES))
    return {"user": users[present], "item": items[present], "time": times[present]}
