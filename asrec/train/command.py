"""Argument parsing and the entry point of ``asrec train``."""

import argparse
import contextlib
import json
import math
import os
import sys

import torch

from ..errors import CommandError
from ..run_folder import fresh_run_folder
from .presets import PRESETS

EPILOG = """\
exit status: 0 done; 2 a malformed command line (usage line, then the error); 1 a bad
file, run folder or device (one line on stderr; ASREC_DEBUG=1 shows the traceback); 130
interrupted (Ctrl-C) and 143 terminated (SIGTERM), each printing the --resume command.

run folder (--output): log.jsonl, config.json, best.pt, best_original.pth,
best_original_config.json, last.pt, results.json, id_maps.json and histories.npz (the
item and user tokens and the users' histories, for asrec recommend). Every file is
written whole (to a temporary name, then renamed), so an interrupted run can always be
continued with --resume RUN. --output refuses a folder that already holds a run.
--resume continues a run with its own settings (only --epochs and --patience may change; --epochs is the run's
total, not how many more: a finished 1-epoch run trains a second epoch with --epochs 2);
with --output NEW it copies the run's checkpoints into NEW and continues there, leaving
RUN as it was.

several processes: torchrun --standalone --nproc_per_node=K -m asrec train ...
Each process trains on its share (1/K, dealt round-robin) of every batch of --batch-size
sequences, with its own dropout draws; the shares' losses are weighted so that the
averaged gradient is the whole batch's mean loss's. The frequency filter's threshold
(--filter-scope batch: the 0.8 quantile of the batch's frequency energies) is taken over
each process's share, not over the whole batch, so K processes train another function
than one process with the same --batch-size. With --filter-scope sequence (a threshold
per sequence) K processes compute one process's function, dropout draws aside.
Evaluation is exact: whole evaluation batches are dealt round-robin and reassembled, so
the metrics equal one process's.
"""


def _finite(check):
    return lambda v: math.isfinite(v) and check(v)


MAX_EPOCHS = 1_000_000  # --epochs and --patience: more is a typo (an ml-100k epoch takes seconds on a GPU)

