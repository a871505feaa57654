"""Write a large synthetic RecBole atomic ``.inter`` file, for scale tests and benchmarks.

``python -m asrec.data.generate_inter OUTPUT --users U --items I --interactions N --seed S``

Each interaction's user is drawn uniformly (about N / U interactions per user), its item
from a Zipf law (exponent ``zipf``) over the I item tokens in a seeded random order, so a
realistic share of the catalog is rare and falls to the 5-interaction filter. Each user's
times start at a random point and advance by 0..``max_gap`` seconds per interaction; a
gap of 0 gives equal timestamps, the file-order ties of RecBole's stable sort. Rows are
written grouped by user in time order, header ``user_id:token item_id:token
timestamp:float``, the tokens as decimal numbers; the same arguments write the same bytes.
"""

import argparse
import sys

import numpy as np

HEADER = "user_id:token\titem_id:token\ttimestamp:float\n"


def _check_count(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")


def interaction_columns(users: int, items: int, interactions: int, seed: int = 0, zipf: float = 1.0,
                        max_gap: int = 3600) -> tuple:
    """(user tokens, item tokens, times) as int64 arrays (interactions,), in the file's order."""
    _check_count("users", users, 1)
    _check_count("items", items, 1)
    _check_count("interactions", interactions, 0)
    _check_count("max_gap", max_gap, 0)
    if not zipf >= 0:
        raise ValueError(f"zipf: expected an exponent >= 0, got {zipf!r}")
    rng = np.random.default_rng(seed)
    user = np.sort(rng.integers(users, size=interactions))
    popularity = 1.0 / np.arange(1, items + 1, dtype=np.float64) ** zipf
    cumulative = np.cumsum(popularity)
    rank = np.searchsorted(cumulative, rng.random(interactions) * cumulative[-1], side="right")
    item = rng.permutation(items)[np.minimum(rank, items - 1)]
    base = rng.integers(1_500_000_000, 1_600_000_000, size=users)
    elapsed = np.cumsum(rng.integers(max_gap + 1, size=interactions))
    first = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if interactions else np.zeros(0, dtype=np.int64)
    # each user's clock starts at its own base: subtract the running total at its first row
    first_row = np.repeat(first, np.diff(np.r_[first, interactions]))
    time = base[user] + elapsed - elapsed[first_row]
    return user, item, time


def write_inter(path: str, users: int, items: int, interactions: int, seed: int = 0, zipf: float = 1.0,
                max_gap: int = 3600, chunk_rows: int = 1_000_000) -> int:
    """Write the file (see the module docstring); returns the number of rows written."""
    user, item, time = interaction_columns(users, items, interactions, seed, zipf, max_gap)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(HEADER)
        for start in range(0, interactions, chunk_rows):
            rows = slice(start, start + chunk_rows)
            # three integer columns: numpy formats them in C, one join per chunk
            text = np.char.add(np.char.add(np.char.add(user[rows].astype(str), "\t"),
                                           np.char.add(item[rows].astype(str), "\t")),
                               time[rows].astype(str))
            out.write("\n".join(text.tolist()))
            out.write("\n")
    return interactions


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asrec.data.generate_inter",
                                     description="Write a synthetic RecBole .inter file (see the module docstring).")
    parser.add_argument("output", help="path of the .inter file to write")
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--items", type=int, required=True, help="item tokens to draw from")
    parser.add_argument("--interactions", type=int, required=True, help="rows to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--zipf", type=float, default=1.0, help="exponent of item popularity (default 1.0)")
    args = parser.parse_args(argv)
    try:
        rows = write_inter(args.output, args.users, args.items, args.interactions, args.seed, args.zipf)
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {rows} interactions to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
