"""Reading RecBole atomic ``.inter`` files: tab-separated, a typed header (``name:type``).

The rows are parsed by pandas' C reader (``pandas.read_csv``, the reader RecBole 1.2.1
loads atomic files with), so a value is missing exactly where RecBole finds it missing:
the empty string and pandas' default NA strings (``NA``, ``nan``, ``NULL``, ...). Fields
are split on tabs only (no quoting), as asrec always read them.
"""

import csv
import os
import re

import numpy as np


class DataFormatError(ValueError):
    """An interaction file that cannot be read as a RecBole atomic file."""


# The strings pandas.read_csv reads as missing by default, ``dtype=str`` or not: RecBole 1.2
# loads atomic files with read_csv, so an id written as one of these is a missing id there.
# The reader below gets this rule from pandas itself; the set is kept for callers and tests.
MISSING_VALUES = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                            "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"])

_BLOCK = 1 << 24  # bytes per read when counting separators


def read_header(path: str) -> list:
    """Field names of an atomic file, without their ``:type`` suffix."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline().rstrip("\r\n")
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text ({error})") from None
    if not first:
        raise DataFormatError(f"{path}: empty file, expected a RecBole atomic header like "
                              "'user_id:token<TAB>item_id:token<TAB>timestamp:float'")
    fields = [column.split(":", 1)[0] for column in first.split("\t")]
    if any(":" not in column for column in first.split("\t")):
        raise DataFormatError(f"{path}: header {first!r} is not typed ('name:type' columns)")
    return fields


def _first_bad_line(path: str, n_fields: int):
    """(line number, column count) of the first non-blank line without ``n_fields`` columns, or None.
    A slow Python scan, run only once the fast count found a mismatch."""
    with open(path, encoding="utf-8") as f:
        f.readline()
        for number, line in enumerate(f, start=2):
            if line.strip():
                columns = line.rstrip("\r\n").count("\t") + 1
                if columns != n_fields:
                    return number, columns
    return None


def _check_column_counts(path: str, n_fields: int, n_rows: int) -> None:
    """Every data row has the header's columns: pandas fills a short row with NaN, which would
    read as a missing value, so the tabs of the whole file are counted (in C, by blocks)."""
    tabs = 0
    with open(path, "rb") as f:
        header_tabs = f.readline().count(b"\t")
        for block in iter(lambda: f.read(_BLOCK), b""):
            tabs += block.count(b"\t")
    if tabs == (n_fields - 1) * n_rows:
        return
    bad = _first_bad_line(path, n_fields)
    if bad is None:  # blank-looking lines that pandas kept as rows (whitespace only)
        raise DataFormatError(f"{path}: {tabs + header_tabs} tabs for {n_rows} rows of {n_fields} columns: a line "
                              "holds only whitespace")
    raise DataFormatError(f"{path}: line {bad[0]} has {bad[1]} columns, the header has {n_fields}")


def _bad_time(path: str, fields: list, time_field: str) -> str:
    """Where a time field fails to parse: re-read it as text, line for line (error path only)."""
    import pandas as pd

    column = pd.read_csv(path, sep="\t", usecols=[time_field], dtype=str, encoding="utf-8", engine="c",
                         quoting=csv.QUOTE_NONE, skip_blank_lines=False, header=0,
                         names=fields)[time_field]
    numbers = pd.to_numeric(column, errors="coerce")
    bad = np.flatnonzero(numbers.isna().to_numpy() & column.notna().to_numpy())
    if len(bad) == 0:
        return f"{path}: field {time_field!r} is not numeric"
    line = int(bad[0]) + 2
    return f"{path}: line {line}: field {time_field!r} is not numeric ({column.iloc[bad[0]]!r})"


def read_interactions(path: str, user_field: str, item_field: str, time_field: str,
                      chunk_rows: int = 1 << 20) -> dict:
    """The user tokens, item tokens and timestamps of an atomic ``.inter`` file.

    Returns ``{"user": (n,) TokenColumn, "item": (n,) TokenColumn (codes into the distinct
    tokens, str), "time": (n,) float64}`` in file order. Rows whose user or item is missing (empty, or a string
    pandas reads as NaN such as ``NA``) are dropped, as RecBole drops NaN ids; a missing time
    is NaN (RecBole fills it with the mean time after filtering, ``build_sequences`` does the
    same). Blank lines are skipped. A row with another number of columns than the header, a
    time that is not a number or a file that is not UTF-8 raise ``DataFormatError``. The file
    is parsed ``chunk_rows`` rows at a time, each chunk's tokens shared at once (memory: about
    24 bytes a row, plus the distinct tokens).
    """
    import pandas as pd

    if not os.path.isfile(path):
        raise FileNotFoundError(f"interaction file not found: {path}")
    fields = read_header(path)
    missing = [f for f in (user_field, item_field, time_field) if f not in fields]
    if missing:
        raise DataFormatError(f"{path}: fields {missing} not in its header {fields}")
    if len(set(fields)) != len(fields):
        raise DataFormatError(f"{path}: header fields {fields} repeat a name")
    options = dict(sep="\t", header=0, names=fields, usecols=[user_field, item_field, time_field],
                   dtype={user_field: str, item_field: str, time_field: np.float64}, encoding="utf-8", engine="c",
                   quoting=csv.QUOTE_NONE, skip_blank_lines=True, chunksize=chunk_rows)
    user_parts, item_parts, times = [], [], []
    try:
        with pd.read_csv(path, **options) as chunks:
            for chunk in chunks:
                # a str object per cell costs ~50 bytes: each chunk's tokens become codes at once
                user_parts.append(_chunk_codes(chunk.pop(user_field)))
                item_parts.append(_chunk_codes(chunk.pop(item_field)))
                times.append(chunk.pop(time_field).to_numpy(dtype=np.float64))
                del chunk
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text ({error})") from None
    except pd.errors.ParserError as error:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
        if found:
            raise DataFormatError(f"{path}: line {found.group(2)} has {found.group(3)} columns, the header has "
                                  f"{found.group(1)}") from None
        raise DataFormatError(f"{path}: {' '.join(str(error).split())}") from None
    except ValueError as error:  # a time that is not a number
        if "convert" not in str(error) and "could not" not in str(error):
            raise
        raise DataFormatError(_bad_time(path, fields, time_field)) from None
    times = np.concatenate(times) if times else np.zeros(0)
    _check_column_counts(path, len(fields), len(times))
    users, items = _merge_codes(user_parts), _merge_codes(item_parts)
    present = (users.codes >= 0) & (items.codes >= 0)
    if present.all():
        return {"user": users, "item": items, "time": times}
    return {"user": users[present], "item": items[present], "time": times[present]}


def _chunk_codes(column) -> tuple:
    """(codes (n,) int64, -1 where missing; the distinct tokens) of one chunk's column."""
    import pandas as pd

    return pd.factorize(column.to_numpy(dtype=object))


