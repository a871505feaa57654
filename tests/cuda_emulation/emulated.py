"""The csrc/ CUDA kernels run on the host (block_emulator.h), behind functions with the
arguments of the ``torch.ops.asrec_cuda`` ops, for tests on machines without a GPU.

The shared library is compiled once per test session with the system C++ compiler (C++20,
a few seconds). Each function converts its inputs as the op's .cpp does and calls the
entry point that fills the kernel's argument struct as the launcher does (float32 only).
"""

import ctypes
import functools
import os
import shutil
import subprocess
import tempfile
import types

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(HERE, "..", "..", "csrc")


def compiler():
    return shutil.which("c++") or shutil.which("g++")


@functools.lru_cache(maxsize=1)
def library() -> ctypes.CDLL:
    build = tempfile.mkdtemp(prefix="asrec-emulated-")
    path = os.path.join(build, "libasrec_emulated.so")
    subprocess.run([compiler(), "-std=c++20", "-O2", "-shared", "-fPIC", "-pthread", "-Wall", "-Werror", "-Wno-unknown-pragmas",
                    f"-I{CSRC}", os.path.join(HERE, "kernels_on_host.cpp"), "-o", path], check=True)
    lib = ctypes.CDLL(path)
    f, i, u64, p = ctypes.c_float, ctypes.c_int, ctypes.c_uint64, ctypes.c_void_p
    lib.emulated_dropout_factor.argtypes = [u64, u64, f]
    lib.emulated_dropout_factor.restype = f
    lib.emulated_dropout_factor_at.argtypes = [p, u64, f]
    lib.emulated_dropout_factor_at.restype = f
    stage = [p] * 8
    lib.emulated_input_stage_fwd.argtypes = stage + [p, i, i, i, f, p, f, i, f, f]
    lib.emulated_input_stage_bwd.argtypes = stage + [p, p, p, i, i, i, f, p, f, i, f, f]
    lib.emulated_frequency_energy.argtypes = [p, p, i, i, i]
    lib.emulated_frequency_filter_fwd.argtypes = [p, p, p, p, p, i, i, i, f, p, f, i]
    lib.emulated_frequency_filter_bwd.argtypes = [p, p, p, p, p, p, p, i, i, i, f, p, f, i]
    return lib


def _ptr(tensor: torch.Tensor):
    return ctypes.c_void_p(tensor.data_ptr())


def _f32(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to(torch.float32).contiguous()


def _rng(rng: torch.Tensor, dropping: bool):
    """The kernels' pointer to the (2,) int64 (seed, offset) state, as the op's .cpp checks it
    (null when not dropping: the kernels do not read it)."""
    if not dropping:
        return None
    assert rng.dtype == torch.int64 and rng.shape == (2,) and rng.is_contiguous(), rng
    return _ptr(rng)


def _stage_inputs(item_seq, item_weight, position_weight, norm_weight, norm_bias, logit, level, scale):
    seq_len = item_seq.shape[1]
    return [item_seq.long().contiguous(), _f32(item_weight), _f32(position_weight[:seq_len]),
            *(_f32(t).reshape(-1) for t in (norm_weight, norm_bias, logit, level, scale))]


def input_stage_fwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, logit, level, scale, rng, eps,
                    dropout_p, dropping, inv_sqrt_len, mix):
    inputs = _stage_inputs(item_seq, item_weight, position_weight, norm_weight, norm_bias, logit, level, scale)
    batch, seq_len = item_seq.shape
    hidden = item_weight.shape[1]
    out = torch.empty(batch, seq_len, hidden)
    library().emulated_input_stage_fwd(*map(_ptr, inputs), _ptr(out), batch, seq_len, hidden, eps,
                                       _rng(rng, dropping), dropout_p, int(dropping), inv_sqrt_len, mix)
    return out


def input_stage_bwd(item_seq, item_weight, position_weight, norm_weight, norm_bias, logit, level, scale, grad, rng,
                    eps, dropout_p, dropping, inv_sqrt_len, mix):
    inputs = _stage_inputs(item_seq, item_weight, position_weight, norm_weight, norm_bias, logit, level, scale)
    batch, seq_len = item_seq.shape
    hidden = item_weight.shape[1]
    grad = _f32(grad)
    dembedded, parts = torch.empty(batch, seq_len, hidden), torch.empty(5, batch, hidden)
    library().emulated_input_stage_bwd(*map(_ptr, inputs), _ptr(grad), _ptr(dembedded), _ptr(parts), batch, seq_len,
                                       hidden, eps, _rng(rng, dropping), dropout_p, int(dropping), inv_sqrt_len,
                                       mix)
    return dembedded, parts


def frequency_energy(y):
    y = _f32(y)
    sequences, seq_len, hidden = y.shape
    energy = torch.empty(sequences, seq_len // 2 + 1)
    library().emulated_frequency_energy(_ptr(y), _ptr(energy), sequences, seq_len, hidden)
    return energy


def frequency_filter_fwd(y, keep, norm_weight, norm_bias, rng, eps, dropout_p, dropping):
    y, keep, weight, bias = _f32(y), _f32(keep), _f32(norm_weight), _f32(norm_bias)
    sequences, seq_len, hidden = y.shape
    out = torch.empty_like(y)
    library().emulated_frequency_filter_fwd(_ptr(y), _ptr(keep), _ptr(weight), _ptr(bias), _ptr(out), sequences,
                                            seq_len, hidden, eps, _rng(rng, dropping), dropout_p, int(dropping))
    return out


def frequency_filter_bwd(y, grad, keep, norm_weight, rng, eps, dropout_p, dropping):
    y, grad, keep, weight = _f32(y), _f32(grad), _f32(keep), _f32(norm_weight)
    sequences, seq_len, hidden = y.shape
    dy, dfiltered, parts = torch.empty_like(y), torch.empty_like(y), torch.empty(2, sequences, hidden)
    library().emulated_frequency_filter_bwd(_ptr(y), _ptr(grad), _ptr(keep), _ptr(weight), _ptr(dy), _ptr(dfiltered),
                                            _ptr(parts), sequences, seq_len, hidden, eps, _rng(rng, dropping),
                                            dropout_p, int(dropping))
    return dy, parts


def kernel_ops():
    """A stand-in for ``torch.ops.asrec_cuda`` running the emulated kernels on CPU tensors."""
    return types.SimpleNamespace(input_stage_fwd=input_stage_fwd, input_stage_bwd=input_stage_bwd,
                                 frequency_energy=frequency_energy, frequency_filter_fwd=frequency_filter_fwd,
                                 frequency_filter_bwd=frequency_filter_bwd)
