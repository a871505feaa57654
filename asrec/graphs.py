"""CUDA-graphed training steps and evaluation for ``ASRecModel``.

A training step on the Triton backend is 96 kernel launches (58 Triton + 38 aten at both
published settings; ``benchmarks/count_launches.py``), an eval forward 32; at the published
batch sizes the host takes longer to launch them than the GPU takes to run them. A CUDA
graph replays the whole step with one launch. That is possible
because a step does no host work (DESIGN.md: no syncs, no per-call host-to-device copies,
dropout seeds read by the kernels from device tensors drawn from torch's graph-safe
generator, so every replay draws fresh masks).

``GraphedTrainStep``: zero_grad + forward + loss + backward + optimizer step, captured once
per (batch shape, index dtypes, backend, float32 matmul precision, autocast dtype) into static input buffers;
``GraphedScores``: ``full_sort_scores`` under ``no_grad`` likewise. Each follows PyTorch's
recipe (torch.cuda.graphs docs, "whole network capture"): warm-up iterations on a side
stream, then capture. Warm-up runs real steps, so the model's parameters, the optimizer's
state and the device RNG state are saved before and restored after capture: graphing
changes no training result. Only the batch sizes in ``capture_batch_sizes`` are captured
(default: the first call's, the full batch); any other call (the last partial batch: the
batch-wide filter threshold forbids padding it) runs eagerly, as do all calls off CUDA.

The model must be built with ``check_values=False`` (its range checks read the data on the
host) and the optimizer with ``capturable=True`` (Adam/AdamW keep their step count on
the device then); a float learning rate is baked into the graph at capture (a scheduler
needs ``lr`` as a tensor). Outputs are static buffers, overwritten by the next replay of
the same graph: read or copy them before the next call.

    step = GraphedTrainStep(model, torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True))
    for item_seq, item_seq_len, targets in batches:     # CUDA tensors
        loss = step(item_seq, item_seq_len, targets)    # (), the step's loss
    scores = GraphedScores(model)(item_seq, item_seq_len)  # (batch, n_items)
"""

import contextlib
from collections.abc import Callable, Iterable
from typing import Optional

import torch

from . import backends

WARMUP_ITERATIONS = 3  # PyTorch's recipe; also builds every cached constant (DFT bases) before capture


def _key(tensors, *settings) -> tuple:
    """What a captured graph is specific to: the inputs' shapes, dtypes and devices, the backend,
    the float32 matmul precision (the kernels' products follow it at launch, DOT_PRECISION, as do
    cuBLAS and cuDNN: a graph captured under "highest" would replay IEEE products under "high")
    and the caller's settings."""
    return (tuple((tuple(t.shape), t.dtype, t.device) for t in tensors), backends.selected_backend(),
            torch.get_float32_matmul_precision(), *settings)


def _check_model(model: torch.nn.Module, owner: str) -> None:
    if getattr(model, "check_values", False):
        raise ValueError(f"{owner}: build the model with check_values=False (the id and length range checks read "
                         "values on the host, which a CUDA graph cannot capture; validate the data beforehand)")


def _on_cuda(model: torch.nn.Module) -> bool:
    """Whether the model's parameters live on CUDA (where calls may replay graphs)."""
    return any(p.device.type == "cuda" for p in model.parameters())


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    if dtype is None:
        return contextlib.nullcontext()
    # the autocast weight-cast cache would keep casts made during capture alive across replays
    return torch.autocast(device.type, dtype=dtype, cache_enabled=False)


class _SavedTraining:
    """The model's parameters and buffers, the optimizer's state and the device RNG state, kept
    aside while warm-up steps run and put back in place (same tensors) afterwards."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device):
        self.model_state = [(t, t.detach().clone()) for t in list(model.parameters()) + list(model.buffers())]
        self.optimizer_state = {id(p): {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
                                for p, state in optimizer.state.items()}
        self.rng = torch.cuda.get_rng_state(device)
        self.device = device

    def restore(self, optimizer: torch.optim.Optimizer) -> None:
        with torch.no_grad():
            for tensor, saved in self.model_state:
                tensor.copy_(saved)
            for p, state in optimizer.state.items():
                before = self.optimizer_state.get(id(p))
                for name, value in state.items():
                    if not torch.is_tensor(value):
                        continue
                    if before is None:  # a state born in warm-up goes back to its fresh value: zero moments, step 0
                        value.zero_()
                    else:
                        value.copy_(before[name])
        torch.cuda.set_rng_state(self.rng, self.device)


def _warm_up(device: torch.device, run: Callable, static: tuple) -> None:
    """PyTorch's capture recipe: a few eager calls on a side stream before capturing."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(WARMUP_ITERATIONS):
            run(*static)
    torch.cuda.current_stream(device).wait_stream(side)


def _default_loss(model, item_seq, item_seq_len, targets):
    return model.loss(item_seq, item_seq_len, targets)


