"""The leaf-op calls of a model run, recorded through the public dispatch table, and their
replay on any backend.

Every leaf op of ``asrec.ops`` asks ``asrec.backends.plan`` what runs a call and then calls
it. Wrapping ``plan`` while a model runs on the reference backend yields each call's op and
arguments exactly as the model makes them (shapes, dtypes, strides, flags), whatever the
ops' signatures. Replaying a call on "triton" or "cuda" then runs the kernels the model
would launch there, so the warm-up compiles what the later steps use, and the exactness
suite holds each op to the reference at the model's own shapes.
"""

import contextlib
from typing import NamedTuple

import torch

import asrec


class Call(NamedTuple):
    """One leaf-op call: ``nested`` when made inside another op's reference (e.g. the
    feed-forward reference's residual norm), ``grad`` whether autograd was recording."""
    op: str
    device_type: str
    args: tuple
    kwargs: dict
    nested: bool
    grad: bool


@contextlib.contextmanager
def recording():
    """Within the block, every dispatched leaf-op call is appended to the yielded list."""
    calls, depth = [], [0]
    original = asrec.backends.plan

    def plan(op, device_type, args=None, selection=None):
        chosen = original(op, device_type, args, selection)
        if args is None or chosen.run is None:
            return chosen
        run = chosen.run

        def recorded(*call_args, **call_kwargs):
            calls.append(Call(op, device_type, call_args, call_kwargs, depth[0] > 0, torch.is_grad_enabled()))
            depth[0] += 1
            try:
                return run(*call_args, **call_kwargs)
            finally:
                depth[0] -= 1
        return chosen._replace(run=recorded)

    asrec.backends.plan = plan
    try:
        yield calls
    finally:
        asrec.backends.plan = original


def _map_tensors(value, fn):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a NamedTuple of weights
        return type(value)(*(_map_tensors(v, fn) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


def flatten(value) -> list:
    """The tensors of a (nested) output, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flatten(v)]
    return []


def leaf_inputs(args, dtype=None) -> tuple:
    """(args with every tensor detached, and cast to ``dtype`` if floating and asked; the
    floating tensors that required grad in the recorded call, now leaves requiring grad)."""
    leaves = []

    def detach(t):
        wanted = t.requires_grad and t.is_floating_point()
        t = t.detach()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        if wanted:
            t.requires_grad_()
            leaves.append(t)
        return t
    return _map_tensors(args, detach), leaves


def replay(call: Call, backend: str, cotangents=None, dtype=None) -> tuple:
    """Run ``call`` on ``backend`` (forward, and backward when the recorded call had autograd
    on): -> (outputs, gradients of the leaf inputs (None where unused), cotangents used).

    cotangents: one tensor per floating output that requires grad (drawn here when None);
    dtype: cast the floating inputs (float64 for the oracle).
    """
    args, leaves = leaf_inputs(call.args, dtype)
    with torch.set_grad_enabled(call.grad):
        chosen = asrec.backends.plan(call.op, call.device_type, args, selection=backend)
        if chosen.error is not None:
            raise ValueError(chosen.error)
        outputs = flatten(chosen.run(*args, **call.kwargs))
    differentiable = [o for o in outputs if o.requires_grad]
    grads = []
    if call.grad and differentiable and leaves:
        if cotangents is None:
            cotangents = [torch.randn(o.shape, device=o.device, dtype=torch.float32) for o in differentiable]
        used = [c.to(o.dtype) for c, o in zip(cotangents, differentiable)]
        grads = list(torch.autograd.grad(differentiable, leaves, used, allow_unused=True))
    return [o.detach() for o in outputs], grads, cotangents


def top_level(calls: list) -> list:
    return [c for c in calls if not c.nested]