class TokenColumn:
    """A token column as integer codes into its distinct tokens: ``codes`` (n,) int64, -1 where
    missing, ``uniques`` (u,) object array of str. The file's tokens are hashed once, while
    reading; ``asrec.data.preprocess.first_appearance_codes`` then remaps the codes (integers)
    instead of hashing 10^7 strings again. Array-like where the callers need it: ``len``,
    indexing by a mask or indices, ``tolist``, ``numpy.asarray`` (the tokens, NaN where missing)."""

    def __init__(self, codes: np.ndarray, uniques: np.ndarray):
        self.codes, self.uniques = codes, uniques

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index) -> "TokenColumn":
        return TokenColumn(self.codes[index], self.uniques)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        tokens = np.r_[self.uniques, np.array([np.nan], dtype=object)][self.codes]   # code -1 -> the NaN
        return tokens if dtype is None else tokens.astype(dtype)

    def tolist(self) -> list:
        return np.asarray(self).tolist()


def _merge_codes(parts: list) -> TokenColumn:
    """One column of codes from per-chunk ``pandas.factorize`` results, in first-appearance
    order over the file (-1 where missing)."""
    import pandas as pd

    if not parts:
        return TokenColumn(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object))
    # the chunks' uniques in chunk order: their first appearances are the file's
    chunk_to_global, uniques = pd.factorize(np.concatenate([chunk_uniques for _, chunk_uniques in parts]))
    offset, merged = 0, []
    for codes, chunk_uniques in parts:
        lookup = np.r_[chunk_to_global[offset:offset + len(chunk_uniques)], -1].astype(np.int64)  # -1: missing
        merged.append(lookup[codes])
        offset += len(chunk_uniques)
    return TokenColumn(np.concatenate(merged), np.asarray(uniques, dtype=object))
