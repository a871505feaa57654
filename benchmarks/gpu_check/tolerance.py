"""How close a fused result must be to the exact one (the float64 reference).

Every fused result is float32 here (inputs, weights and outputs; the check runs no
low-precision dtypes: each one would compile every launch again). The yardstick is the
reference run in float32 under the same matmul precision, both measured against the
reference in float64 (DESIGN.md, after flash-attention): a fused kernel may sum in another
order than the reference, so its error is held to twice the reference's own, plus a floor:

- "highest" (IEEE float32 products): 2^-16 (about 1.5e-5, 128 float32 ulps at 1.0) of the
  largest exact value. A parameter gradient sums B x N x H products (3.3 million at
  ml-100k); summed blockwise in a kernel, in another order than the reference's cascade
  sums, float32 carries errors of this order relative to the largest value, while the
  reference may happen to be far more accurate (a gather, a cascade sum): "twice its error"
  alone would fail a correct kernel. A wrong kernel is off by far more (a dropped or
  doubled term is a relative error near 1e-2 and above);
- "high" (TF32 products in the GEMM-like kernels and in cuBLAS/cuDNN): 2e-3 of the largest
  exact value. TF32 keeps 10 of float32's 23 mantissa bits (unit roundoff 2^-11, about
  4.9e-4); a K-term product of random data then carries errors near 1e-3 of the largest
  output (tests/ops/test_triton_precision.py uses the same slack), and the fused kernels
  use TF32 where the reference's own products may not (the attention's softmax products).

Integer and boolean outputs (ids, read-out rows, masks) must be equal.
"""

import math

import torch

FLOOR = {"highest": 2.0 ** -16, "high": 2e-3}
REFERENCE_FACTOR = 2.0


def _max_error(a: torch.Tensor, exact: torch.Tensor) -> float:
    return (a.double() - exact).abs().max().item() if exact.numel() else 0.0


def compare(name: str, fused, reference, exact, precision: str) -> dict:
    """One result: {"name", "passed", "error", "bound"} (error and bound as max |difference|
    against float64). None stands for a zero gradient (an input the op did not use)."""
    if fused is None and reference is None and exact is None:
        return dict(name=name, passed=True, error=0.0, bound=0.0)
    like = next(t for t in (exact, reference, fused) if t is not None)
    fused, reference, exact = (torch.zeros_like(like) if t is None else t for t in (fused, reference, exact))
    if fused.shape != exact.shape:
        return dict(name=name, passed=False, error=math.inf, bound=0.0,
                    reason=f"shape {tuple(fused.shape)}, expected {tuple(exact.shape)}")
    if not exact.is_floating_point():
        equal = torch.equal(fused.cpu(), exact.cpu().to(fused.dtype))
        return dict(name=name, passed=equal, error=0.0 if equal else math.inf, bound=0.0)
    exact = exact.double()
    if not bool(torch.isfinite(fused).all()) and bool(torch.isfinite(exact).all()):
        return dict(name=name, passed=False, error=math.inf, bound=0.0, reason="non-finite values")
    scale = exact.abs().max().item() if exact.numel() else 0.0
    bound = REFERENCE_FACTOR * _max_error(reference, exact) + FLOOR[precision] * scale
    error = _max_error(fused, exact)
    return dict(name=name, passed=error <= bound, error=error, bound=bound)


def worst(results: list) -> dict:
    """The result with the largest error/bound ratio (the first failure if any failed)."""
    failed = [r for r in results if not r["passed"]]
    if failed:
        return failed[0]
    return max(results, key=lambda r: r["error"] / r["bound"] if r["bound"] else 0.0, default={})
