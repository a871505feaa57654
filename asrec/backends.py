"""Which implementation of each op runs: the backend switch and the one dispatch table.

Backends: ``"reference"`` (the PyTorch math of ``asrec.reference``, every device and
dtype), ``"triton"`` (fused Triton kernels: CUDA tensors, or CPU tensors under the Triton
interpreter ``TRITON_INTERPRET=1``) and ``"cuda"`` (the CUDA C++ extension ``asrec._C``
built from csrc/ at install time: CUDA tensors). Both fused backends take float32,
bfloat16 and float16 inputs.

- ``"auto"`` (the default) runs an op on a fused backend when the tensors are on a CUDA
  device, the backend is installed, its kernels for the op have been verified on a GPU
  (``GPU_VERIFIED``) and take the call (dtype, shape); otherwise the reference.
- ``"triton"`` / ``"cuda"`` run that backend's kernels for every op that has them and
  raise a ``ValueError`` saying why when a call cannot run on them (backend missing, a
  CPU tensor, float64, a shape the kernels do not take). Ops without kernels there run
  the reference, and ``describe()`` lists them.
- ``"reference"`` runs the reference everywhere.

Selection, innermost first: ``with asrec.use_backend(name):``, then the ``ASREC_BACKEND``
environment variable, then ``"auto"``.

Every leaf op of ``asrec.ops`` registers its implementations here (``register``);
``plan`` is the one answer to "what runs this call, and if not a fused kernel, why":
the ops dispatch through it and ``describe()`` prints it. This module imports nothing
of ``asrec.ops``.
"""

import contextlib
import contextvars
import functools
import os
from typing import Callable, NamedTuple, Optional

import torch

from . import _cuda_extension

ENV_VAR = "ASREC_BACKEND"
FUSED_BACKENDS = ("triton", "cuda")
BACKENDS = ("reference",) + FUSED_BACKENDS
CHOICES = BACKENDS + ("auto",)

# The fused kernels whose tests and benchmark have run compiled on a GPU, with the run of
# BENCHMARKS.md that did it. "auto" picks only these; the others run when their backend is
# asked for by name. A kernel joins once `benchmarks/gpu_check.sh` passes for it on a card,
# and leaves when it is rewritten: the 2026-11-27 H200 run verified the Triton input stage,
# smoothing and filter, which have been rewritten since (2026-12-02: row-walking input stage
# and smoothing, the filter's keep-mask kernel) and have not run on a GPU in their new form.
GPU_VERIFIED = {}

# The order in which "auto" tries the fused backends of an op: the one BENCHMARKS.md
# measured faster goes first. No CUDA kernel has been timed on a GPU yet, so Triton leads.
AUTO_ORDER = ("triton", "cuda")

_selected: contextvars.ContextVar = contextvars.ContextVar("asrec_backend", default=None)


def _check(name, source: str) -> str:
    if not isinstance(name, str) or name not in CHOICES:
        raise ValueError(f"{source}: unknown asrec backend {name!r}; this build has {', '.join(CHOICES)}")
    return name


@torch.compiler.assume_constant_result
def selected_backend() -> str:
    """The backend name in force here (may be ``"auto"``).

    Under ``torch.compile`` the selection is read once, when the function is traced, and
    becomes part of the compiled graph: select the backend before compiling.
    """
    name = _selected.get()
    if name is not None:
        return name
    env = os.environ.get(ENV_VAR)
    return _check(env, f"environment variable {ENV_VAR}") if env else "auto"


@contextlib.contextmanager
def use_backend(name: str):
    """Run the ops in this block on backend ``name`` (one of ``asrec.backends.CHOICES``)."""
    token = _selected.set(_check(name, "use_backend"))
    try:
        yield name
    finally:
        _selected.reset(token)


# ---- which fused backends are installed ----

@torch.compiler.assume_constant_result
def triton_missing_reason():
    """None when the Triton kernels import, else why not (with how to get them)."""
    return _triton_missing_reason()


@functools.lru_cache(maxsize=1)
def _triton_missing_reason():
    try:
        import triton  # noqa: F401

        from . import kernels  # noqa: F401
    except ImportError as error:
        return f"Triton is not importable ({error}); install it with `pip install triton`"
    return None


@torch.compiler.assume_constant_result
def cuda_missing_reason():
    """None when the CUDA extension ``asrec._C`` loads, else why not (with how to build it)."""
    return _cuda_extension.load()


def missing_reason(backend: str):
    """None when the fused ``backend`` ("triton" or "cuda") is installed, else why not."""
    return triton_missing_reason() if backend == "triton" else cuda_missing_reason()


@torch.compiler.assume_constant_result
def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


# ---- the dispatch table ----

class FusedKernel(NamedTuple):
    """A fused implementation of an op. run: the callable (the op's signature);
    unsupported(*args): None when it takes this call, else why not (dtype, shape)."""
    run: Callable
    unsupported: Callable