# option -> (type, check, message); every hyper-parameter of the presets can be overridden
OVERRIDES = {
    "max_seq_length": (int, lambda v: v >= 1, "a positive int"),
    "hidden_size": (int, lambda v: v >= 1, "a positive int"),
    "inner_size": (int, lambda v: v >= 1, "a positive int"),
    "n_layers": (int, lambda v: v >= 1, "a positive int"),
    "n_heads": (int, lambda v: v >= 1, "a positive int"),
    "hidden_dropout_prob": (float, _finite(lambda v: 0 <= v < 1),
                            "a probability in [0, 1); the frequency filter's own dropout stays 0.5, as published"),
    "attn_dropout_prob": (float, _finite(lambda v: 0 <= v < 1), "a probability in [0, 1)"),
    "hidden_act": (str, lambda v: v in ("gelu", "relu", "swish", "tanh", "sigmoid"),
                   "one of gelu, relu, swish, tanh, sigmoid"),
    "layer_norm_eps": (float, _finite(lambda v: v > 0), "a positive finite float"),
    "initializer_range": (float, _finite(lambda v: v > 0), "a positive finite float"),
    "fsm_mix": (float, _finite(lambda v: 0 <= v <= 1), "a number in [0, 1] (the published A)"),
    "batch_size": (int, lambda v: v >= 1, "a positive int"),
    "eval_batch_size": (int, lambda v: v >= 1, "a positive int"),
    "learning_rate": (float, _finite(lambda v: v > 0), "a positive finite float"),
    "weight_decay": (float, _finite(lambda v: v >= 0), "a non-negative finite float"),
    # (an absurd count, 10**23, would start a run that can only be stopped by hand)
    "epochs": (int, lambda v: 1 <= v <= MAX_EPOCHS, f"a positive int up to {MAX_EPOCHS:,}"),
    "patience": (int, lambda v: 0 <= v <= MAX_EPOCHS, f"a non-negative int up to {MAX_EPOCHS:,}"),
    "steps_per_epoch": (int, lambda v: v >= 1, "a positive int: each epoch trains on the first N batches of its "
                                               "shuffle only, a sampled epoch for data too large for whole ones; "
                                               "default every batch"),
    "seed": (int, lambda v: 0 <= v < 2**63, "a non-negative int below 2**63 (torch.manual_seed's range)"),
    "min_interactions": (int, lambda v: v >= 1, "a positive int: users and items with fewer interactions are "
                                                "dropped, RecBole's iterative filter; published 5"),
}
RESUMABLE = ("epochs", "patience")  # the settings --resume may change
HELP = {"epochs": "the run's total number of epochs; with --resume too, the total, not how many more"}
AUTOCAST = {"float32": None, "fp32": None, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
SYNTHETIC_DEFAULTS = dict(synthetic_users=600, synthetic_items=300)
SYNTHETIC_MAX = 1_000_000  # about 4 minutes and 12 GB of users for the generator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", help="ml-100k, ml-1m, amazon-beauty, amazon-sports-outdoors, yelp (downloaded "
                                        "into the cache) or synthetic (generated)")
    data.add_argument("--data-path", help="a local RecBole .inter file or a folder holding one (with --dataset NAME, "
                                          "the folder's NAME file)")
    data.add_argument("--cache-dir", help="download cache of --dataset NAME (default ~/.cache/asrec/datasets or "
                                          "$ASREC_CACHE_DIR)")
    data.add_argument("--synthetic-users", type=int,
                      help="users of --dataset synthetic (default 600, at least 10)")
    data.add_argument("--synthetic-items", type=int,
                      help="items of --dataset synthetic (default 300, at least 12)")
    model = parser.add_argument_group("preset and hyper-parameters")
    model.add_argument("--preset", choices=sorted(PRESETS),
                       help="published settings (default: the dataset's own preset)")
    for name, (kind, _, meaning) in OVERRIDES.items():
        model.add_argument("--" + name.replace("_", "-"), type=kind,
                           help=f"{HELP[name]}: override the preset ({meaning})" if name in HELP else
                           f"override the preset ({meaning})")
    model.add_argument("--filter-scope", choices=("batch", "sequence"),
                       help="frequency-filter threshold over the batch (default, published; under torchrun over "
                            "each process's share of it) or per sequence")
    run = parser.add_argument_group("run")
    run.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                     help="auto: cuda if present, else cpu (default auto)")
    run.add_argument("--dtype", choices=sorted(AUTOCAST),
                     help="float32 (default), or bf16/bfloat16 for bfloat16 autocast")
    run.add_argument("--output", help="run folder (default runs/<dataset>-<time>; with --resume, the resumed run's "
                                      "folder); must not hold another run")
    run.add_argument("--resume", metavar="RUN", help="a run folder or its last.pt to continue")
    run.add_argument("--no-cuda-graphs", action="store_true",
                     help="on CUDA, run every training step and evaluation batch eagerly instead of replaying "
                          "CUDA graphs (the default on one GPU; several processes always run eagerly)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")


def resolve_config(parser, args, dataset_name, data_file=None) -> dict:
    preset_name = args.preset or dataset_name
    if preset_name not in PRESETS:
        what = f"dataset {dataset_name!r}" if dataset_name else f"data {data_file or args.data_path}"
        parser.error(f"--preset: no preset for {what}; pass --preset with one of {', '.join(sorted(PRESETS))}")
    config = dict(PRESETS[preset_name], preset=preset_name, filter_scope=args.filter_scope or "batch",
                  dtype=args.dtype or "float32")
    for name in OVERRIDES:
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    if config["hidden_size"] % config["n_heads"]:
        parser.error(f"--n-heads: {config['n_heads']} does not divide hidden size {config['hidden_size']}")
    return config


