"""Argument parsing and the entry point of ``asrec recommend``."""

import argparse
import os
import sys

from ..errors import CommandError
from .output import FORMATS

DESCRIPTION = "The top-k items of each user's latest history, from a run folder of asrec train."

EPILOG = """\
latest history: a user's whole sequence in the run's data (or in --data-path), every
interaction including the one the evaluation holds out as the test target; the model sees
the max_seq_length most recent. --histories FILE gives histories instead: JSONL lines
{"user": label, "items": [tokens, oldest first]}, or a CSV with columns user,item (one row
per interaction, oldest first); any user label, item tokens of the run.

output: JSONL, one line per user {"user": token, "items": [tokens, best first], "scores":
[floats]}, or CSV (--format csv) rows user,rank,item,score; users in the run's user order
(--histories: the file's order). The padding item is never recommended; with
--exclude-seen, every item of the history is left out (all of it, not only the
max_seq_length the model sees), and a user with fewer than K items left gets fewer.

the batch-wide threshold: ASRec's frequency filter keeps the frequencies above a quantile
taken over the whole batch (the published model, --filter-scope batch), so one user's
recommendations depend on which users share the batch. The batches are fixed, as the
evaluation's: consecutive runs of --batch-size users (default the run's eval batch size)
in the order above, so a user's result is the same whenever the flags are (the same
--users / --histories, --batch-size, --data-path; on one device and build, as floating
point goes). --filter-scope sequence takes one threshold per history: each result depends
on its own history only (up to the last bits of the scores, which the batch's GEMM shapes
round), with what it changes in a model trained with the batch scope measured in the
README (Recommendations).

run folder: best.pt, config.json, and id_maps.json + histories.npz (the item and user
tokens, the users' histories), which asrec train writes. A run trained before those were
written has its data re-read (config.json names it) and checked against the fingerprint in
its last.pt.

exit status: 0 done; 2 a malformed command line; 1 a bad run folder, file, token or --k
for the run (one line on stderr; ASREC_DEBUG=1 shows the traceback); 130 interrupted;
141 stdout closed by its reader (e.g. | head).
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="a run folder written by asrec train")
    parser.add_argument("--k", type=_positive, default=10, help="items per user (default 10; at most the run's "
                                                                "number of items)")
    parser.add_argument("--users", nargs="+", metavar="TOKEN", help="only these users (original tokens)")
    parser.add_argument("--histories", metavar="FILE", help="recommend for these histories (.jsonl or .csv of "
                                                            "original tokens) instead of the run's users")
    parser.add_argument("--data-path", help="the users' histories from another .inter file of the run's item tokens "
                                            "(default: the run's own data)")
    parser.add_argument("--exclude-seen", action="store_true", help="leave out the items of each user's history")
    parser.add_argument("--batch-size", type=_positive, help="histories per batch (default: the run's "
                                                             "eval_batch_size); under --filter-scope batch it "
                                                             "changes the results")
    parser.add_argument("--filter-scope", choices=("batch", "sequence"),
                        help="the frequency filter's threshold over the batch or per history (default: the run's "
                             "own, batch unless it was trained with --filter-scope sequence)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto: cuda if present, else cpu (default auto)")
    parser.add_argument("--format", default="jsonl", choices=FORMATS, help="jsonl (default) or csv")
    parser.add_argument("--output", metavar="FILE", help="write here (whole, replacing it) instead of stdout")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _validate(parser, args) -> None:
    for name in ("run", "histories", "data_path", "output"):
        if getattr(args, name) is not None and not getattr(args, name).strip():
            parser.error(f"--{name.replace('_', '-')}: empty" if name != "run" else "RUN: empty")
    if args.histories is not None:
        for name in ("users", "data_path"):
            if getattr(args, name) is not None:
                parser.error(f"--{name.replace('_', '-')}: does not apply with --histories (the file names the "
                             "users and their histories)")
    if args.users is not None:
        twice = sorted({u for u in args.users if args.users.count(u) > 1})
        if twice:
            parser.error(f"--users: {', '.join(map(repr, twice))} given more than once")


def _device(choice: str):
    import torch

    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda: no CUDA device is available to this torch build")
    return torch.device(choice)


def _chosen_users(run_data, users, source) -> list:
    """The ids of ``--users`` tokens, in the run's user order."""
    index = {token: u for u, token in enumerate(run_data.user_tokens) if u}
    unknown = [u for u in users if u not in index]
    if unknown:
        raise CommandError(f"--users: {len(unknown)} token(s) are not users of {source} (e.g. "
                           f"{', '.join(map(repr, unknown[:5]))}); --histories FILE recommends for new users")
    return sorted(index[u] for u in users)


def main(parser: argparse.ArgumentParser, args) -> int:
    from ..train.progress import Progress
    from .histories_file import read_histories
    from .output import write_records
    from .recommend import latest_histories, recommend_users
    from .run import load_run_data, load_run_model, read_config

    _validate(parser, args)
    if args.output is not None and os.path.isdir(args.output):
        raise CommandError(f"--output: {args.output} is a folder; give a file name")
    config = read_config(args.run)
    model = load_run_model(args.run, _device(args.device), args.filter_scope)
    n_real = model.n_items - 1
    if args.k > n_real:
        raise CommandError(f"--k: {args.k} is above the run's catalog of {n_real} items")
    run_data = load_run_data(args.run, config, model.n_items, args.data_path)
    if args.histories is not None:
        histories = read_histories(args.histories, run_data.item_tokens)
    else:
        users = None if args.users is None else _chosen_users(run_data, args.users, args.data_path or "the run's data")
        histories = latest_histories(run_data, users)
    batch_size = args.batch_size or int(config.get("eval_batch_size", 256))
    n_batches = (len(histories) + batch_size - 1) // batch_size
    progress = Progress(n_batches, "recommend", stream=sys.stderr, enabled=not args.quiet)
    records = recommend_users(model, run_data.item_tokens, histories, args.k, batch_size, args.exclude_seen,
                              progress)
    if args.output is None:
        try:
            write_records(records, sys.stdout, args.format)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader closed stdout (| head): stop quietly, as on SIGPIPE
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's flush must not fail again
            return 141
        return 0
    from ..train.checkpoints import atomic_write

    def write(temporary):
        with open(temporary, "w", encoding="utf-8", newline="") as stream:
            write_records(records, stream, args.format)
    atomic_write(args.output, write)
    return 0
