"""Argument parsing and the entry point of ``asrec bench``."""

import argparse
import os

import torch

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
    parser.add_argument("--json", metavar="PATH", help="write every figure plus device, versions and commit")
    parser.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of the speedups (needs matplotlib)")


def _check_output_path(parser, option: str, path) -> None:
    if path is not None:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            parser.error(f"{option}: folder {folder} does not exist")


def resolve_options(parser: argparse.ArgumentParser, args) -> dict:
    """Validated options, or ``parser.error`` naming the bad one."""
    from .settings import SETTINGS

    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        parser.error(f"--settings: unknown {unknown or args.settings!r}; choose from {', '.join(SETTINGS)}")
    if args.dtype not in DTYPES:
        parser.error(f"--dtype: expected one of float32, bfloat16, float16, got {args.dtype!r}")
    if args.device not in ("auto", "cpu", "cuda"):
        parser.error(f"--device: expected auto, cpu or cuda, got {args.device!r}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available to this torch build")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          args.device if args.device != "auto" else "cpu")
    batch = args.batch if args.batch is not None else (32 if args.quick else 256)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if batch < 1:
        parser.error(f"--batch: expected a positive number of sequences, got {batch}")
    if repeats < 1:
        parser.error(f"--repeats: expected at least 1, got {repeats}")
    _check_output_path(parser, "--json", args.json)
    _check_output_path(parser, "--plot", args.plot)
    compile_reference = not (args.quick or args.no_compile)
    reason = "--quick skips torch.compile (compiling takes minutes on a CPU)" if args.quick else \
        "--no-compile given"
    return dict(settings=settings, batch=batch, dtype=DTYPES[args.dtype], device=device, repeats=repeats,
                compile_reference=compile_reference, compile_skip_reason=reason)


def main(parser: argparse.ArgumentParser, args) -> int:
    from .runner import format_table, run_benchmark, write_json, write_plot

    options = resolve_options(parser, args)
    result = run_benchmark(**options)
    if args.json:
        write_json(result, args.json)
    if args.plot:
        write_plot(result, args.plot)
    print(format_table(result))
    return 0
