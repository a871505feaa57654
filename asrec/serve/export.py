"""A trained model's recommendations as a standalone package: ``torch.export`` of the eval
forward and the streaming top-k, compiled by AOTInductor into one ``.pt2`` file.

``torch._inductor.aoti_load_package(path)`` (torch only, no asrec) returns a callable:
``(item_seq (B, N) int64, item_seq_len (B,) int64) -> (scores (B, k) float32, item ids
(B, k) int64)``, best first, equal scores to the lower id, never the padding item 0, for
any batch size B >= 1 (N is the model's max_seq_length). It computes what
``ASRecModel.recommend(item_seq, item_seq_len, k)`` computes in eval mode; Inductor fuses
and reorders the float arithmetic, so scores agree to float32 rounding (and ids wherever
two scores are not within that rounding of each other).

With the default ``filter_scope="batch"`` the frequency filter's threshold is one quantile
over the whole batch, so a row's recommendations depend on the other rows of its call, in
the package as in eager; the package gives eager's answer for the same batch. A model
rebuilt with ``filter_scope="sequence"`` (``load_run(..., filter_scope="sequence")``)
scores each row on its own.

The package keeps the model's id and length checks as runtime assertions: an id outside
[0, n_items) or a length outside [1, N] raises a RuntimeError instead of reading out of
bounds.
"""

import copy
import numbers
import os
import warnings

import torch
from torch import nn

from .. import backends
from ..model import ASRecModel
from ..ops.top_items import top_items

DEVICES = ("cpu", "cuda")
# Why a CUDA package runs the reference ops (said where --device cuda is used): the fused
# ops would have to be registered with torch.library.triton_op to be compiled into a package.
CUDA_NOTE = ("the package runs asrec's reference ops, which Inductor compiles into its own Triton kernels: "
             "asrec's fused Triton and CUDA ops are registered with torch.library.custom_op "
             "(asrec/ops/_custom_op.py), not triton_op, so a package cannot contain them without asrec installed; "
             "this CUDA export has not been run on a GPU yet")


class _Recommender(nn.Module):
    """The exported function: the eval forward and the top-k, without the score matrix."""

    def __init__(self, model: ASRecModel, k: int):
        super().__init__()
        self.model = model
        self.k = k

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> tuple:
        return top_items(self.model(item_seq, item_seq_len), self.model.item_embedding.weight, self.k)


def _check_arguments(model, path, k, device) -> None:
    if not isinstance(model, ASRecModel):
        raise TypeError(f"model: expected an asrec.ASRecModel, got {type(model).__name__}")
    highest = model.n_items - 1
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= highest:
        raise ValueError(f"k: expected an int in [1, {highest}] (the model's real items), got {k!r}")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).endswith(".pt2"):
        raise ValueError(f"path: expected a file name ending in .pt2 (AOTInductor's package), got {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"path: {os.fspath(path)} is a folder; expected a .pt2 file name")
    if device not in DEVICES:
        raise ValueError(f"device: expected one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' asked for, but torch sees no CUDA device here (export on the machine "
                         "that will serve, or with device='cpu')")


def exported_program(model: ASRecModel, k: int, device: str = "cpu") -> torch.export.ExportedProgram:
    """``torch.export`` of the model's eval forward + top-k with a dynamic batch size, on the
    reference ops (see the module docstring). The caller's model is not changed: a copy in
    eval mode, with the id and length checks on, is traced."""
    traced = copy.deepcopy(model).to(device).eval()
    traced.check_values = True  # kept in the package as runtime assertions
    n = traced.max_seq_length
    example_seq = torch.ones(2, n, dtype=torch.int64, device=device)  # batch 2: torch specialises sizes 0 and 1
    example_len = torch.full((2,), n, dtype=torch.int64, device=device)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), backends.use_backend("reference"):
        return torch.export.export(_Recommender(traced, int(k)), (example_seq, example_len),
                                   dynamic_shapes=({0: batch}, {0: batch}))


def export_recommender(model: ASRecModel, path, k: int, device: str = "cpu") -> str:
    """Write the model's top-k recommender as an AOTInductor package at ``path`` (a ``.pt2``
    file; written whole, then renamed into place) and return the path. device "cpu" or
    "cuda" (the package runs on that device; for CUDA see ``CUDA_NOTE``). Compiling takes a
    C++ compiler and about half a minute to minutes on a small CPU."""
    _check_arguments(model, path, k, device)
    path = os.fspath(path)
    program = exported_program(model, k, device)
    metadata = {"asrec.k": str(int(k)), "asrec.n_items": str(model.n_items),
                "asrec.max_seq_length": str(model.max_seq_length),
                "asrec.filter_scope": model.config["filter_scope"], "asrec.device": device}
    partial = path[:-len(".pt2")] + ".partial.pt2"
    try:
        with warnings.catch_warnings():
            # torch's own packaging code trips its own deprecation of LeafSpec (torch 2.13); nothing to act on here
            warnings.filterwarnings("ignore", message=r".*LeafSpec.* is deprecated", category=FutureWarning)
            torch._inductor.aoti_compile_and_package(program, package_path=partial,
                                                     inductor_configs={"aot_inductor.metadata": metadata})
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path
