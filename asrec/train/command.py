"""Argument parsing and the entry point of ``asrec train``."""

import argparse
import datetime
import json
import os
import sys

import torch

from .presets import PRESETS

# option -> (type, check, message); every hyper-parameter of the presets can be overridden
OVERRIDES = {
    "max_seq_length": (int, lambda v: v >= 1, "a positive int"),
    "hidden_size": (int, lambda v: v >= 1, "a positive int"),
    "inner_size": (int, lambda v: v >= 1, "a positive int"),
    "n_layers": (int, lambda v: v >= 1, "a positive int"),
    "n_heads": (int, lambda v: v >= 1, "a positive int"),
    "hidden_dropout_prob": (float, lambda v: 0 <= v < 1, "a probability in [0, 1)"),
    "attn_dropout_prob": (float, lambda v: 0 <= v < 1, "a probability in [0, 1)"),
    "hidden_act": (str, lambda v: v in ("gelu", "relu", "swish", "tanh", "sigmoid"),
                   "one of gelu, relu, swish, tanh, sigmoid"),
    "layer_norm_eps": (float, lambda v: v > 0, "a positive float"),
    "initializer_range": (float, lambda v: v > 0, "a positive float"),
    "fsm_mix": (float, lambda v: 0 <= v <= 1, "a number in [0, 1] (the published A)"),
    "batch_size": (int, lambda v: v >= 1, "a positive int"),
    "eval_batch_size": (int, lambda v: v >= 1, "a positive int"),
    "learning_rate": (float, lambda v: v > 0, "a positive float"),
    "weight_decay": (float, lambda v: v >= 0, "a non-negative float"),
    "epochs": (int, lambda v: v >= 1, "a positive int"),
    "patience": (int, lambda v: v >= 0, "a non-negative int"),
    "seed": (int, lambda v: v >= 0, "a non-negative int"),
    "min_interactions": (int, lambda v: v >= 1, "a positive int"),
}
AUTOCAST = {"float32": None, "fp32": None, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="ml-100k, ml-1m, amazon-beauty, amazon-sports-outdoors, yelp (downloaded "
                                        "into the cache) or synthetic (generated)")
    data.add_argument("--data-path", help="a local RecBole .inter file or a folder holding one")
    data.add_argument("--cache-dir", help="download cache (default ~/.cache/asrec/datasets or $ASREC_CACHE_DIR)")
    data.add_argument("--synthetic-users", type=int, default=600, help="users of --dataset synthetic")
    data.add_argument("--synthetic-items", type=int, default=300, help="items of --dataset synthetic")
    model = parser.add_argument_group("preset and hyper-parameters")
    model.add_argument("--preset", choices=sorted(PRESETS),
                       help="published settings (default: the dataset's own preset)")
    for name, (kind, _, meaning) in OVERRIDES.items():
        model.add_argument("--" + name.replace("_", "-"), type=kind, help=f"override the preset ({meaning})")
    model.add_argument("--filter-scope", choices=("batch", "sequence"), default="batch",
                       help="frequency-filter threshold over the batch (published) or per sequence")
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    run.add_argument("--dtype", default="float32", help="float32, or bf16 for bfloat16 autocast")
    run.add_argument("--output", help="run folder (default runs/<dataset>-<time>)")
    run.add_argument("--resume", help="a run folder or its last.pt to continue")
    run.add_argument("--quiet", action="store_true", help="no progress bar")


def resolve_config(parser, args, dataset_name) -> dict:
    preset_name = args.preset or dataset_name
    if preset_name not in PRESETS:
        parser.error(f"--preset: no preset for dataset {dataset_name!r}; pass --preset with one of "
                     f"{', '.join(sorted(PRESETS))}")
    config = dict(PRESETS[preset_name], preset=preset_name, filter_scope=args.filter_scope)
    for name, (_, check, meaning) in OVERRIDES.items():
        value = getattr(args, name)
        if value is not None:
            if not check(value):
                parser.error(f"--{name.replace('_', '-')}: expected {meaning}, got {value!r}")
            config[name] = value
    if config["hidden_size"] % config["n_heads"]:
        parser.error(f"--n-heads: {config['n_heads']} does not divide hidden size {config['hidden_size']}")
    return config


