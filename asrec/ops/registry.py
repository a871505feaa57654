"""The table of ops, their implementations, and the choice of one per call.

Leaf ops (one fused kernel family each) register a reference and, where one exists, a
Triton implementation; ``implementation`` picks one per call under the backend selection
of ``asrec.backends``. Composite ops (the branches, the layer) register one composition:
the reference math over the dispatching leaf ops, so each leaf runs on its own backend.
"""

import torch

from .. import backends

OPS: dict = {}         # leaf ops: backend name -> implementation
COMPOSITES: dict = {}  # composite ops: the reference composition over the dispatching leaf ops


class TritonImplementation:
    """A Triton implementation and the test of whether it takes a call.

    run: the callable; unsupported(*args) -> None, or a sentence saying why this call
    cannot run on Triton (dtype, shape). gpu_verified: its tests and benchmark have run
    compiled on a GPU (BENCHMARKS.md); ``"auto"`` picks only verified kernels, an
    unverified one runs when ``"triton"`` is asked for by name.
    """

    def __init__(self, run, unsupported, gpu_verified: bool = True):
        self.run = run
        self.unsupported = unsupported
        self.gpu_verified = gpu_verified


def register(op: str, reference, triton: TritonImplementation = None) -> None:
    OPS[op] = {"reference": reference} if triton is None else {"reference": reference, "triton": triton}


def register_composite(op: str, composition) -> None:
    COMPOSITES[op] = composition


def implementation(op: str, device: torch.device, *args):
    """The callable that runs ``op`` for this call (``args``: the op's arguments)."""
    if op in COMPOSITES:
        return COMPOSITES[op]
    implementations = OPS[op]
    selection = backends.selected_backend()
    fused = implementations.get("triton")
    if selection == "reference" or fused is None:
        return implementations["reference"]
    if selection == "auto":
        if (device.type != "cuda" or not fused.gpu_verified or backends.triton_missing_reason() is not None
                or fused.unsupported(*args)):
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
