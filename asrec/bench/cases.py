"""What the benchmark measures: for each published setting, the whole model (eval forward
with full-sort scores; a training step) and each op (forward; forward+backward), each
under every implementation. The ops: input stage, Fourier smoothing, the three frequency
filters of a branch, both branches' attention (projections to merged contexts: against
the published explicit matmuls and the reference's SDPA + eager gate), the three
position-channel convolutions, one whole hybrid layer.

Implementations:
- ``published``: ``asrec.baselines.PublishedASRec``, the eager transcription of the
  published code (its FFT smoothing, full-FFT filter, separate convolutions).
- ``reference``: ``asrec`` on the reference backend, the library's CPU path.
- ``reference+compile``: ``torch.compile`` of the reference.
- ``triton``: ``asrec`` on the Triton backend (every op with a Triton kernel, see
  ``asrec.backends.describe()``), CUDA only.
- ``cuda``: ``asrec`` on the CUDA backend (the extension ``asrec._C`` built from csrc/:
  the input stage and the frequency filter; the other ops run the reference), CUDA only;
  its op rows cover only the ops with CUDA kernels.
- ``triton+graphs`` / ``cuda+graphs``: the model's rows only, replayed from CUDA graphs
  (``asrec.graphs``): eval is ``GraphedScores``; the training step is ``GraphedTrainStep``,
  which also runs an Adam step (lr 0, so the weights stay as they are) that the other
  train-step rows do not: the graphed row is charged more work, not less.

Every ``asrec`` row runs under an explicit ``use_backend``, so ``auto`` never decides
what a row measures.
"""

from dataclasses import dataclass, field

import torch

import asrec
from asrec.baselines import PublishedASRec

IMPLEMENTATIONS = ("published", "reference", "reference+compile", "triton", "cuda", "triton+graphs", "cuda+graphs")
BACKEND_OF = {"reference": "reference", "reference+compile": "reference", "triton": "triton", "cuda": "cuda",
              "triton+graphs": "triton", "cuda+graphs": "cuda"}
GRAPHED = "+graphs"
CUDA_OP_ROWS = ("input_stage", "frequency_filter")  # the op rows whose ops have CUDA kernels


def absent_reason(name: str, device: torch.device):
    """Why implementation ``name`` cannot be measured on ``device`` (None if it can)."""
    name = name.removesuffix(GRAPHED)
    if name in ("triton", "cuda"):
        missing = asrec.backends.missing_reason(name)
        if missing is not None:
            return missing
        if device.type != "cuda":
            return {"triton": "the Triton kernels run on CUDA devices (the CPU interpreter is for tests, not timing)",
                    "cuda": "the CUDA kernels run on CUDA devices"}[name]
    return None


def skip_reason(name: str, compile_skip_reason) -> str:
    """Why an available implementation has no row in a case."""
    if name.endswith(GRAPHED):
        return "graphed rows are the whole model's eval and training step"
    if name == "cuda":
        return "no CUDA kernel for this op"
    return compile_skip_reason


def _graphed_runs(model, items, lengths, targets, device, dtype) -> tuple:
    """(eval, train-step) callables replaying CUDA graphs of ``model``."""
    from asrec.graphs import GraphedScores, GraphedTrainStep

    autocast_dtype = None if dtype == torch.float32 else dtype
    scores = GraphedScores(model, autocast_dtype)
    step = GraphedTrainStep(model, torch.optim.Adam(model.parameters(), lr=0.0, capturable=True),
                            autocast_dtype=autocast_dtype)

    def evaluate():
        model.eval()
        return scores(items, lengths)

    def train():
        model.train()
        return step(items, lengths, targets)
    return evaluate, train


def _on_backend(name: str, fn):
    """fn wrapped to run under the backend that implementation ``name`` stands for."""
    backend = BACKEND_OF.get(name)
    if backend is None:
        return fn

    def run(*args, **kwargs):
        with asrec.use_backend(backend):
            return fn(*args, **kwargs)
    return run


@dataclass
class Case:
    """One row group: ``run[impl]`` is a zero-argument callable doing the measured work."""
    setting: str
    target: str   # "model" or an op name
    mode: str     # "eval", "train-step", "forward", "forward+backward"
    batch: int
    bytes_moved: int = 0  # forward of a memory-bound op: inputs read once + outputs written once
    run: dict = field(default_factory=dict)


