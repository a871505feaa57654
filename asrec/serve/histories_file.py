"""``--histories FILE`` of ``asrec recommend``: histories of original item tokens to recommend for.

- JSONL (``.jsonl``, ``.json``): one object a line, ``{"user": label, "items": [tokens, oldest
  first]}``; blank lines are skipped;
- CSV (``.csv``): a header with the columns ``user`` and ``item`` (others are ignored), one row
  per interaction, each user's rows oldest first (users may interleave).

A user label is any string (a known user or a new one) and names the output line; tokens may
be JSON strings or integers (``242`` is the token ``"242"``). Every item token must be an
item of the run: the model has no embedding for others.
"""

import csv
import json
import os

import numpy as np

from ..errors import CommandError


def _token(value, where: str, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise CommandError(f"{where}: {what} must be a string or an integer token, got {json.dumps(value)}")


def _read_jsonl(path: str) -> list:
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"--histories {path} line {number}"
            try:
                row = json.loads(line)
            except ValueError as error:
                raise CommandError(f"{where}: not JSON ({error.msg})") from None
            if not isinstance(row, dict) or "user" not in row or "items" not in row:
                raise CommandError(f'{where}: expected an object {{"user": ..., "items": [...]}}')
            if not isinstance(row["items"], list):
                raise CommandError(f"{where}: \"items\" must be a list of item tokens, oldest first")
            rows.append((_token(row["user"], where, '"user"'), [_token(t, where, "an item") for t in row["items"]],
                         where))
    return rows


def _read_csv(path: str) -> list:
    by_user = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in ("user", "item") if c not in (reader.fieldnames or [])]
        if missing:
            raise CommandError(f"--histories {path}: its header has no {' and no '.join(missing)} column (expected "
                               f"user,item; found {','.join(reader.fieldnames or []) or 'nothing'})")
        for row in reader:
            where = f"--histories {path} line {reader.line_num}"
            if row["user"] is None or row["item"] is None or not row["user"] or not row["item"]:
                raise CommandError(f"{where}: a row needs a user and an item")
            by_user.setdefault(row["user"], ([], where))[0].append(row["item"])
    return [(user, items, where) for user, (items, where) in by_user.items()]


def read_histories(path: str, item_tokens: list) -> list:
    """``[(user label, item ids (n,) int64 oldest first), ...]`` in the file's user order.

    item_tokens: the run's tokens by id (index 0 the padding). A ``CommandError`` names the
    file and line of a malformed row, an unknown item token, an empty history or a user given
    twice (JSONL)."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".jsonl", ".json", ".csv"):
        raise CommandError(f"--histories: {path}: expected a .jsonl or .csv file (by its name), got "
                           f"{extension or 'no extension'}")
    if not os.path.isfile(path):
        raise CommandError(f"--histories: {path} does not exist" if not os.path.exists(path) else
                           f"--histories: {path} is not a file")
    try:
        rows = _read_csv(path) if extension == ".csv" else _read_jsonl(path)
    except UnicodeDecodeError:
        raise CommandError(f"--histories: {path} is not UTF-8 text") from None
    index = {token: i for i, token in enumerate(item_tokens) if i}
    histories, seen = [], set()
    for user, items, where in rows:
        if user in seen:
            raise CommandError(f"{where}: user {user!r} appears twice; give each user one history")
        seen.add(user)
        if not items:
            raise CommandError(f"{where}: user {user!r} has an empty history")
        unknown = [t for t in items if t not in index]
        if unknown:
            raise CommandError(f"{where}: item token {unknown[0]!r} is not an item of the run"
                               + (f" ({len(unknown)} unknown in this history)" if len(unknown) > 1 else ""))
        histories.append((user, np.array([index[t] for t in items], dtype=np.int64)))
    if not histories:
        raise CommandError(f"--histories: {path} holds no history")
    return histories
