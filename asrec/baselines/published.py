"""The published-code-equivalent eager ASRec: a literal transcription of SPEC.md.

It computes the model the way the published RecBole code does (complex FFT correlation
for the smoothing, full complex FFT + ``torch.median`` + ``torch.quantile`` + a boolean
mask for the filter, three separate convolutions, explicit attention matmuls), with the
published module and parameter names, so its ``state_dict`` has the published keys and
``ASRecModel.to_original_state_dict()`` loads into it. It is the "published" row of the
benchmarks and an independent oracle in the tests; it is deliberately not optimised.
"""

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..reference.fourier_smoothing import next_fast_len


def spectrum_energy(spectrum: torch.Tensor) -> torch.Tensor:
    """sum_h |X[b, k, h]|^2 of a full complex spectrum (B, N, H) -> (B, N)."""
    return spectrum.abs().pow(2).sum(dim=-1)


def _compute(x: torch.Tensor) -> torch.Tensor:
    """The published code computes these blocks in float32; float64 stays float64 (for tests)."""
    return x if x.dtype == torch.float64 else x.float()


def _erf_gelu(x):
    return x * 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


_ACT = {"gelu": _erf_gelu, "relu": F.relu, "swish": lambda x: x * torch.sigmoid(x), "tanh": torch.tanh,
        "sigmoid": torch.sigmoid}


class _FSM(nn.Module):
    def __init__(self, hidden, eps, mix):
        super().__init__()
        self._smoothing_weight = nn.Parameter(torch.randn(1))
        self.v0 = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.v1 = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.mix = mix

    def forward(self, x_in):
        n = x_in.shape[1]
        x = _compute(x_in)
        steps = torch.arange(n, dtype=x.dtype, device=x.device)
        a = torch.sigmoid(self._smoothing_weight)
        kernel = ((1 - a) * a ** torch.flip(steps, (0,))).view(1, n, 1)
        size = next_fast_len(2 * n - 1)
        corr = torch.fft.ifft(torch.fft.fft(x, size, dim=1, norm="ortho")
                              * torch.fft.fft(kernel, size, dim=1, norm="ortho").conj(),
                              size, dim=1, norm="ortho").real.roll(-1, dims=1)
        smoothed = corr[:, size - n:]
        out = (a ** (steps + 1)).view(1, n, 1) * self.v0 + smoothed * self.v1
        return self.mix * out + (1 - self.mix) * x_in


class _AHFF(nn.Module):
    def __init__(self, hidden, eps):
        super().__init__()
        self.threshold_param = nn.Parameter(torch.tensor(0.8))
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, y):
        spectrum = torch.fft.fft(_compute(y), dim=1)
        energy = spectrum_energy(spectrum)
        normalised = energy / (energy.median(dim=1, keepdim=True).values + 1e-6)
        threshold = torch.quantile(normalised, self.threshold_param.to(normalised.dtype))
        mask = torch.zeros_like(spectrum)
        mask[normalised > threshold] = 1
        z = torch.fft.ifft(spectrum * mask, dim=1).real.to(y.dtype)
        return self.LayerNorm(F.dropout(z, 0.5, self.training) + y)


def _heads(x, h):
    b, n, hid = x.shape
    return x.view(b, n, h, hid // h).permute(0, 2, 1, 3)


def _attend(module, x, mask):
    h = module.n_heads
    q, k, v = (_heads(lin(x), h) for lin in (module.query, module.key, module.value))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + mask
    probs = F.dropout(torch.softmax(scores, dim=-1), module.attn_p, module.training)
    return probs @ v, v


def _merge(c):
    b, h, n, d = c.shape
    return c.permute(0, 2, 1, 3).reshape(b, n, h * d)


class _Seasonal(nn.Module):
    def __init__(self, h, hidden, hidden_p, attn_p, eps, n):
        super().__init__()
        self.n_heads, self.hidden_p, self.attn_p = h, hidden_p, attn_p
        self.query, self.key, self.value, self.dense = (nn.Linear(hidden, hidden) for _ in range(4))
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.conv_small = nn.Conv1d(n, n, 3, padding=1)
        self.conv_middle = nn.Conv1d(n, n, 5, padding=2)
        self.conv_large = nn.Conv1d(n, n, 7, padding=3)
        self.contra_scale = nn.Parameter(torch.tensor(0.6))
        self.orgin_scale = nn.Parameter(torch.tensor(1.0))
        self.head_weights = nn.Parameter(torch.ones(h))
        self.contra_scale1, self.contra_scale2, self.contra_scale3 = (
            nn.Parameter(torch.randn(1, n, 1)) for _ in range(3))
        gate = 2 * hidden // h
        self.w_gate = nn.Parameter(torch.empty(gate, gate))
        self.b_gate = nn.Parameter(torch.empty(gate))
        bound = 1.0 / math.sqrt(gate)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)
        self.AHFF = _AHFF(hidden, eps)

    def gated_context(self, x, mask):
        """The gated attention context, heads merged (the benchmark times it on its own)."""
        c, v = _attend(self, x, mask)
        r, i = F.linear(torch.cat([v, c], -1), self.w_gate, self.b_gate).chunk(2, -1)
        r, i = torch.sigmoid(r), torch.sigmoid(i)
        return _merge((1 - i) * c + i * F.gelu(c + r * v))

    def convolutions(self, c):
        return self.conv_small(c), self.conv_middle(c), self.conv_large(c)

    def forward(self, x, mask):
        s, m, g = self.convolutions(self.gated_context(x, mask))
        ctx = (self.contra_scale1 * (self.AHFF(s) + s) + self.contra_scale2 * (self.AHFF(g) + g)
               + self.contra_scale3 * (self.AHFF(m) + m))
        xn = F.normalize(ctx, dim=2)
        sq = xn * xn
        sim = torch.softmax(sq, dim=2) + torch.softmax(sq, dim=1)
        out = self.dense(F.gelu(self.orgin_scale * ctx - self.contra_scale * (sim * ctx)))
        return self.LayerNorm(F.dropout(out, self.hidden_p, self.training) + x)