def random_batch(batch: int, seq_len: int, n_items: int, device, generator: torch.Generator):
    """Left-aligned sequences with uniform lengths in [1, N] and random next items."""
    lengths = torch.randint(1, seq_len + 1, (batch,), generator=generator)
    items = torch.randint(1, n_items, (batch, seq_len), generator=generator)
    items[torch.arange(seq_len)[None, :] >= lengths[:, None]] = 0
    targets = torch.randint(1, n_items, (batch,), generator=generator)
    return items.to(device), lengths.to(device), targets.to(device)


def _autocast(device, dtype):
    if dtype == torch.float32:
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=dtype)


def _under_autocast(fn, device, dtype):
    def run(*args):
        with _autocast(device, dtype):
            return fn(*args)
    return run


def _eval_step(owner, score_fn, items, lengths, device, dtype):
    def step():
        owner.eval()
        with torch.no_grad(), _autocast(device, dtype):
            return score_fn(items, lengths)
    return step


def _train_step(owner, loss_fn, items, lengths, targets, device, dtype):
    def step():
        owner.train()
        owner.zero_grad(set_to_none=True)
        with _autocast(device, dtype):
            loss = loss_fn(items, lengths, targets)
        loss.backward()
    return step


def _op_runs(forward_fns: dict, inputs: list, backward: bool, modules: list, device, dtype) -> dict:
    """forward_fns: impl -> f(*inputs) returning a tensor or a list of tensors.

    modules: put in eval mode before every run (the model's train-step case shares them),
    so op rows always measure the deterministic, dropout-free op. Low-precision runs are
    under autocast, as the model's are (the published modules keep float32 weights).
    """
    runs = {}
    for name, forward in forward_fns.items():
        forward = _under_autocast(forward, device, dtype)
        if not backward:
            def run(forward=forward):
                for module in modules:
                    module.eval()
                with torch.no_grad():
                    forward(*inputs)
        else:
            leaves = [t.detach().requires_grad_() for t in inputs]

            def run(forward=forward, leaves=leaves):
                for module in modules:
                    module.eval()
                out = forward(*leaves)
                outs = out if isinstance(out, (list, tuple)) else [out]
                torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])
        runs[name] = run
    return runs


