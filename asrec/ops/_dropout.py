"""The dropout RNG state of a call: a (2,) int64 Philox ``(seed, offset)`` tensor on the device,
drawn per dropping call or, inside ``shared_dropout_draw`` (a model forward), handed out from
one draw."""

import contextvars

import torch

# rows of one draw that dropout_rng hands out inside shared_dropout_draw (a model forward makes
# 1 + 4 * n_layers dropping calls: the input stage, then per layer the attention, the filter, the
# branch norms and the feed-forward block; one draw covers seven layers)
SHARED_DRAW_ROWS = 32
_shared_draw = contextvars.ContextVar("asrec_shared_dropout_draw", default=None)


class _SharedDraw:
    """Philox states of one ``torch.randint`` draw, handed out a (2,) row (a view) at a time."""

    def __init__(self):
        self.states, self.taken = None, 0

    def take(self, device: torch.device) -> torch.Tensor:
        if self.states is None or self.taken == SHARED_DRAW_ROWS or self.states.device != device:
            self.states, self.taken = _draw((SHARED_DRAW_ROWS, 2), device), 0
        self.taken += 1
        return self.states[self.taken - 1]


class shared_dropout_draw:
    """Within this block the dropping calls take their states from one draw of SHARED_DRAW_ROWS
    states instead of one draw each: one kernel per forward instead of 1 + 4 * n_layers. The
    states are the same kind (independent random 62-bit keys, drawn on the device by torch's
    generator), so nothing else changes: graph replays draw afresh, ``torch.manual_seed``
    reproduces them. Re-entering inside an active block keeps the outer draw; under
    ``torch.compile`` the block does nothing (the traced calls draw their own)."""

    def __enter__(self):
        self._token = None
        if not torch.compiler.is_compiling() and _shared_draw.get() is None:
            self._token = _shared_draw.set(_SharedDraw())
        return self

    def __exit__(self, *exc):
        if self._token is not None:
            _shared_draw.reset(self._token)
        return False


def _draw(shape: tuple, device: torch.device) -> torch.Tensor:
    return torch.randint(0, 2**62, shape, dtype=torch.int64, device=device)


def dropout_rng(device: torch.device) -> torch.Tensor:
    """A fresh Philox state for one call's counter-based dropout: a (2,) int64 tensor
    ``(seed, offset)`` on ``device``, drawn there from torch's generator of that device.

    The kernels read both words through a pointer (never a Python number): element ``i``'s
    keep bit is Philox4x32-10 under key ``seed`` at counter ``offset + i``. Forward saves the
    tensor and backward passes it back, so backward regenerates the same mask. Drawing it with
    ``torch.randint`` on the device makes it graph-safe and reproducible through PyTorch's own
    generator: no host read, no host-to-device copy; a CUDA-graph replay advances the CUDA
    generator's graph-safe Philox state (torch.cuda.graph registers it), so every replay draws
    a fresh state and fresh masks; ``torch.manual_seed`` (and ``torch.cuda.set_rng_state``,
    as checkpoints restore it) reproduces the sequence of states; under ``torch.compile`` it
    is a traced random op. Distinct calls take distinct random 62-bit keys, so their streams
    do not overlap (a collision has probability about ``calls^2 / 2^63``). One tiny kernel per
    dropping call, or per ``shared_dropout_draw`` block (a model forward).
    """
    shared = None if torch.compiler.is_compiling() else _shared_draw.get()  # (dynamo traces no ContextVar)
    if shared is not None:
        return shared.take(device)
    return _draw((2,), device)


def dropout_plan(dropout_p: float, training: bool, device: torch.device) -> tuple:
    """(dropping, rng) for one call: whether the kernels drop anything, and the (2,) int64
    ``(seed, offset)`` tensor they read when they do (``dropout_rng``; otherwise an unread
    placeholder: an allocation, no kernel)."""
    dropping = bool(training) and dropout_p > 0
    if dropping:
        return True, dropout_rng(device)
    return False, torch.empty(2, dtype=torch.int64, device=device)
