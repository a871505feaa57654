"""How much memory a model setting needs, and a refusal of what cannot fit the device.

``estimate_memory`` counts, in bytes:

- the parameters and buffers, exactly (``parameter_count``; a test holds it equal to a
  built model's);
- their gradients and Adam's two moment tensors (training);
- the activations of one training step (forward kept for backward, the scores over all
  items and their gradient) and of one evaluation batch (no autograd: one layer's
  temporaries at a time and the scores). The loss and the evaluation's ranks stream the
  catalog in item tiles (``asrec.ops.linear_cross_entropy``, ``target_ranks``), so the scores
  counted are one tile's: ``min(n_items, tile)`` per sequence, not the catalog's.

The activation terms are per sequence, fitted to the peak resident memory that one step
adds on the CPU reference path (float32, ``tests/test_memory_estimate.py`` measures it in a
fresh process and holds the estimate within a factor of 2): per layer about 70 floats per
(position, hidden unit), 6 + 3 * n_heads per (position, position), 1.25 per (position,
inner unit); 3 per item score. Other backends keep fewer intermediates (fused kernels), so
the estimate is an upper figure there. bfloat16 autocast is counted as float32.

``check_fits`` compares an estimate with the memory the device has free: on the CPU the
kernel's ``MemAvailable`` (``/proc/meminfo``; else free physical pages), on CUDA
``torch.cuda.mem_get_info``. Sizes that would take thousands of layers or GiB-sized tensors
are so refused in microseconds, before anything is allocated.
"""

import os
from dataclasses import dataclass
from typing import Optional

import torch

from .reference.linear_cross_entropy import ITEM_TILE, loss_tile

CONV_KERNEL_SIZES = (3, 5, 7)  # the seasonal branch's convolutions over positions (asrec.reference.convolutions)
GIB = 2**30

# per sequence, in elements (see the module docstring)
TRAIN_PER_LAYER = dict(position_hidden=70, position_position=6, position_position_head=3, position_inner=1.25)
TRAIN_OUTSIDE_LAYERS = dict(position_hidden=5, item=3)
EVAL = dict(position_hidden=23, position_position=2, position_position_head=1, position_inner=2, item=1.5)


class MemoryTooLarge(ValueError):
    """A setting whose estimated memory exceeds what the device has available."""