def build_cases(setting: str, config: dict, batch: int, device: torch.device, dtype: torch.dtype,
                compile_reference: bool, seed: int = 0) -> list:
    """All cases of one setting with their runnable implementations."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = asrec.ASRecModel(**config).to(device)
    model.check_values = False  # ids are valid by construction; keep host syncs out of the timing
    published = PublishedASRec(config["n_items"], model.to_original_config()).to(device)
    published.load_state_dict(model.to_original_state_dict())
    items, lengths, targets = random_batch(batch, config["max_seq_length"], config["n_items"], device, generator)
    owners = {"published": published, "reference": model}
    score_fns = {"published": published.full_sort_scores, "reference": model.full_sort_scores}
    loss_fns = {"published": published.loss, "reference": model.loss}
    if compile_reference:
        owners["reference+compile"] = model
        score_fns["reference+compile"] = torch.compile(model.full_sort_scores)
        loss_fns["reference+compile"] = torch.compile(model.loss)
    for fused in ("triton", "cuda"):
        if absent_reason(fused, device) is None:
            owners[fused], score_fns[fused], loss_fns[fused] = model, model.full_sort_scores, model.loss
    score_fns = {name: _on_backend(name, fn) for name, fn in score_fns.items()}
    loss_fns = {name: _on_backend(name, fn) for name, fn in loss_fns.items()}
    evaluate = Case(setting, "model", "eval", batch)
    train = Case(setting, "model", "train-step", batch)
    for name, owner in owners.items():
        evaluate.run[name] = _eval_step(owner, score_fns[name], items, lengths, device, dtype)
        train.run[name] = _train_step(owner, loss_fns[name], items, lengths, targets, device, dtype)
    for fused in ("triton", "cuda"):
        if absent_reason(fused, device) is None:
            graphed_eval, graphed_train = _graphed_runs(model, items, lengths, targets, device, dtype)
            evaluate.run[fused + GRAPHED] = _on_backend(fused, graphed_eval)
            train.run[fused + GRAPHED] = _on_backend(fused, graphed_train)
    cases = [evaluate, train]
    cases += _op_cases(setting, config, batch, device, dtype, model, published, compile_reference)
    return cases


def _op_cases(setting, config, batch, device, dtype, model, published, compile_reference) -> list:
    from asrec import ops

    n, hidden = config["max_seq_length"], config["hidden_size"]
    element = torch.tensor([], dtype=dtype).element_size()
    x = torch.randn(batch, n, hidden, device=device).to(dtype)
    fsm = model.encoder.fsm
    layer = model.encoder.layers[0]
    published_layer = published.trm_encoder.layer[0]
    filt = layer.seasonal.frequency_filter
    published_filter = published_layer.multi_head_attention.AHFF
    key_bias = asrec.reference.key_padding_bias(torch.ones(batch, n, dtype=torch.bool, device=device), torch.float32)
    groups = [torch.randn(batch, n, hidden, device=device).to(dtype) for _ in range(3)]

    def filter_groups(*ys):  # the dispatching op: each row's backend decides what runs
        return ops.frequency_filter_groups(list(ys), filt.threshold, filt.norm.weight, filt.norm.bias, filt.norm.eps)

    items, _, _ = random_batch(batch, n, config["n_items"], device, torch.Generator().manual_seed(1))
    norm = model.input_norm

    def input_stage(item_weight):
        return ops.input_stage(items, item_weight, model.position_embedding.weight, norm.weight, norm.bias, norm.eps,
                               0.0, False, fsm.smoothing_logit, fsm.init_level, fsm.smoothed_scale, fsm.mix)

    def published_input_stage(item_weight):
        embedded = torch.nn.functional.embedding(items, item_weight) + published.position_embedding.weight
        return published.FSM(published.LayerNorm(embedded))

    # bytes for the input stage: ids + gathered rows + output (the tables' other rows are not read)
    input_bytes = items.numel() * 8 + x.numel() * 4 + x.numel() * 4
    forward_fns = {
        "input_stage": ({"published": published_input_stage, "reference": input_stage},
                        [model.item_embedding.weight.detach()], input_bytes),
        "fourier_smoothing": ({"published": published.FSM,
                               "reference": lambda t: ops.fourier_smoothing(t, fsm.smoothing_logit, fsm.init_level,
                                                                             fsm.smoothed_scale, fsm.mix)},
                              [x], 2 * x.numel() * element),
        "frequency_filter": ({"published": lambda *ys: [published_filter(y) for y in ys],
                              "reference": filter_groups},
                             groups, 6 * x.numel() * element),
        "hybrid_layer": ({"published": lambda t: published_layer(t, key_bias),
                          "reference": lambda t: layer(t, key_bias)},
                         [x.float()], 0),
    }
    layer_weights = layer.weights()
    heads = config["n_heads"]
    seasonal_published = published_layer.multi_head_attention
    dynamic_published = published_layer.multi_head_attention1

    def hybrid_attention(t):
        return list(ops.hybrid_attention(t, key_bias, layer_weights.seasonal, layer_weights.dynamic, heads))

    def published_hybrid_attention(t):
        return [seasonal_published.gated_context(t, key_bias), dynamic_published.context(t, key_bias)]

    forward_fns["hybrid_attention"] = ({"published": published_hybrid_attention, "reference": hybrid_attention},
                                       [x.float()], 0)
    forward_fns["multiscale_conv"] = (
        {"published": lambda c: list(seasonal_published.convolutions(c)),
         "reference": lambda c: ops.multiscale_conv(c, layer_weights.seasonal.conv_weights,
                                                    layer_weights.seasonal.conv_biases)},
        [x.float()], 0)
    modules = [model, published]
    cases = []
    triton = absent_reason("triton", device) is None
    cuda = absent_reason("cuda", device) is None
    for op, (fns, inputs, moved) in forward_fns.items():
        if compile_reference:
            fns = dict(fns, **{"reference+compile": torch.compile(fns["reference"])})
        if triton:
            fns = dict(fns, triton=fns["reference"])
        if cuda and op in CUDA_OP_ROWS:
            fns = dict(fns, cuda=fns["reference"])
        fns = {name: _on_backend(name, fn) for name, fn in fns.items()}
        for mode, backward, moved_bytes in (("forward", False, moved), ("forward+backward", True, 0)):
            runs = _op_runs(fns, inputs, backward, modules, device, dtype)
            cases.append(Case(setting, op, mode, batch, moved_bytes, runs))
    return cases
