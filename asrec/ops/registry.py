"""The table of ops, their implementations, and the choice of one per call.

Leaf ops (one fused kernel family each) register a reference and, where they exist, a
Triton and a CUDA implementation; ``implementation`` picks one per call under the backend
selection of ``asrec.backends``. Composite ops (the branches, the layer) register one composition:
the reference math over the dispatching leaf ops, so each leaf runs on its own backend.
"""

import torch

from .. import backends

OPS: dict = {}         # leaf ops: backend name -> implementation
COMPOSITES: dict = {}  # composite ops: the reference composition over the dispatching leaf ops


FUSED_BACKENDS = ("triton", "cuda")
# The order in which "auto" tries the fused backends of an op, the first that takes the
# call winning. The rule: the one BENCHMARKS.md measured faster on the op goes first. No
# CUDA kernel has been timed on a GPU yet (none is gpu_verified), so Triton goes first
# everywhere; an op whose CUDA kernels measure faster gets an entry in AUTO_ORDER_BY_OP.
AUTO_ORDER = ("triton", "cuda")
AUTO_ORDER_BY_OP: dict = {}


class KernelImplementation:
    """A fused (Triton or CUDA) implementation and the test of whether it takes a call.

    run: the callable; unsupported(*args) -> None, or a sentence saying why this call
    cannot run on it (dtype, shape). gpu_verified: its tests and benchmark have run
    compiled on a GPU (BENCHMARKS.md); ``"auto"`` picks only verified kernels, an
    unverified one runs when its backend is asked for by name.
    """

    def __init__(self, run, unsupported, gpu_verified: bool = True):
        self.run = run
        self.unsupported = unsupported
        self.gpu_verified = gpu_verified


def register(op: str, reference, triton: KernelImplementation = None, cuda: KernelImplementation = None) -> None:
    fused = {name: impl for name, impl in (("triton", triton), ("cuda", cuda)) if impl is not None}
    OPS[op] = {"reference": reference, **fused}


def register_composite(op: str, composition) -> None:
    COMPOSITES[op] = composition


def unavailable_reason(backend: str, fused: KernelImplementation, device: torch.device, args) -> str:
    """None if ``fused`` (an implementation on ``backend``) takes this call, else why not."""
    reason = backends.missing_reason(backend)
    if reason is None and device.type != "cuda":
        if backend == "cuda":
            reason = f"the CUDA kernels run CUDA tensors; got {device.type} tensors"
        elif not backends.interpreting():
            reason = f"Triton runs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1); got {device.type} tensors"
    return reason if reason is not None else fused.unsupported(*args)


def implementation(op: str, device: torch.device, *args):
    """The callable that runs ``op`` for this call (``args``: the op's arguments)."""
    if op in COMPOSITES:
        return COMPOSITES[op]
    implementations = OPS[op]
    selection = backends.selected_backend()
    if selection == "reference":
        return implementations["reference"]
    if selection == "auto":
        if device.type == "cuda":
            for backend in AUTO_ORDER_BY_OP.get(op, AUTO_ORDER):
                fused = implementations.get(backend)
                if fused is not None and fused.gpu_verified and unavailable_reason(backend, fused, device,
                                                                                   args) is None:
                    return fused.run
        return implementations["reference"]
    # a fused backend by name: run it or say why not; ops it has no kernel for run the reference
    fused = implementations.get(selection)
    if fused is None:
        return implementations["reference"]
    reason = unavailable_reason(selection, fused, device, args)
    if reason is not None:
        raise ValueError(f"{op} on the {selection!r} backend: {reason}")
    return fused.run