def _validate(parser, args) -> None:
    """Malformed command lines: ``parser.error`` (status 2)."""
    for name in ("dataset", "data_path", "cache_dir", "output", "resume"):
        if getattr(args, name) is not None and not getattr(args, name).strip():
            parser.error(f"--{name.replace('_', '-')}: empty")
    if args.dataset is None and args.data_path is None and args.resume is None:
        parser.error("give --dataset NAME or --data-path PATH (or --resume RUN)")
    for name, (_, check, meaning) in OVERRIDES.items():
        value = getattr(args, name)
        if value is not None and not check(value):
            parser.error(f"--{name.replace('_', '-')}: expected {meaning}, got {value!r}")
    if args.synthetic_users is not None and args.synthetic_users < 10:
        parser.error(f"--synthetic-users must be >= 10, got {args.synthetic_users}")
    if args.synthetic_items is not None and args.synthetic_items < 12:
        parser.error(f"--synthetic-items must be >= 12, got {args.synthetic_items}")
    for name in SYNTHETIC_DEFAULTS:  # the generator is a Python loop: ~4,000 users/s, ~12 KB per user
        if getattr(args, name) is not None and getattr(args, name) > SYNTHETIC_MAX:
            parser.error(f"--{name.replace('_', '-')} must be <= {SYNTHETIC_MAX:,} (the generator is for small "
                         f"experiments; use --data-path for larger data), got {getattr(args, name)}")
    from ..data.registry import DATASETS
    if args.dataset is not None and args.dataset not in DATASETS and args.dataset != "synthetic":
        parser.error(f"--dataset: unknown {args.dataset!r}; choose from {', '.join(DATASETS)}, synthetic")
    if args.resume is not None:
        changed = [n for n in OVERRIDES if getattr(args, n) is not None and n not in RESUMABLE]
        changed += [n for n in ("dataset", "data_path", "preset", "filter_scope", "dtype", *SYNTHETIC_DEFAULTS)
                    if getattr(args, n) is not None]
        if changed:
            parser.error(f"--resume continues a run with its own settings; only --epochs and --patience may "
                         f"change (got {', '.join('--' + n.replace('_', '-') for n in changed)})")
        return
    synthetic = args.dataset == "synthetic"
    if synthetic and args.data_path is not None:
        parser.error("--data-path: --dataset synthetic is generated, it reads no file (give one of the two)")
    given = [n for n in SYNTHETIC_DEFAULTS if getattr(args, n) is not None]
    if given and not synthetic:
        parser.error(f"--{given[0].replace('_', '-')} applies only to --dataset synthetic")
    if args.cache_dir is not None and (args.dataset is None or synthetic or args.data_path is not None):
        parser.error("--cache-dir applies only to a downloaded --dataset NAME (without --data-path)")


def _load_resume(args) -> tuple:
    """The checkpoint to continue and its folder; fills ``args`` with the run's data settings."""
    from .checkpoints import CheckpointError, checkpoint_path, load_last

    path = checkpoint_path(args.resume)
    resume = load_last(path)
    folder = os.path.dirname(os.path.abspath(path))
    saved = resume["config"]
    best_epoch = resume["loop"].get("best_epoch")
    if best_epoch is not None and not any(os.path.isfile(os.path.join(folder, name))
                                          for name in ("best.pt", "best.pt.staged")):
        raise CheckpointError(f"--resume: {folder} has no best.pt, which holds the run's best epoch {best_epoch}; "
                              "restore it next to last.pt")
    saved.update({n: getattr(args, n) for n in RESUMABLE if getattr(args, n) is not None})
    saved.setdefault("dtype", "float32")
    args.dataset, args.data_path = saved["dataset"], saved["data_path"]
    args.synthetic_users, args.synthetic_items = saved["synthetic_users"], saved["synthetic_items"]
    if args.data_path is not None and not os.path.exists(args.data_path):
        raise CommandError(f"--resume: the run's data {args.data_path} no longer exists")
    return resume, folder


