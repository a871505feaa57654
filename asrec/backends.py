"""Which implementation of each op runs: the backend switch.

Backends in this version: ``"reference"`` (the PyTorch math of ``asrec.reference``, on
every device). ``"auto"`` picks, per op and device, the fastest backend that exists; today
that is always the reference. Fused Triton and CUDA backends are not part of this build:
naming them is an error that says which backends exist.

Selection, innermost first: ``with asrec.use_backend(name):``, then the ``ASREC_BACKEND``
environment variable, then ``"auto"``.
"""

import contextlib
import contextvars
import os

ENV_VAR = "ASREC_BACKEND"
BACKENDS = ("reference",)
CHOICES = BACKENDS + ("auto",)

_selected: contextvars.ContextVar = contextvars.ContextVar("asrec_backend", default=None)


def _check(name: str, source: str) -> str:
    if not isinstance(name, str) or name not in CHOICES:
        raise ValueError(f"{source}: unknown asrec backend {name!r}; this build has {', '.join(CHOICES)}")
    return name


def selected_backend() -> str:
    """The backend name in force here (may be ``"auto"``)."""
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


def resolve(op: str, implementations: dict, device_type: str) -> str:
    """The backend that runs ``op`` on ``device_type`` under the current selection.

    implementations: the backends that implement ``op`` (name -> callable).
    """
    name = selected_backend()
    if name == "auto":
        return "reference"
    if name not in implementations:
        raise ValueError(f"op {op!r} has no {name!r} implementation; it has {', '.join(implementations)}")
    return name


def describe() -> str:
    """A table of what runs where under the current selection."""
    from .ops import OPS

    lines = [f"asrec backend selection: {selected_backend()}  (set with asrec.use_backend or {ENV_VAR})"]
    for op, implementations in OPS.items():
        for device_type in ("cpu", "cuda"):
            lines.append(f"  {op:<20} {device_type:<5} -> {resolve(op, implementations, device_type)}")
    lines.append("  triton, cuda: not in this build (no fused kernels yet); the reference runs everywhere")
    return "\n".join(lines)
