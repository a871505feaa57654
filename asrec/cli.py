"""The ``asrec`` command: ``asrec bench`` (throughput) and ``asrec train`` (train and evaluate)."""

import argparse
import os
import sys


def build_parser() -> argparse.ArgumentParser:
    from .bench import command as bench_command
    from .train import command as train_command

    parser = argparse.ArgumentParser(prog="asrec", description="The ASRec sequential recommender, exact and fast.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = commands.add_parser("bench", help="measure throughput of the model and its ops",
                                description="Throughput of the model and each op at the published settings.")
    bench_command.add_arguments(bench)
    bench.set_defaults(handler=bench_command.main)
    train = commands.add_parser("train", help="train and evaluate on a dataset with RecBole's protocol",
                                description="Train ASRec with the published protocol: leave-one-out split, "
                                            "full ranking, early stopping on valid Hit@20.")
    train_command.add_arguments(train)
    train.set_defaults(handler=train_command.main)
    return parser


def main(argv=None) -> int:
    """Runs a command. Bad input (a missing file, an unreadable dataset, a failed download, an
    invalid value) ends with one line on stderr and exit status 1; ``ASREC_DEBUG=1`` shows the
    traceback instead."""
    from .data.atomic import DataFormatError
    from .data.download import DatasetDownloadError

    parser = build_parser()
    args = parser.parse_args(argv)
    subparser = parser._subparsers._group_actions[0].choices[args.command]
    try:
        return args.handler(subparser, args)
    except (FileNotFoundError, DataFormatError, DatasetDownloadError, ValueError) as error:
        if os.environ.get("ASREC_DEBUG"):
            raise
        print(f"asrec {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