class _Dynamic(nn.Module):
    def __init__(self, h, hidden, hidden_p, attn_p, eps):
        super().__init__()
        self.n_heads, self.hidden_p, self.attn_p = h, hidden_p, attn_p
        self.query, self.key, self.value, self.dense = (nn.Linear(hidden, hidden) for _ in range(4))
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def context(self, x, mask):
        """The attention context, heads merged (the benchmark times it on its own)."""
        return _merge(_attend(self, x, mask)[0])

    def forward(self, x, mask):
        return self.LayerNorm(F.dropout(self.dense(self.context(x, mask)), self.hidden_p, self.training) + x)


class _FeedForward(nn.Module):
    def __init__(self, hidden, inner, p, act, eps):
        super().__init__()
        self.dense_1, self.dense_2 = nn.Linear(hidden, inner), nn.Linear(inner, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.p, self.act = p, _ACT[act]

    def forward(self, x):
        return self.LayerNorm(F.dropout(self.dense_2(self.act(self.dense_1(x))), self.p, self.training) + x)


class _Layer(nn.Module):
    def __init__(self, h, hidden, inner, hidden_p, attn_p, act, eps, n):
        super().__init__()
        self.multi_head_attention = _Seasonal(h, hidden, hidden_p, attn_p, eps, n)
        self.multi_head_attention1 = _Dynamic(h, hidden, hidden_p, attn_p, eps)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.feed_forward = _FeedForward(hidden, inner, hidden_p, act, eps)
        self.v3 = nn.Parameter(torch.tensor(0.5))

    def forward(self, x, mask):
        seasonal = self.multi_head_attention(x, mask)
        dynamic = self.multi_head_attention1(x, mask)
        return self.feed_forward(self.v3 * dynamic + (1 - self.v3) * seasonal)


class _Encoder(nn.Module):
    def __init__(self, n_layers, *layer_args):
        super().__init__()
        layer = _Layer(*layer_args)
        self.layer = nn.ModuleList(copy.deepcopy(layer) for _ in range(n_layers))


class PublishedASRec(nn.Module):
    """Eager ASRec with the published code's structure and names.

    config: the published config keys (see ``asrec.checkpoint.CONFIG_KEYS``).
    """

    def __init__(self, n_items: int, config: dict):
        super().__init__()
        hidden, n = config["hidden_size"], config["MAX_ITEM_LIST_LENGTH"]
        eps, hidden_p = config["layer_norm_eps"], config["hidden_dropout_prob"]
        self.item_embedding = nn.Embedding(n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(n, hidden)
        self.trm_encoder = _Encoder(config["n_layers"], config["n_heads"], hidden, config["inner_size"], hidden_p,
                                    config["attn_dropout_prob"], config["hidden_act"], eps, n)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.FSM = _FSM(hidden, eps, config["A"])
        self.hidden_p = hidden_p
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, config["initializer_range"])
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def sequence_output(self, item_seq):
        positions = torch.arange(item_seq.shape[1], device=item_seq.device).expand_as(item_seq)
        x = self.LayerNorm(self.item_embedding(item_seq) + self.position_embedding(positions))
        x = self.FSM(F.dropout(x, self.hidden_p, self.training))
        mask = (1.0 - (item_seq > 0).to(x.dtype))[:, None, None, :] * -10000.0
        for layer in self.trm_encoder.layer:
            x = layer(x, mask)
        return x

    def forward(self, item_seq, item_seq_len):
        out = self.sequence_output(item_seq)
        return out[torch.arange(out.shape[0], device=out.device), item_seq_len - 1]

    def full_sort_scores(self, item_seq, item_seq_len):
        return self(item_seq, item_seq_len) @ self.item_embedding.weight.t()

    def loss(self, item_seq, item_seq_len, pos_items):
        return F.cross_entropy(self.full_sort_scores(item_seq, item_seq_len) + 1e-8, pos_items)