class Plan(NamedTuple):
    """What runs one call. backend: "reference", "triton" or "cuda"; run: the callable;
    reason: why the reference runs instead of a fused kernel (None when a fused kernel runs
    or the reference was asked for); error: set when the backend asked for by name cannot
    run the call (then ``run`` is None and the call raises it)."""
    backend: Optional[str]
    run: Optional[Callable]
    reason: Optional[str] = None
    error: Optional[str] = None


_OPS: dict = {}  # op name -> {"reference": callable, backend: FusedKernel}
_COMPOSITIONS: list = []  # ops written as plain code over the leaf ops (branches, layer)


def register(op: str, reference: Callable, **fused: FusedKernel) -> None:
    """Declare ``op``'s reference and its fused kernels (keyword per backend)."""
    unknown = set(fused) - set(FUSED_BACKENDS)
    if unknown:
        raise ValueError(f"register({op!r}): unknown backends {sorted(unknown)}")
    _OPS[op] = {"reference": reference, **fused}


def register_composition(op: str) -> None:
    """Declare ``op`` a composition of leaf ops (listed by ``describe``; it dispatches nothing itself)."""
    if op not in _COMPOSITIONS:
        _COMPOSITIONS.append(op)


def registered_ops() -> tuple:
    """The names of the registered leaf ops, in registration order."""
    return tuple(_OPS)


def _device_reason(backend: str, device_type: str):
    if device_type == "cuda":
        return None
    if backend == "triton":
        if interpreting():
            return None
        return f"Triton runs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1); got {device_type} tensors"
    return f"the CUDA kernels run CUDA tensors; got {device_type} tensors"


def _cannot_run(backend: str, kernel: FusedKernel, device_type: str, args) -> Optional[str]:
    reason = missing_reason(backend) or _device_reason(backend, device_type)
    if reason is None and args is not None:
        reason = kernel.unsupported(*args)
    return reason


def plan(op: str, device_type: str, args: Optional[tuple] = None, selection: Optional[str] = None) -> Plan:
    """What runs ``op`` for tensors on ``device_type`` ("cpu", "cuda") under ``selection``
    (default: the one in force) and, when not a fused kernel, why.

    args: the call's arguments, for the kernels' dtype and shape checks; None asks about
    any call (``describe``).
    """
    implementations = _OPS[op]
    reference = implementations["reference"]
    selection = selection or selected_backend()
    if selection == "reference":
        return Plan("reference", reference)
    if selection == "auto":
        if device_type != "cuda":
            return Plan("reference", reference, f"auto runs the reference on {device_type} tensors")
        skipped = []
        for backend in AUTO_ORDER:
            kernel = implementations.get(backend)
            if kernel is None:
                continue
            if (op, backend) not in GPU_VERIFIED:
                skipped.append(f"{backend} kernel not yet run on a GPU: ask for it by name")
                continue
            reason = _cannot_run(backend, kernel, device_type, args)
            if reason is None:
                return Plan(backend, kernel.run)
            skipped.append(f"{backend}: {reason}")
        return Plan("reference", reference, "; ".join(skipped) or "no fused kernel for this op")
    kernel = implementations.get(selection)
    if kernel is None:
        return Plan("reference", reference, f"no {selection} kernel for this op")
    reason = _cannot_run(selection, kernel, device_type, args)
    if reason is not None:
        return Plan(None, None, error=f"{op} on the {selection!r} backend: {reason}")
    return Plan(selection, kernel.run)


def dispatch(op: str, device: torch.device, *args):
    """The callable that runs this call of ``op`` (``args``: its arguments); raises the plan's error."""
    chosen = plan(op, device.type, args)
    if chosen.error is not None:
        raise ValueError(chosen.error)
    return chosen.run


def describe() -> str:
    """A table of what runs where under the current selection (built from ``plan``)."""
    selection = selected_backend()
    lines = [f"asrec backend selection: {selection}  (set with asrec.use_backend or {ENV_VAR})"]
    for backend in FUSED_BACKENDS:
        reason = missing_reason(backend)
        interpreter = "  [interpreter: TRITON_INTERPRET=1]" if backend == "triton" and interpreting() else ""
        lines.append(f"{backend}: {'available' if reason is None else 'absent: ' + reason}{interpreter}")
    for op in _OPS:
        for device_type in ("cpu", "cuda"):
            chosen = plan(op, device_type, selection=selection)
            if chosen.error is not None:
                where = f"error: {chosen.error.split(': ', 1)[1]}"
            elif chosen.backend == "reference" and chosen.reason is not None:
                where = f"reference  ({chosen.reason})"
            elif chosen.backend != "reference":
                where = f"{chosen.backend}  (reference for calls its kernels do not take)"
            else:
                where = "reference"
            lines.append(f"  {op:<24} {device_type:<5} -> {where}")
    for op in _COMPOSITIONS:
        lines.append(f"  {op:<24} all   -> composition of the ops above, each on its own backend")
    return "\n".join(lines)