def parameter_count(n_items: int, max_seq_length: int, hidden_size: int, n_layers: int, n_heads: int,
                    inner_size: int) -> int:
    """Elements of the parameters and buffers of ``ASRecModel`` with these sizes."""
    h, n, i = hidden_size, max_seq_length, inner_size
    head_pair = 2 * (h // n_heads)
    seasonal = (h * h + h + 2 * h  # dense, norm
                + sum(n * n * k + n for k in CONV_KERNEL_SIZES)  # conv_small, conv_middle, conv_large
                + 2 + 3 * n  # contrast and origin scales, position scales
                + head_pair * head_pair + head_pair  # gate
                + n_heads  # unused_head_weights (buffer)
                + 2 * h + 1)  # frequency filter: norm, threshold (buffer)
    dynamic = h * h + h + 2 * h
    layer = (6 * h * h + 6 * h  # stacked query/key/value projections of both branches
             + seasonal + dynamic + 1 + 2 * h  # branch_mix, unused norm (buffers)
             + h * i + i + i * h + h + 2 * h)  # feed forward
    return (n_items * h + n * h + 2 * h  # item and position embeddings, input norm
            + 1 + 2 * h + 2 * h  # FSM: smoothing logit, level, scale; unused norm (buffers)
            + n_layers * layer)


@dataclass
class MemoryEstimate:
    """Bytes; ``training``: the parameter state and one training step; ``evaluation``: the
    parameters and one evaluation batch."""
    parameters: int
    gradients: int
    optimizer: int
    train_activations: int
    eval_activations: int

    @property
    def training(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.train_activations

    @property
    def evaluation(self) -> int:
        return self.parameters + self.eval_activations

    @property
    def total(self) -> int:
        """The most a training run holds at once (a step, or an evaluation between steps)."""
        return max(self.training, self.parameters + self.gradients + self.optimizer + self.eval_activations)

    def describe(self) -> str:
        return (f"{gib(self.total)} (parameters {gib(self.parameters)}, their gradients and Adam state "
                f"{gib(self.gradients + self.optimizer)}, one training batch's activations "
                f"{gib(self.train_activations)}, one evaluation batch's {gib(self.eval_activations)})")


def gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.3g} GiB" if n_bytes >= GIB / 100 else f"{n_bytes / 2**20:.3g} MiB"


def _activations(coefficients: dict, n_items, n, h, n_heads, i) -> float:
    c = coefficients
    return (c.get("position_hidden", 0) * n * h + c.get("position_position", 0) * n * n
            + c.get("position_position_head", 0) * n_heads * n * n + c.get("position_inner", 0) * n * i
            + c.get("item", 0) * n_items)


def estimate_memory(n_items: int, max_seq_length: int, hidden_size: int, n_layers: int, n_heads: int,
                    inner_size: int, batch_size: int = 0, eval_batch_size: int = 0, element_size: int = 4,
                    training: bool = True) -> MemoryEstimate:
    """Bytes a setting needs (see the module docstring); ``batch_size`` 0: no training step,
    ``eval_batch_size`` 0: no evaluation; ``training`` False: no gradients or optimizer state."""
    args = (n_items, max_seq_length, hidden_size, n_heads, inner_size)
    parameters = parameter_count(n_items, max_seq_length, hidden_size, n_layers, n_heads, inner_size) * element_size
    train_args = (min(n_items, loss_tile(batch_size)), *args[1:])  # the loss's item tile
    eval_args = (min(n_items, ITEM_TILE), *args[1:])  # the ranks' item tile
    per_train = (n_layers * _activations(TRAIN_PER_LAYER, *train_args)
                 + _activations(TRAIN_OUTSIDE_LAYERS, *train_args))
    per_eval = _activations(EVAL, *eval_args)
    return MemoryEstimate(parameters=parameters, gradients=parameters if training else 0,
                          optimizer=2 * parameters if training else 0,
                          train_activations=int(per_train * batch_size * element_size) if training else 0,
                          eval_activations=int(per_eval * eval_batch_size * element_size))


def available_memory(device) -> Optional[int]:
    """Bytes free for a new allocation on ``device`` (None where it cannot be told)."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            free, _ = torch.cuda.mem_get_info(device)
        except (RuntimeError, AssertionError, ValueError):  # no CUDA here: torch names that at the allocation
            return None
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(needed: int, device, what: str, detail: str = "") -> None:
    """Raise ``MemoryTooLarge`` naming ``what`` (the setting) when ``needed`` bytes exceed what
    ``device`` has available."""
    available = available_memory(device)
    if available is not None and needed > available:
        raise MemoryTooLarge(f"{what}: needs about {detail or gib(needed)}, but {torch.device(device)} has "
                             f"{gib(available)} available; choose smaller sizes")


def check_model_parameters(n_items: int, max_seq_length: int, hidden_size: int, n_layers: int, n_heads: int,
                           inner_size: int, device=None, dtype=None) -> None:
    """``ASRecModel``'s constructor: refuse a non-floating ``dtype`` and sizes whose parameters
    alone exceed the memory ``device`` (default: torch's default device) has available, before
    any is allocated."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype: expected a floating dtype for the parameters (float32, float64, bfloat16, "
                        f"float16), got {dtype!r}")  # checked here, where the element size is taken
    device = torch.device(device) if device is not None else torch.get_default_device()
    if device.type == "meta":
        return
    element_size = torch.empty((), dtype=dtype or torch.get_default_dtype(), device="meta").element_size()
    needed = parameter_count(n_items, max_seq_length, hidden_size, n_layers, n_heads, inner_size) * element_size
    check_fits(needed, device, f"ASRecModel(n_items={n_items}, max_seq_length={max_seq_length}, "
                               f"hidden_size={hidden_size}, n_layers={n_layers}, inner_size={inner_size})",
               f"{gib(needed)} for its parameters")
