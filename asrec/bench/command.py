"""Argument parsing and the entry point of ``asrec bench``."""

import argparse
import json
import os
import sys
import tempfile

import torch

from ..errors import CommandError

EPILOG = """\
exit status: 0 done; 2 a malformed command line (usage line, then the error); 1 an output
path that cannot be written, --plot without matplotlib or --device cuda without CUDA
(all found before anything is measured), a row that failed (listed under the table, the
others are measured), or a failed write after measuring (the table is printed first and
the JSON is kept in a temporary file the message names); 130 interrupted (Ctrl-C: the rows
measured so far are printed and written).
"""

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="batch 32, 2 repeats, no torch.compile: a smoke run (under a minute on 2 CPU cores)")
    parser.add_argument("--settings", default="ml-100k,ml-1m",
                        help="comma-separated published settings (default: ml-100k,ml-1m)")
    parser.add_argument("--batch", type=int, help="sequences per batch (default 256; 32 with --quick)")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16 or float16 (autocast for the model)")
    parser.add_argument("--device", default="auto", help="auto (cuda if present, else cpu), cpu or cuda")
    parser.add_argument("--repeats", type=int, help="timed repeats per row on the CPU (default 5; 2 with --quick)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--json", metavar="PATH",
                        help="write every figure plus device, versions and commit to this JSON file")
    parser.add_argument("--plot", metavar="PATH",
                        help="write a PNG bar chart of the speedups to this file (needs matplotlib)")
    parser.add_argument("--scale", action="store_true",
                        help="instead: the catalog-scale rows (loss, ranks, top-k at 100,000 and 1,000,000 items, "
                             "tiled against the (batch, n_items) matrix; see asrec.bench.scale)")


def _check_output_path(option: str, path) -> None:
    """Before measuring: ``path`` can be written (its folder exists, it is not a folder, it is
    writable), so no run ends in a failed write."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        example = os.path.join(path, "bench.json" if option == "--json" else "bench.png")
        raise CommandError(f"{option}: {path} is a folder; give a file path such as {example}")
    if not os.path.isdir(folder):
        raise CommandError(f"{option}: folder {folder} does not exist")
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as error:
        raise CommandError(f"{option}: cannot write {path} ({error.strerror or error})") from None
    if not existed:
        os.remove(path)


def _check_matplotlib() -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except ImportError as error:
        raise CommandError(f"--plot needs matplotlib ({error}); pip install 'asrec[bench]' or leave out --plot") \
            from None


def _check_memory(settings: list, batch: int, device: torch.device) -> None:
    """Refuse a --batch whose training step cannot fit ``device`` (``asrec.memory``'s estimate),
    before anything is allocated: a huge batch would otherwise reach the allocator or swap."""
    from ..memory import check_fits, estimate_memory
    from .settings import SETTINGS

    for name in settings:
        sizes = {k: SETTINGS[name][k] for k in ("n_items", "max_seq_length", "hidden_size", "n_layers", "n_heads",
                                                 "inner_size")}
        estimate = estimate_memory(**sizes, batch_size=batch, eval_batch_size=batch)
        check_fits(estimate.total, device, f"--batch {batch} at setting {name}", estimate.describe())


def resolve_options(parser: argparse.ArgumentParser, args) -> dict:
    """Validated options: ``parser.error`` (status 2) for a malformed value, ``CommandError``
    (status 1) for an output path, package or device this machine lacks; all before measuring."""
    from .settings import SETTINGS

    settings = list(dict.fromkeys(s.strip() for s in args.settings.split(",") if s.strip()))
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        parser.error(f"--settings: unknown {unknown or args.settings!r}; choose from {', '.join(SETTINGS)}")
    if args.dtype not in DTYPES:
        parser.error(f"--dtype: expected one of float32, bfloat16, float16, got {args.dtype!r}")
    if args.device not in ("auto", "cpu", "cuda"):
        parser.error(f"--device: expected auto, cpu or cuda, got {args.device!r}")
    batch = args.batch if args.batch is not None else (32 if args.quick else 256)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if batch < 1:
        parser.error(f"--batch: expected a positive number of sequences, got {batch}")
    if repeats < 1:
        parser.error(f"--repeats: expected at least 1, got {repeats}")
    if args.json is not None and args.plot is not None and os.path.abspath(args.json) == os.path.abspath(args.plot):
        parser.error(f"--json and --plot name the same file {args.json}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise CommandError("--device cuda: no CUDA device is available to this torch build")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          args.device if args.device != "auto" else "cpu")
    _check_memory(settings, batch, device)
    _check_output_path("--json", args.json)
    _check_output_path("--plot", args.plot)
    if args.plot is not None:
        _check_matplotlib()
    compile_reference = not (args.quick or args.no_compile)
    reason = "--quick skips torch.compile (compiling takes minutes on a CPU)" if args.quick else \
        "--no-compile given"
    return dict(settings=settings, batch=batch, dtype=DTYPES[args.dtype], device=device, repeats=repeats,
                compile_reference=compile_reference, compile_skip_reason=reason)


def _keep_json(result: dict, failed_path: str, error: OSError) -> str:
    """The JSON of a run whose --json could not be written, kept in a temporary file (or,
    failing that, printed); returns the error line."""
    reason = error.strerror or str(error)
    try:
        handle, kept = tempfile.mkstemp(prefix="asrec-bench-", suffix=".json")
        with os.fdopen(handle, "w") as f:
            json.dump(result, f, indent=2)
        return f"--json: could not write {failed_path} ({reason}); the results were written to {kept} instead"
    except OSError:
        print(json.dumps(result, indent=2), flush=True)
        return f"--json: could not write {failed_path} ({reason}); the results are printed above as JSON"


def main(parser: argparse.ArgumentParser, args) -> int:
    from .runner import format_table, run_benchmark, write_json, write_plot

    if args.scale:
        from . import scale

        device = [] if args.device == "auto" else ["--device", args.device]
        json_path = ["--json", args.json] if args.json else []
        return scale.main(["--batch", str(args.batch or 256), *device, *json_path])
    options = resolve_options(parser, args)
    result = run_benchmark(**options)
    print(format_table(result), flush=True)
    for line in result.get("warnings", []):  # collected while measuring, so none split the progress lines
        print(f"asrec bench: a library warned while measuring: {line}", file=sys.stderr)
    errors = []
    if args.json:
        try:
            write_json(result, args.json)
        except OSError as error:
            errors.append(_keep_json(result, args.json, error))
    if args.plot:
        try:
            write_plot(result, args.plot)
        except Exception as error:  # matplotlib raises its own types; the figures are in the table (and JSON)
            errors.append(f"--plot: could not write {args.plot} ({type(error).__name__}: {error}); the figures are "
                          "in the table above" + (f" and in {args.json}" if args.json and len(errors) == 0 else ""))
    failed = [r for r in result["rows"] if r["status"] == "failed"]
    if failed:
        errors.append(f"{len(failed)} rows failed (listed under the table)")
    for line in errors:
        print(f"asrec bench: error: {' '.join(line.split())}", file=sys.stderr)
    if result.get("interrupted"):
        print("asrec bench: interrupted; the rows measured so far are above" +
              (" and in the files written" if args.json or args.plot else ""), file=sys.stderr)
        return 130
    return 1 if errors else 0