class GraphedTrainStep:
    """One optimizer step of ``model`` per call, replayed from a CUDA graph where captured.

    ``step(item_seq, item_seq_len, targets) -> loss``: item_seq (batch, N) ids, item_seq_len
    (batch,), targets (batch,), on the model's CUDA device. ``loss_fn(model, item_seq,
    item_seq_len, targets) -> ()`` defaults to ``model.loss``. ``autocast_dtype`` (e.g.
    torch.bfloat16) runs forward and loss under autocast. Returns the step's loss: a static
    () buffer on a replay (overwritten by the next replay of that shape), a fresh tensor on
    an eager step. ``graphs=False`` runs every step eagerly (the same code path). A replay's
    gradients live in its graph's buffers (the parameters' ``.grad`` after the last capture):
    read the loss, not ``.grad``, between steps.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable = _default_loss,
                 autocast_dtype: Optional[torch.dtype] = None, graphs: bool = True,
                 capture_batch_sizes: Optional[Iterable[int]] = None):
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        if graphs and _on_cuda(model):  # off CUDA every step runs eagerly: any optimizer, any check_values
            self._check_capturable()
        self.autocast_dtype = autocast_dtype
        self.graphs = graphs
        self.capture_batch_sizes = None if capture_batch_sizes is None else set(capture_batch_sizes)
        self._captured = {}  # key -> (graph, static inputs, static loss)

    def _eager(self, item_seq, item_seq_len, targets) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with _autocast(item_seq.device, self.autocast_dtype):
            loss = self.loss_fn(self.model, item_seq, item_seq_len, targets)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _check_capturable(self) -> None:
        if not all(group.get("capturable", False) for group in self.optimizer.param_groups):
            raise ValueError("GraphedTrainStep: the optimizer must be built with capturable=True "
                             "(e.g. torch.optim.Adam(params, lr=..., capturable=True)) to replay steps on CUDA; "
                             "or pass graphs=False")
        _check_model(self.model, "GraphedTrainStep")

    def _capture(self, key, item_seq, item_seq_len, targets):
        self._check_capturable()  # the model may have moved to CUDA since the constructor
        device = item_seq.device
        static = tuple(t.clone() for t in (item_seq, item_seq_len, targets))
        saved = _SavedTraining(self.model, self.optimizer, device)
        _warm_up(device, self._eager, static)
        # grads set to None: backward in the capture allocates them in the graph's pool and
        # writes (not accumulates) them, so every replay starts from zero gradients
        self.optimizer.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            with _autocast(device, self.autocast_dtype):
                static_loss = self.loss_fn(self.model, *static)
            static_loss.backward()
            self.optimizer.step()
        saved.restore(self.optimizer)
        self._captured[key] = (graph, static, static_loss.detach())

    @property
    def captured(self) -> int:
        """How many graphs have been captured."""
        return len(self._captured)

    def __call__(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not self.graphs or item_seq.device.type != "cuda":
            return self._eager(item_seq, item_seq_len, targets)
        if self.capture_batch_sizes is None:
            self.capture_batch_sizes = {item_seq.shape[0]}
        # training mode in the key: a graph replays the dropout (or not) of its capture
        key = _key((item_seq, item_seq_len, targets), self.autocast_dtype, self.model.training)
        if key not in self._captured:
            if item_seq.shape[0] not in self.capture_batch_sizes:
                return self._eager(item_seq, item_seq_len, targets)
            self._capture(key, item_seq, item_seq_len, targets)
        graph, static, static_loss = self._captured[key]
        for buffer, value in zip(static, (item_seq, item_seq_len, targets)):
            buffer.copy_(value, non_blocking=True)
        graph.replay()
        return static_loss

    def eager(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The same step without a graph (the fallback for shapes not captured)."""
        return self._eager(item_seq, item_seq_len, targets)


class GraphedScores:
    """``model.full_sort_scores`` under ``no_grad`` in eval mode, replayed from a CUDA graph
    per (batch shape, index dtypes, backend, autocast dtype).

    ``scores(item_seq, item_seq_len) -> (batch, n_items)``: a static buffer on a replay,
    overwritten by the next call of that shape. The model must be in eval mode when called.
    """

    def __init__(self, model: torch.nn.Module, autocast_dtype: Optional[torch.dtype] = None, graphs: bool = True,
                 capture_batch_sizes: Optional[Iterable[int]] = None):
        if graphs and _on_cuda(model):  # off CUDA every call runs eagerly
            _check_model(model, "GraphedScores")
        self.model = model
        self.autocast_dtype = autocast_dtype
        self.graphs = graphs
        self.capture_batch_sizes = None if capture_batch_sizes is None else set(capture_batch_sizes)
        self._captured = {}

    @property
    def captured(self) -> int:
        """How many graphs have been captured."""
        return len(self._captured)

    def _eager(self, item_seq, item_seq_len) -> torch.Tensor:
        with torch.no_grad(), _autocast(item_seq.device, self.autocast_dtype):
            return self.model.full_sort_scores(item_seq, item_seq_len)

    def __call__(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> torch.Tensor:
        if self.model.training:
            raise ValueError("GraphedScores: call model.eval() first (scores are taken without dropout)")
        if not self.graphs or item_seq.device.type != "cuda":
            return self._eager(item_seq, item_seq_len)
        if self.capture_batch_sizes is None:
            self.capture_batch_sizes = {item_seq.shape[0]}
        key = _key((item_seq, item_seq_len), self.autocast_dtype)
        if key not in self._captured:
            if item_seq.shape[0] not in self.capture_batch_sizes:
                return self._eager(item_seq, item_seq_len)
            _check_model(self.model, "GraphedScores")
            device = item_seq.device
            static = (item_seq.clone(), item_seq_len.clone())
            _warm_up(device, self._eager, static)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                scores = self._eager(*static)
            self._captured[key] = (graph, static, scores)
        graph, static, scores = self._captured[key]
        for buffer, value in zip(static, (item_seq, item_seq_len)):
            buffer.copy_(value, non_blocking=True)
        graph.replay()
        return scores