def _validate(parser, args) -> None:
    if args.dataset is None and args.data_path is None and args.resume is None:
        parser.error("give --dataset NAME or --data-path PATH (or --resume RUN)")
    if args.dtype not in AUTOCAST:
        parser.error(f"--dtype: expected float32 or bf16, got {args.dtype!r}")
    if args.data_path is not None and not os.path.exists(args.data_path):
        parser.error(f"--data-path: {args.data_path} does not exist")
    if args.synthetic_users < 10 or args.synthetic_items < 12:
        parser.error("--synthetic-users must be >= 10 and --synthetic-items >= 12")
    from ..data.registry import DATASETS
    if args.dataset is not None and args.dataset not in DATASETS and args.dataset != "synthetic":
        parser.error(f"--dataset: unknown {args.dataset!r}; choose from {', '.join(DATASETS)}, synthetic")


def main(parser: argparse.ArgumentParser, args) -> int:
    from ..data import load_dataset
    from ..data.load import find_inter_file, infer_dataset_name
    from .checkpoints import load_last
    from .distributed import all_gather_objects, barrier, setup, teardown
    from .loop import format_results, train

    _validate(parser, args)
    resume = load_last(args.resume) if args.resume else None
    if resume is not None:  # the run's own settings, so the continuation trains the same model on the same data
        saved = resume["config"]
        changed = [n for n in OVERRIDES if getattr(args, n) is not None and n not in ("epochs", "patience")]
        if changed or args.dataset or args.data_path or args.preset:
            parser.error(f"--resume continues a run with its own settings; only --epochs and --patience may "
                         f"change (got {', '.join('--' + n.replace('_', '-') for n in changed) or 'data options'})")
        saved.update({n: getattr(args, n) for n in ("epochs", "patience") if getattr(args, n) is not None})
        args.dataset, args.data_path = saved["dataset"], saved["data_path"]
        args.synthetic_users, args.synthetic_items = saved["synthetic_users"], saved["synthetic_items"]
    autocast_dtype = AUTOCAST[args.dtype]
    runtime = setup(args.device)
    try:
        if autocast_dtype is not None and runtime.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            parser.error("--dtype bf16: this GPU does not support bfloat16")
        log = print if runtime.is_main else (lambda *a, **k: None)
        dataset_name = args.dataset
        if dataset_name is None and args.data_path is not None:
            dataset_name = infer_dataset_name(find_inter_file(args.data_path, None))
        config = resume["config"] if resume else resolve_config(parser, args, dataset_name)
        synthetic = dict(n_users=args.synthetic_users, n_items=args.synthetic_items)
        data = source = None
        for turn in ("main", "others"):  # the main process downloads first, the others read its cache
            if (turn == "main") == runtime.is_main:
                data, dataset_name, source = load_dataset(args.dataset, args.data_path, config["max_seq_length"],
                                                          args.cache_dir, synthetic)
            barrier(runtime)
        config.update(dataset=args.dataset or dataset_name, data_path=args.data_path,
                      synthetic_users=args.synthetic_users, synthetic_items=args.synthetic_items)
        output = args.output or (os.path.dirname(os.path.abspath(args.resume)) if args.resume and
                                 os.path.isfile(args.resume) else args.resume)
        if output is None:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            output = os.path.join("runs", f"{dataset_name or 'data'}-{stamp}")
        output = all_gather_objects(output, runtime)[0]
        if runtime.is_main:
            os.makedirs(output, exist_ok=True)
            with open(os.path.join(output, "config.json"), "w") as f:
                json.dump(config, f, indent=2)
        log(f"data: {source}\nstatistics: {json.dumps(data.statistics())}\nrun folder: {output}  "
            f"device: {runtime.device} x {runtime.world_size}  preset: {config['preset']}")
        results = train(config, data, runtime, output, resume, autocast_dtype, log,
                        progress_stream=None if args.quiet else sys.stderr)
        log(format_results(results))
    finally:
        teardown(runtime)
    return 0
