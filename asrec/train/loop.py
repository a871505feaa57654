"""The training loop of ``asrec train``: Adam, CE over all items, validation every epoch,
early stopping on valid Hit@20 (RecBole's rule: a tie counts as an improvement; stop after
``patience`` + 1 evaluations without one), best and last checkpoints, resume, DDP."""

import json
import math
import os
import time

import numpy as np
import torch
from torch import nn

from ..data.preprocess import SequentialData, padded_batch
from ..distributed_filter import distributed_filter
from ..errors import CommandError
from ..graphs import GraphedScores, GraphedTrainStep
from ..model import ASRecModel
from . import checkpoints
from .batches import batch_to_device
from .distributed import Runtime, all_gather_objects, barrier
from .evaluate import evaluate
from .fingerprint import data_fingerprint
from .optimizer_layout import LAYOUT_KEY, load_optimizer_state, optimizer_parameter_names
from .presets import MODEL_KEYS
from .progress import Progress

VALID_METRIC = "hit@20"


class TrainingDiverged(CommandError):
    """The training loss became NaN or infinite."""


class _LossModule(nn.Module):
    """DDP wraps a module's forward; this forward is the model's loss."""

    def __init__(self, model: ASRecModel):
        super().__init__()
        self.model = model

    def forward(self, item_seq, item_seq_len, targets):
        return self.model.loss(item_seq, item_seq_len, targets)


def _rank_batches(n_samples: int, batch_size: int, epoch_seed: int, runtime: Runtime) -> list:
    """This rank's share of each global batch of one shuffled epoch (the same shuffle on every
    rank) and the share's loss weight ``len(share) * world_size / len(batch)``: DDP averages the
    ranks' gradients, so the weights make the step the gradient of the whole batch's mean loss
    even when the shares differ in size. A rank whose share of a short last batch is empty
    trains on the batch's first sample with weight 0, so that it still joins the all-reduce.
    With one process every weight is 1."""
    order = np.random.default_rng(epoch_seed).permutation(n_samples)
    shares = []
    for start in range(0, n_samples, batch_size):
        batch = order[start:start + batch_size]
        share = batch[runtime.rank::runtime.world_size]
        if len(share):
            shares.append((share, len(share) * runtime.world_size / len(batch)))
        else:
            shares.append((batch[:1], 0.0))
    return shares


def batch_shares(n_samples: int, batch_size: int, world_size: int) -> list:
    """Per batch of an epoch, the number of its samples each rank holds (``_rank_batches``'s
    deal, rank order, 0 for an empty share): host integers known before the epoch, which the
    filter's whole-batch threshold (``asrec.distributed_filter``) needs without a device read."""
    return [tuple(len(range(r, min(batch_size, n_samples - start), world_size)) for r in range(world_size))
            for start in range(0, n_samples, batch_size)]


def process_seed(seed: int, rank: int) -> int:
    """The torch seed of process ``rank`` > 0 of a multi-process run (rank 0 keeps ``seed``)."""
    return (seed * 1_000_003 + rank) % 2**63


def _rng_state(runtime: Runtime) -> dict:
    return dict(torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state(runtime.device) if runtime.device.type == "cuda" else None)


def _restore_rng(saved: dict, runtime: Runtime, fallback_seed: int) -> None:
    """This process's RNG state from ``last.pt``; a process the saved run did not have (a
    resume with more processes) is seeded from ``fallback_seed``."""
    processes = saved.get("processes") or [saved]
    if runtime.rank >= len(processes):
        torch.manual_seed(fallback_seed)
        return
    torch.set_rng_state(processes[runtime.rank]["torch"])
    if runtime.device.type == "cuda" and processes[runtime.rank].get("cuda") is not None:
        torch.cuda.set_rng_state(processes[runtime.rank]["cuda"], runtime.device)


def _make_capturable(optimizer: torch.optim.Optimizer, capturable: bool) -> None:
    """A loaded optimizer state keeps the saved run's ``capturable``; graphed steps need it on,
    with Adam's step counts on the parameters' device."""
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        if capturable:
            for p in group["params"]:
                state = optimizer.state.get(p, {})
                if torch.is_tensor(state.get("step")):
                    state["step"] = state["step"].to(device=p.device, dtype=torch.float32)