def resume_note(resume: dict, config: dict):
    """What a resumed run will do when that is nothing new: None if epochs are left to train,
    else one line saying why none is left and what ``--epochs`` means."""
    loop = resume["loop"]
    done = loop["epoch"]
    if loop["bad_epochs"] > config["patience"]:
        why = (f"it stopped early after epoch {done} ({loop['bad_epochs']} epochs without a better valid hit@20, "
               f"over its --patience {config['patience']}); a larger --patience lets it go on")
    elif done >= config["epochs"]:
        why = (f"it has trained {done} of its {config['epochs']} epochs; --epochs is the run's total, not how many "
               f"more: --epochs {done + 1} or more trains further")
    else:
        return None
    return f"--resume: nothing left to train: {why}; evaluating its best epoch ({loop['best_epoch']}) again"


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler's stop, ``kill``): stops the run as Ctrl-C does."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises ``Terminated`` in the main thread, so a stopped run
    ends as an interrupted one (the run folder's files are written whole at every moment) and
    says how to continue; the previous handler is restored after."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise Terminated()
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _holds_run(folder: str) -> bool:
    """A folder with a ``last.pt`` holds a run (one without it never finished an epoch and may be reused)."""
    return os.path.exists(os.path.join(folder, "last.pt"))


def check_output(output: str, resumed_from) -> None:
    """The refusals of ``prepare_output`` that need no write, made before the data is loaded:
    ``output`` is a file, holds another run, or is in use by a running ``asrec train``; the
    resumed run's folder is in use."""
    from .run_lock import reading

    if os.path.exists(output) and not os.path.isdir(output):
        raise CommandError(f"--output: {output} exists and is not a folder")
    in_place = resumed_from is not None and os.path.isdir(output) and os.path.samefile(output, resumed_from)
    if not in_place and os.path.isdir(output) and _holds_run(output):
        raise CommandError(f"--output: {output} already holds a run; continue it with --resume {output}, or choose "
                           "another --output")
    if os.path.isdir(output):
        with reading(output, "--resume" if in_place else "--output"):
            pass
    if resumed_from is not None and not in_place:
        with reading(resumed_from, "--resume"):
            pass


def prepare_output(output: str, resumed_from, resume):
    """Create the run folder and lock it for this process (``asrec.train.run_lock``: one run
    at a time per folder); refuse one that holds another run; when a run is resumed into a new
    folder, copy its checkpoints there (``last.pt`` last, so the copy is resumable); finish or
    undo a best-epoch save that a stopped run left staged. Returns the ``RunLock`` to release
    when the run ends."""
    import shutil

    from .checkpoints import RUN_FILES, atomic_write, recover_best
    from .run_lock import RunLock, reading

    if os.path.exists(output) and not os.path.isdir(output):
        raise CommandError(f"--output: {output} exists and is not a folder")
    in_place = resumed_from is not None and os.path.isdir(output) and os.path.samefile(output, resumed_from)
    try:
        os.makedirs(output, exist_ok=True)
        lock = RunLock(output, "--resume" if in_place else "--output")  # also proves the folder writable
    except OSError as error:
        if in_place:
            raise CommandError(f"--resume: cannot write in the run folder {output} ({error.strerror or error}); "
                               "continue it elsewhere with --output NEW") from None
        raise CommandError(f"--output: cannot write run folder {output} ({error.strerror or error})") from None
    try:
        if not in_place and _holds_run(output):  # another run finished an epoch there since check_output
            raise CommandError(f"--output: {output} already holds a run; continue it with --resume {output}, or "
                               "choose another --output")
        if resumed_from is not None and not in_place:
            with reading(resumed_from, "--resume"):
                for name in RUN_FILES:
                    source = os.path.join(resumed_from, name)
                    if os.path.isfile(source):
                        atomic_write(os.path.join(output, name),
                                     lambda temporary, source=source: shutil.copyfile(source, temporary))
        if resume is not None:
            recover_best(output, resume["loop"].get("best_epoch"))
    except BaseException:
        lock.release()
        raise
    return lock


def check_memory(config: dict, n_items: int, device) -> None:
    """Refuse a setting whose estimated memory (``asrec.memory``: parameters, gradients, Adam
    state, one batch's activations) exceeds what ``device`` has available, naming the sizes."""
    from ..memory import check_fits, estimate_memory

    sizes = ("max_seq_length", "hidden_size", "n_layers", "n_heads", "inner_size", "batch_size", "eval_batch_size")
    estimate = estimate_memory(n_items, *(config[k] for k in sizes[:5]), batch_size=config["batch_size"],
                               eval_batch_size=config["eval_batch_size"])
    flags = ", ".join(f"--{k.replace('_', '-')} {config[k]}" for k in sizes)
    items = f" with {n_items - 1} items" if n_items > 2 else ""  # 2: the check before the data is loaded
    check_fits(estimate.total, device, flags + items, estimate.describe())


def _default_output(dataset_name) -> str:
    return fresh_run_folder(dataset_name or "data")


def main_process_first(runtime, fn):
    """``fn()`` on the main process, then on the others (so they read the cache the main one
    filled); an error on the main process ends every process with its message."""
    from ..data.download import DatasetDownloadError
    from .distributed import all_gather_objects

    result = error = None
    if runtime.is_main:
        try:
            result = fn()
        except (CommandError, OSError, ValueError, DatasetDownloadError) as caught:
            error = caught
    message = all_gather_objects(None if error is None else str(error), runtime)[0]
    if error is not None:
        raise error
    if message is not None:
        raise CommandError(message)
    return result if runtime.is_main else fn()


def _load_data(args, config, runtime, resume) -> tuple:
    from ..data import load_dataset

    synthetic = dict(n_users=args.synthetic_users, n_items=args.synthetic_items)
    try:
        data, dataset_name, source = main_process_first(runtime, lambda: load_dataset(
            args.dataset, args.data_path, config["max_seq_length"], args.cache_dir, synthetic,
            min_interactions=config["min_interactions"]))
    except UnicodeDecodeError as error:  # names the file (the decoder's message names only the codec)
        what = args.data_path or f"--dataset {args.dataset}"
        raise CommandError(f"{what}: not UTF-8 text (byte {error.object[error.start:error.start + 1]!r} at offset "
                           f"{error.start}); RecBole atomic files are UTF-8") from None
    if resume is not None and resume.get("dataset") not in (None, data.statistics()):
        raise CommandError(f"--resume: the run's data {source} has changed since the run began (then "
                           f"{resume['dataset']}, now {data.statistics()})")
    if resume is not None and resume.get("data_fingerprint") is not None:  # absent from runs before it was added
        from .fingerprint import data_fingerprint, fingerprint_changes
        changes = fingerprint_changes(resume["data_fingerprint"], data_fingerprint(data))
        if changes:
            raise CommandError(f"--resume: the run's data {source} has changed since the run began, with the same "
                               f"statistics: {'; '.join(changes)}; restore the run's data or start a new run")
    if not len(data.valid) or not len(data.test):
        raise CommandError(f"{source}: no user has the 3 interactions a validation and a test sample need "
                           f"({data.statistics()})")
    return data, dataset_name, source


def main(parser: argparse.ArgumentParser, args) -> int:
    """``asrec train``; SIGTERM stops it as Ctrl-C does (exit status 143 instead of 130)."""
    try:
        with sigterm_as_interrupt():
            return _main(parser, args)
    except Terminated:  # before the run folder was used: nothing to continue
        if os.environ.get("ASREC_DEBUG"):
            raise
        print("\nasrec train: terminated (SIGTERM)", file=sys.stderr)
        return 143


def _main(parser: argparse.ArgumentParser, args) -> int:
    from ..data.load import find_inter_file, infer_dataset_name
    from .distributed import all_gather_objects, setup, teardown
    from .loop import format_results, train

    _validate(parser, args)
    resume, resumed_from = _load_resume(args) if args.resume else (None, None)
    if args.data_path is not None:
        if not os.path.exists(args.data_path):
            raise CommandError(f"--data-path: {args.data_path} does not exist")
        args.data_path = os.path.abspath(args.data_path)  # the run folder records it for --resume from anywhere
    if args.dataset == "synthetic":
        for name, default in SYNTHETIC_DEFAULTS.items():
            setattr(args, name, default if getattr(args, name) is None else getattr(args, name))
    if args.cache_dir is not None:
        try:
            os.makedirs(args.cache_dir, exist_ok=True)
        except OSError as error:
            raise CommandError(f"--cache-dir: cannot create {args.cache_dir} ({error.strerror or error})") from None
    dataset_name, data_file = args.dataset, None
    if resume is None and args.data_path is not None:
        data_file = find_inter_file(args.data_path, args.dataset)
        dataset_name = dataset_name or infer_dataset_name(data_file)
    config = resume["config"] if resume else resolve_config(parser, args, dataset_name, data_file)
    autocast_dtype = AUTOCAST[config["dtype"]]
    runtime = setup(args.device)
    lock = None
    try:
        if autocast_dtype is not None and runtime.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise CommandError(f"--dtype {config['dtype']}: this GPU does not support bfloat16")
        log = print if runtime.is_main else (lambda *a, **k: None)
        check_memory(config, 2, runtime.device)  # before the data: absurd sizes refused at once
        output = args.output or resumed_from or _default_output(dataset_name)
        output = all_gather_objects(output, runtime)[0]
        # every refusal before anything is written: the folder's state, the data, the memory; then the lock
        main_process_first(runtime, lambda: check_output(output, resumed_from) if runtime.is_main else None)
        data, dataset_name, source = _load_data(args, config, runtime, resume)
        check_memory(config, data.n_items + 1, runtime.device)
        lock = main_process_first(runtime, lambda: prepare_output(output, resumed_from, resume)
                                  if runtime.is_main else None)
        config.update(dataset=args.dataset or dataset_name, data_path=args.data_path,
                      synthetic_users=args.synthetic_users, synthetic_items=args.synthetic_items)
        if runtime.is_main:
            from .checkpoints import atomic_write_json
            atomic_write_json(os.path.join(output, "config.json"), config)
            from ..serve.run_data import write_run_data
            from .fingerprint import data_fingerprint
            write_run_data(output, data, data_fingerprint(data))  # id maps and histories, for asrec recommend
        log(f"data: {source}\nstatistics: {json.dumps(data.statistics())}\nrun folder: {output}  "
            f"device: {runtime.device} x {runtime.world_size}  preset: {config['preset']}")
        note = resume_note(resume, config) if resume is not None else None
        if note is not None:
            log(note)
        try:
            results = train(config, data, runtime, output, resume, autocast_dtype, log,
                            progress_stream=None if args.quiet else sys.stderr,
                            cuda_graphs=not args.no_cuda_graphs)
        except KeyboardInterrupt as stop:
            if os.environ.get("ASREC_DEBUG"):
                raise
            terminated = isinstance(stop, Terminated)
            if runtime.is_main:
                finished = os.path.exists(os.path.join(output, "last.pt"))
                print(f"\nasrec train: {'terminated (SIGTERM)' if terminated else 'interrupted'}; "
                      + (f"continue with: asrec train --resume {output}" if finished else "no epoch had finished"),
                      file=sys.stderr)
            return 143 if terminated else 130
        log(format_results(results))
    finally:
        if lock is not None:
            lock.release()
        teardown(runtime)
    return 0
