"""The ``asrec`` command: ``asrec bench`` (throughput), ``asrec train`` (train and evaluate),
``asrec recommend`` (top-k items from a trained run) and ``asrec export`` (a trained run as a
standalone AOTInductor package).

Exit statuses: 0 done; 2 a malformed command line (an unknown flag, a value of the wrong
kind or out of range, flags that contradict each other), with argparse's usage line; 1 a
well-formed command that the machine or the files cannot satisfy (a missing or corrupt
file, a run folder that cannot be used, an absent optional package or device, a failed
download or write), with one line on stderr; 130 interrupted (Ctrl-C).
"""

import argparse
import os
import sys

from .errors import CommandError


def _version() -> str:
    from . import __version__
    return __version__


def build_parser() -> argparse.ArgumentParser:
    from .bench import command as bench_command
    from .serve import export_command, recommend_command
    from .train import command as train_command

    parser = argparse.ArgumentParser(prog="asrec", description="The ASRec sequential recommender, exact and fast.")
    parser.add_argument("--version", action="version", version=f"asrec {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    bench = commands.add_parser("bench", help="measure throughput of the model and its ops",
                                description="Throughput of the model and each op at the published settings.",
                                epilog=bench_command.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    bench_command.add_arguments(bench)
    bench.set_defaults(handler=bench_command.main)
    train = commands.add_parser("train", help="train and evaluate on a dataset with RecBole's protocol",
                                description="Train ASRec with the published protocol: leave-one-out split, "
                                            "full ranking, early stopping on valid Hit@20.",
                                epilog=train_command.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    train_command.add_arguments(train)
    train.set_defaults(handler=train_command.main)
    recommend = commands.add_parser("recommend", help="top-k items for each user from a trained run",
                                    description=recommend_command.DESCRIPTION, epilog=recommend_command.EPILOG,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    recommend_command.add_arguments(recommend)
    recommend.set_defaults(handler=recommend_command.main)
    export = commands.add_parser("export", help="a trained run's top-k recommender as a standalone package",
                                 description="Compile a run's eval forward and top-k with torch.export and "
                                             "AOTInductor into one .pt2 file that torch alone can load.",
                                 epilog=export_command.EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    export_command.add_arguments(export)
    export.set_defaults(handler=export_command.main)
    return parser


def _one_line(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    return " ".join(text.split())


def main(argv=None) -> int:
    """Runs a command; returns its exit status (see the module docstring). ``ASREC_DEBUG=1``
    shows the traceback of an error instead of its one line."""
    from .data.atomic import DataFormatError
    from .data.download import DatasetDownloadError

    parser = build_parser()
    args = parser.parse_args(argv)
    subparser = parser._subparsers._group_actions[0].choices[args.command]
    try:
        return args.handler(subparser, args)
    except (CommandError, OSError, DataFormatError, DatasetDownloadError, ValueError) as error:
        if os.environ.get("ASREC_DEBUG"):
            raise
        print(f"asrec {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if os.environ.get("ASREC_DEBUG"):
            raise
        print(f"\nasrec {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
