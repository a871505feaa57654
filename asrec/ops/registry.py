"""The table of ops, their implementations, and the choice of one per call.

Each op module registers itself on import (``register``); ``implementation`` picks the
callable for one call under the backend selection of ``asrec.backends``.
"""

import torch

from .. import backends

OPS: dict = {}


class TritonImplementation:
    """A Triton implementation and the test of whether it takes a call.

    run: the callable; unsupported(*args) -> None, or a sentence saying why this call
    cannot run on Triton (dtype, shape).
    """

    def __init__(self, run, unsupported):
        self.run = run
        self.unsupported = unsupported


def register(op: str, reference, triton: TritonImplementation = None) -> None:
    OPS[op] = {"reference": reference} if triton is None else {"reference": reference, "triton": triton}


def implementation(op: str, device: torch.device, *args):
    """The callable that runs ``op`` for this call (``args``: the op's arguments)."""
    implementations = OPS[op]
    selection = backends.selected_backend()
    fused = implementations.get("triton")
    if selection == "reference" or fused is None:
        return implementations["reference"]
    if selection == "auto":
        if device.type != "cuda" or backends.triton_missing_reason() is not None or fused.unsupported(*args):
            return implementations["reference"]
        return fused.run
    # selection == "triton": run it or say why not
    reason = backends.triton_missing_reason()
    if reason is None and device.type != "cuda" and not backends.interpreting():
        reason = f"Triton runs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1); got {device.type} tensors"
    if reason is None:
        reason = fused.unsupported(*args)
    if reason is not None:
        raise ValueError(f"{op} on the 'triton' backend: {reason}")
    return fused.run
