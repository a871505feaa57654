"""What every leaf op's fused plumbing shares: the custom-op wrapper, the argument checks
that decide whether a kernel takes a call, and the dropout RNG state of a call.

The Triton launchers of ``asrec.kernels`` become ``torch.library`` custom ops (namespace
``asrec``) with fake (shape-only) implementations, so ``torch.compile`` traces the
autograd Functions into one graph without breaking at a kernel launch, and
``torch.library.opcheck`` can test the registrations. The ops take tensors and scalars
only: a call's dropout RNG state travels as a (2,) int64 tensor ``rng = (seed, offset)`` on
the input's device, which the kernels read (see ``dropout_rng``).
"""

import contextvars
import functools

import torch

KERNEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class CustomOp:
    """A Triton launcher registered as the custom op ``name``, which eager code calls directly.

    Under ``torch.compile`` the registered op is called (an opaque node with its fake
    implementation); in eager mode the launcher runs without the dispatcher's Python
    custom-op path, pure host overhead here. Both run it under the CUDA device of its first
    argument, so a tensor on ``cuda:1`` never launches on the current device instead.
    """

    def __init__(self, name: str, launcher):
        @functools.wraps(launcher)  # the op's schema is read from the launcher's signature
        def on_input_device(*args):
            device = args[0].device
            if device.type != "cuda":
                return launcher(*args)
            with torch.cuda.device(device):
                return launcher(*args)

        self.launcher = on_input_device
        self.op = torch.library.custom_op(name, on_input_device, mutates_args=())

    def register_fake(self, fake):
        self.op.register_fake(fake)
        return fake

    def __call__(self, *args):
        if torch.compiler.is_compiling():
            return self.op(*args)
        return self.launcher(*args)


def custom_op(name: str):
    """Decorator: the launcher below becomes ``CustomOp(name, launcher)``."""
    return lambda launcher: CustomOp(name, launcher)


def unsupported_tensors(**tensors: torch.Tensor):
    """None if every named tensor has a kernel dtype and all share one device, else the reason."""
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        listing = ", ".join(f"{name} on {t.device}" for name, t in tensors.items())
        return f"tensors must share one device, got {listing}"
    for name, tensor in tensors.items():
        if tensor.dtype not in KERNEL_DTYPES:
            return (f"{name}: the fused kernels take float32, bfloat16 or float16, got {tensor.dtype} "
                    f"(use the 'reference' backend for float64)")
    return None


# rows of one draw that dropout_rng hands out inside shared_dropout_draw (a model forward makes
# 1 + 5 * n_layers dropping calls: one draw covers six layers)
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
    states instead of one draw each: one kernel per forward instead of 1 + 5 * n_layers. The
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


def check_tensors(op: str, **named) -> None:
    """Each named argument must be a tensor (a list or array is a TypeError naming it, not an
    AttributeError from deep inside)."""
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")


def check_tensor_list(op: str, name: str, values, length=None) -> None:
    """``values`` must be a list or tuple of ``length`` tensors (None: any number but none)."""
    is_list = isinstance(values, (list, tuple))
    if not is_list or (len(values) != length if length is not None else not values):
        wanted = f"a list of {length} tensors" if length is not None else "a non-empty list of tensors"
        raise TypeError(f"{op}: {name} must be {wanted}, got {type(values).__name__}"
                        + (f" of length {len(values)}" if is_list else ""))
    check_tensors(op, **{f"{name}[{i}]": v for i, v in enumerate(values)})


def check_dropout(op: str, dropout_p: float) -> None:
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p!r}")


def check_norm(op: str, hidden: int, **tensors: torch.Tensor) -> None:
    """Each named LayerNorm weight or bias must be (hidden,)."""
    for name, tensor in tensors.items():
        if tensor.shape != (hidden,):
            raise ValueError(f"{op}: {name} must be ({hidden},), got {tuple(tensor.shape)}")


def smoothing_logit_grad(dalpha_parts: torch.Tensor, smoothing_logit: torch.Tensor) -> torch.Tensor:
    """The smoothing logit's gradient from partial sums of d/d alpha (alpha = sigmoid(logit)), float32."""
    alpha = torch.sigmoid(smoothing_logit.float())
    return (dalpha_parts.sum() * alpha * (1.0 - alpha)).reshape(smoothing_logit.shape)


# ---- which shapes the CUDA kernels take (mirrors the shared-memory sizes of csrc/) ----

FLOAT_BYTES = 4
CUDA_BLOCK_WARPS = 8  # kBlockWarps in csrc/common/device.cuh


def unsupported_cuda_shared_memory(what: str, needed: int, device: torch.device, seq_len: int, hidden: int):
    """None if a block needing ``needed`` bytes of shared memory fits ``device``, else why not."""
    if device.type != "cuda":
        return None  # the device check comes first in the dispatch
    properties = torch.cuda.get_device_properties(device)
    limit = getattr(properties, "shared_memory_per_block_optin", 99 * 1024)
    if needed > limit:
        return (f"the CUDA {what} needs {needed} bytes of shared memory per block at seq_len={seq_len}, "
                f"hidden={hidden}; this device allows {limit}")
    return None