def train(config: dict, data: SequentialData, runtime: Runtime, output_dir: str, resume: dict = None,
          autocast_dtype=None, log=print, progress_stream=None, cuda_graphs: bool = True) -> dict:
    """Train and evaluate; returns the final results (also written to ``results.json``).

    cuda_graphs: on one CUDA device, replay each full training batch and evaluation batch
    from a CUDA graph (``asrec.graphs``); the last, shorter batches run eagerly. Several
    processes (DDP) run eagerly."""
    torch.manual_seed(config["seed"])
    model_kwargs = {k: config[k] for k in MODEL_KEYS}
    model = ASRecModel(n_items=data.n_items + 1, filter_scope=config.get("filter_scope", "batch"),
                       **model_kwargs).to(runtime.device)
    model.check_values = False  # ids and lengths are valid by construction of the dataset
    if runtime.rank:  # each process draws its own dropout masks (the weights are rank 0's: DDP broadcasts them)
        torch.manual_seed(process_seed(config["seed"], runtime.rank))
    ddp = nn.parallel.DistributedDataParallel(_LossModule(model)) if runtime.distributed else None
    graphed = cuda_graphs and runtime.device.type == "cuda" and not runtime.distributed
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"],
                                 capturable=graphed)
    state = dict(epoch=0, best=-math.inf, best_epoch=None, bad_epochs=0, history=[])
    if resume is not None:
        model.load_state_dict(resume["state_dict"])
        layout = load_optimizer_state(optimizer, model, resume)  # converts an earlier parameter layout's state
        if layout != "current" and runtime.is_main:
            log(f"converted the checkpoint's optimizer state from the parameter layout {layout}")
        _make_capturable(optimizer, graphed)
        state = resume["loop"]
        _restore_rng(resume["rng"], runtime, process_seed(config["seed"] + state["epoch"], runtime.rank))
        log(f"resumed after epoch {state['epoch']} (best {VALID_METRIC} {state['best']:.4f})")
    train_step = GraphedTrainStep(model, optimizer, autocast_dtype=autocast_dtype, graphs=graphed)  # one process
    scorer = GraphedScores(model, autocast_dtype, graphs=graphed)
    dataset_stats = data.statistics()
    fingerprint = data_fingerprint(data)  # --resume refuses other data
    if runtime.is_main:
        write_log(output_dir, state["history"])  # a resumed run's log is its checkpoint's history
    stop = state["bad_epochs"] > config["patience"]
    while state["epoch"] < config["epochs"] and not stop:
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        batches = _rank_batches(len(data.train), config["batch_size"], config["seed"] + epoch, runtime)
        deals = batch_shares(len(data.train), config["batch_size"], runtime.world_size)
        if config.get("steps_per_epoch") is not None:  # a sampled epoch: the first batches of this epoch's shuffle
            batches = batches[:config["steps_per_epoch"]]
        bar = Progress(len(batches), f"epoch {epoch}", enabled=runtime.is_main and progress_stream is not None,
                       stream=progress_stream)
        model.train()
        loss_sum, seen = torch.zeros((), dtype=torch.float64, device=runtime.device), 0
        for step, (index, weight) in enumerate(batches, 1):
            seq, length, target = batch_to_device(padded_batch(data.items, data.train, index, data.max_seq_length),
                                                  runtime.device)
            if ddp is None:
                loss = train_step(seq, length, target)  # a graph's static buffer: read before the next step
            else:
                # the filter's threshold over the whole batch: one all-gather per filter call
                # (asrec.distributed_filter), in training steps only (evaluation deals whole batches)
                with (torch.autocast(runtime.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None),
                      distributed_filter(deals[step - 1])):
                    loss = ddp(seq, length, target)
                optimizer.zero_grad(set_to_none=True)
                (loss * weight).backward()
                optimizer.step()
            if weight:
                loss_sum += loss.detach().double() * len(index)  # stays on the device: no sync per step
                seen += len(index)
            if bar.due(step):
                elapsed = time.perf_counter() - started
                bar.update(step, loss=f"{loss_sum.item() / seen:.4f}",
                           **{"seq/s": f"{seen * runtime.world_size / max(elapsed, 1e-9):.0f}"})
        bar.close()
        train_seconds = time.perf_counter() - started
        totals = all_gather_objects((loss_sum.item(), seen), runtime)
        trained = sum(t[1] for t in totals)  # sequences, every rank's (fewer than the epoch's with --steps-per-epoch)
        train_loss = sum(t[0] for t in totals) / max(1, trained)
        if not math.isfinite(train_loss):
            kept = f"{output_dir} keeps epoch {epoch - 1}" if epoch > 1 else f"no epoch was saved in {output_dir}"
            raise TrainingDiverged(f"epoch {epoch}: the training loss is {train_loss} (training diverged); {kept}; "
                                   f"start again with a lower --learning-rate (was {config['learning_rate']})")
        valid = evaluate(model, data, "valid", config["eval_batch_size"], runtime, autocast_dtype, scorer)
        improved = valid[VALID_METRIC] >= state["best"]
        if improved:
            state.update(best=valid[VALID_METRIC], best_epoch=epoch, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        stop = state["bad_epochs"] > config["patience"]
        record = dict(epoch=epoch, train_loss=train_loss, train_steps=len(batches), train_seconds=train_seconds,
                      epoch_seconds=time.perf_counter() - started,
                      train_sequences_per_s=trained / train_seconds,
                      valid={k: valid[k] for k in sorted(valid)}, best_epoch=state["best_epoch"])
        state["epoch"] = epoch
        state["history"].append(record)
        rng = all_gather_objects(_rng_state(runtime), runtime)
        if runtime.is_main:
            if improved:
                checkpoints.save_best(output_dir, model, epoch, valid, dataset_stats)
            checkpoints.save_last(output_dir, dict(
                model_config=model.config, state_dict=model.state_dict(), optimizer=optimizer.state_dict(),
                **{LAYOUT_KEY: optimizer_parameter_names(model, optimizer)},
                loop=state, config=config, dataset=dataset_stats, data_fingerprint=fingerprint,
                rng=dict(rng[0], processes=rng)))
            if improved:
                checkpoints.commit_best(output_dir)
            write_log(output_dir, state["history"])
            log(f"epoch {epoch}: loss {train_loss:.4f}  valid {VALID_METRIC} {valid[VALID_METRIC]:.4f}  "
                f"ndcg@20 {valid['ndcg@20']:.4f}  ({record['epoch_seconds']:.1f} s)"
                + ("  *best*" if improved else f"  ({state['bad_epochs']} without improvement)"))
        barrier(runtime)
    return finish(model, data, runtime, output_dir, config, state, autocast_dtype, log, scorer)


def finish(model, data, runtime, output_dir, config, state, autocast_dtype, log, scorer=None) -> dict:
    """Reload the best weights, evaluate valid and test, write ``results.json``."""
    best_path = os.path.join(output_dir, "best.pt")
    if state["best_epoch"] is None:
        raise checkpoints.CheckpointError(f"{output_dir}: no epoch has finished with a valid {VALID_METRIC}: "
                                          "nothing to evaluate")
    best = checkpoints.load_best(best_path)
    if best["epoch"] != state["best_epoch"]:
        raise checkpoints.CheckpointError(
            f"{best_path} holds epoch {best['epoch']}, but the run's last.pt names epoch {state['best_epoch']} as the "
            "best: the two files come from different runs")
    model.load_state_dict(best["state_dict"])
    valid = evaluate(model, data, "valid", config["eval_batch_size"], runtime, autocast_dtype, scorer)
    test = evaluate(model, data, "test", config["eval_batch_size"], runtime, autocast_dtype, scorer)
    epoch_times = [r["epoch_seconds"] for r in state["history"]]
    results = dict(best_epoch=state["best_epoch"], epochs_run=state["epoch"], valid=valid, test=test,
                   mean_epoch_seconds=float(np.mean(epoch_times)) if epoch_times else None,
                   dataset=data.statistics(), config=config, world_size=runtime.world_size)
    if runtime.is_main:
        checkpoints.atomic_write_json(os.path.join(output_dir, "results.json"), results)
    return results


def write_log(output_dir: str, history: list) -> None:
    """``log.jsonl``: one line per finished epoch, rewritten whole from the checkpoint's history."""
    checkpoints.atomic_write_text(os.path.join(output_dir, "log.jsonl"), "".join(json.dumps(r) + "\n" for r in history))


def format_results(results: dict) -> str:
    keys = [f"{m}@{k}" for m in ("hit", "ndcg", "mrr") for k in (1, 5, 10, 20)]
    lines = [f"best epoch {results['best_epoch']} of {results['epochs_run']}; "
             f"{results['mean_epoch_seconds']:.1f} s per epoch (train + validation)",
             f"{'metric':<10} {'valid':>8} {'test':>8}"]
    lines += [f"{k:<10} {results['valid'][k]:>8.4f} {results['test'][k]:>8.4f}" for k in keys]
    return "\n".join(lines)
