"""Naive transcriptions of SPEC.md written for the tests: loops and literal formulas,
independent of asrec.reference, slow on purpose."""

import math

import torch
import torch.nn.functional as F
from scipy.fftpack import next_fast_len


def fsm_oracle(x, smoothing_logit, v0, v1, mix):
    """SPEC 2 as a literal EMA loop: s[n] = a s[n-1] + (1 - a) x[n], scaled by 1/sqrt(L)."""
    x = x.double()
    n_len = x.shape[1]
    a = torch.sigmoid(smoothing_logit.double())
    scale = 1.0 / math.sqrt(next_fast_len(2 * n_len - 1))
    state = torch.zeros_like(x[:, 0])
    rows = []
    for n in range(n_len):
        state = a * state + (1 - a) * x[:, n]
        rows.append(a ** (n + 1) * v0.double()[0] + scale * state * v1.double()[0])
    fsm = torch.stack(rows, dim=1)
    return mix * fsm + (1 - mix) * x


def filter_oracle(y, q, weight, bias, eps, keep=None):
    """SPEC 3 with the full complex FFT, torch.median and torch.quantile, as published.

    y: (B, N, H). keep: an optional (B, N) bool mask to use instead of the computed one.
    Returns (out, keep, normalised energy (B, N), threshold ()).
    """
    spectrum = torch.fft.fft(y, dim=1)
    energy = spectrum.abs().pow(2).sum(-1)
    normalised = energy / (energy.median(dim=1, keepdim=True).values + 1e-6)
    threshold = torch.quantile(normalised, torch.as_tensor(q, dtype=normalised.dtype))
    if keep is None:
        keep = normalised > threshold
    mask = torch.zeros_like(spectrum)
    mask[keep] = 1
    z = torch.fft.ifft(spectrum * mask, dim=1).real.to(y.dtype)
    return F.layer_norm(z + y, (y.shape[-1],), weight, bias, eps), keep, normalised, threshold


def attention_oracle(q, k, v, valid):
    """Per-batch, per-head loops with an explicit softmax. q, k, v: (B, h, N, d); valid: (B, N)."""
    out = torch.empty_like(q)
    for b in range(q.shape[0]):
        bias = (1.0 - valid[b].to(q.dtype)) * -10000.0
        for h in range(q.shape[1]):
            scores = q[b, h] @ k[b, h].T / math.sqrt(q.shape[-1]) + bias
            out[b, h] = torch.softmax(scores, dim=-1) @ v[b, h]
    return out


def gate_oracle(c, v, w_gate, b_gate):
    d = c.shape[-1]
    g = torch.cat([v, c], -1) @ w_gate.T + b_gate
    r, i = torch.sigmoid(g[..., :d]), torch.sigmoid(g[..., d:])
    return (1 - i) * c + i * F.gelu(c + r * v)


def conv_oracle(c, weights, biases):
    """Three separate Conv1d calls: positions as channels, sliding along hidden."""
    return [F.conv1d(c, w, b, padding=w.shape[-1] // 2) for w, b in zip(weights, biases)]


def contrast_oracle(ctx, origin, contrast):
    norm = ctx.pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-12)
    xn = ctx / norm
    sim = torch.softmax(xn * xn, dim=2) + torch.softmax(xn * xn, dim=1)
    return origin * ctx - contrast * (sim * ctx)


def symmetrised_energy(spectrum):
    """Full-spectrum energy with bins k and N-k averaged: removes the rounding tie between
    mirrored bins that makes two correct implementations keep different halves of a pair
    (DESIGN.md on hard thresholds)."""
    energy = spectrum.abs().pow(2).sum(-1)
    n = energy.shape[1]
    return 0.5 * (energy + energy[:, (-torch.arange(n)) % n])


def filter_with_mask_f64(y, keep_half, weight, bias, eps, factors=None):
    """SPEC 3 in float64 with a given half-spectrum mask (B, G, K) and dropout factors (B, G, N, H)."""
    y = y.double()
    spectrum = torch.fft.rfft(y, dim=-2) * keep_half.double()[..., None]
    filtered = torch.fft.irfft(spectrum, n=y.shape[-2], dim=-2)
    if factors is not None:
        filtered = filtered * factors.double()
    return F.layer_norm(filtered + y, (y.shape[-1],), weight.double(), bias.double(), eps)


def filter_f64_and_grads(y, keep_half, weight, bias, grad, eps, factors=None):
    """``filter_with_mask_f64`` and its gradients for ``grad``: (out, dy, dweight, dbias), float64."""
    y64, w64, b64 = (t.detach().double().requires_grad_() for t in (y, weight, bias))
    out = filter_with_mask_f64(y64, keep_half, w64, b64, eps, factors)
    return (out, *torch.autograd.grad(out, (y64, w64, b64), grad.double()))
