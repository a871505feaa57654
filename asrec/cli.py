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

    # name -> (the module with add_arguments, main and EPILOG; the one-line help; the description)
    commands_table = {
        "bench": (bench_command, "measure throughput of the model and its ops",
                  "Throughput of the model and each op at the published settings."),
        "train": (train_command, "train and evaluate on a dataset with RecBole's protocol",
                  "Train ASRec with the published protocol: leave-one-out split, full ranking, early stopping on "
                  "valid Hit@20."),
        "recommend": (recommend_command, "top-k items for each user from a trained run",
                      recommend_command.DESCRIPTION),
        "export": (export_command, "a trained run's top-k recommender as a standalone package",
                   "Compile a run's eval forward and top-k with torch.export and AOTInductor into one .pt2 file "
                   "that torch alone can load."),
    }
    parser = argparse.ArgumentParser(prog="asrec", description="The ASRec sequential recommender, exact and fast.")
    parser.add_argument("--version", action="version", version=f"asrec {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_line, description) in commands_table.items():
        command = commands.add_parser(name, help=help_line, description=description, epilog=module.EPILOG,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(handler=module.main)
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
