"""The CUDA extension's ops (``torch.ops.asrec_cuda.*``, built from csrc/ as ``asrec._C``),
with the fake implementations ``torch.compile`` traces them with, and thin wrappers with
the signatures of the Triton ops in ``_library`` so one autograd Function serves both.

The C++ side registers the ops and their CUDA kernels; importing ``asrec._C`` runs those
registrations. ``load()`` does that once and registers the fakes; the wrappers below are
called only after it succeeded (``asrec.backends.cuda_missing_reason`` is None).
"""

import functools
import importlib

import torch

from ..reference.fsm import smoothing_norm
from ._library import filter_keep, input_stage_grads

# The C++ ops' namespace (resolved at call time; tests swap in the host-emulated kernels of
# tests/cuda_emulation, which take the same arguments).
kernel_ops = torch.ops.asrec_cuda


@functools.lru_cache(maxsize=1)
def load():
    """None once ``asrec._C`` is imported and the fakes registered, else why it cannot be."""
    try:
        importlib.import_module("asrec._C")
    except ModuleNotFoundError as error:
        if error.name != "asrec._C":
            return f"the CUDA extension asrec._C does not load ({error})"
        return ("the CUDA extension asrec._C is not built: it builds at install time with a CUDA build of torch "
                "and a CUDA toolkit (ASREC_FORCE_CUDA_BUILD=1 pip install --no-build-isolation .; see README)")
    except ImportError as error:  # e.g. built against another torch: undefined symbols
        return f"the CUDA extension asrec._C does not load ({error}); rebuild it against this torch"
    _register_fakes()
    return None


def _register_fakes():
    def float_like(t, shape):
        return t.new_empty(shape, dtype=torch.float32)

    @torch.library.register_fake("asrec_cuda::input_stage_fwd")
    def _(item_seq, item_weight, *rest):
        return float_like(item_weight, (*item_seq.shape, item_weight.shape[1]))

    @torch.library.register_fake("asrec_cuda::input_stage_bwd")
    def _(item_seq, item_weight, *rest):
        batch, hidden = item_seq.shape[0], item_weight.shape[1]
        return float_like(item_weight, (*item_seq.shape, hidden)), float_like(item_weight, (5, batch, hidden))

    @torch.library.register_fake("asrec_cuda::frequency_energy")
    def _(y):
        return float_like(y, (y.shape[0], y.shape[1] // 2 + 1))

    @torch.library.register_fake("asrec_cuda::frequency_filter_fwd")
    def _(y, keep, norm_weight, norm_bias, seed, eps, dropout_p, dropping):
        return torch.empty_like(y)

    @torch.library.register_fake("asrec_cuda::frequency_filter_bwd")
    def _(y, grad, keep, norm_weight, seed, eps, dropout_p, dropping):
        return float_like(y, y.shape), float_like(y, (2, y.shape[0], y.shape[2]))


# ---- wrappers with the signatures of ``_library``'s Triton ops ----

def input_stage_fwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
                    smoothed_scale, seed, eps, dropout_p, dropping, mix):
    return kernel_ops.input_stage_fwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit,
                                      init_level, smoothed_scale, seed, eps, dropout_p, dropping,
                                      smoothing_norm(item_seq.shape[1]), mix)


def input_stage_bwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level,
                    smoothed_scale, grad, seed, eps, dropout_p, dropping, mix):
    """See ``_library.input_stage_bwd``: the same four float32 results."""
    dembedded, parts = kernel_ops.input_stage_bwd(
        item_seq, item_weight, position_weight, norm_weight, norm_bias, smoothing_logit, init_level, smoothed_scale,
        grad, seed, eps, dropout_p, dropping, smoothing_norm(item_seq.shape[1]), mix)
    return input_stage_grads(dembedded, parts, smoothing_logit)


def frequency_filter_fwd(y, threshold, norm_weight, norm_bias, seed, eps, dropout_p, dropping, scope):
    """y: (B, G, N, H) -> (out in y's dtype, keep (B, G, N//2 + 1) float32 0/1); see ``_library``."""
    batch, groups, seq_len, hidden = y.shape
    flat = y.reshape(batch * groups, seq_len, hidden)
    keep = filter_keep(kernel_ops.frequency_energy(flat), batch, groups, threshold, scope, seq_len)
    out = kernel_ops.frequency_filter_fwd(flat, keep.view(batch * groups, -1), norm_weight, norm_bias, seed, eps,
                                          dropout_p, dropping)
    return out.view(y.shape), keep


def frequency_filter_bwd(y, grad, keep, norm_weight, seed, eps, dropout_p, dropping):
    """-> dy (B, G, N, H) float32 and the float32 LayerNorm weight and bias gradients (H,)."""
    batch, groups, seq_len, hidden = y.shape
    dy, parts = kernel_ops.frequency_filter_bwd(
        y.reshape(-1, seq_len, hidden), grad.reshape(-1, seq_len, hidden), keep.reshape(batch * groups, -1),
        norm_weight, seed, eps, dropout_p, dropping)
    return dy.view(y.shape), parts[0].sum(0), parts[1].sum(0)


# ---- which shapes the CUDA kernels take (mirrors the shared-memory sizes of csrc/) ----

FLOAT_BYTES = 4
BLOCK_WARPS = 8  # kBlockWarps in csrc/common/device.cuh


def _shared_memory_limit(device: torch.device) -> int:
    """Bytes of shared memory one block may opt into on ``device``."""
    properties = torch.cuda.get_device_properties(device)
    return getattr(properties, "shared_memory_per_block_optin", 99 * 1024)


def _unsupported_shared_memory(what: str, needed: int, device: torch.device, seq_len: int, hidden: int):
    if device.type != "cuda":
        return None  # the device check comes first in the registry
    limit = _shared_memory_limit(device)
    if needed > limit:
        return (f"the CUDA {what} needs {needed} bytes of shared memory per block at seq_len={seq_len}, "
                f"hidden={hidden}; this device allows {limit}")
    return None


def input_stage_unsupported_shape(seq_len: int, hidden: int, device: torch.device):
    needed = FLOAT_BYTES * 2 * BLOCK_WARPS * hidden  # the backward's per-warp LayerNorm gradient sums
    return _unsupported_shared_memory("input stage", needed, device, seq_len, hidden)


def frequency_filter_unsupported_shape(seq_len: int, hidden: int, device: torch.device):
    bins = seq_len // 2 + 1
    needed = FLOAT_BYTES * (2 * seq_len + 2 * bins * hidden + 3 * BLOCK_WARPS * hidden)  # the backward, the largest
    return _unsupported_shared_memory("frequency filter", needed, device, seq_len, hidden)
