"""Record every Triton kernel launch of the model and the standalone ops at the published
shapes, at both float32 matmul precisions ("highest": IEEE products, "high": TF32), without
running a kernel, and print them as JSON (one launch per line), each specialised as Triton's
JIT specialises it on a GPU (integers divisible by 16 and pointers 16-byte aligned get the
divisibility attribute, integers equal to 1 become constants: ``_jit_specialisation``).

Run as ``TRITON_INTERPRET=1 python -m tests.triton_aot.record_launches`` (the interpreter's
launch path is patched to record instead of executing, so this runs on any CPU in seconds;
the outputs of the skipped kernels are uninitialised memory, which only host code between
kernels reads; the few whose outputs a CPU op checks, ``RUN_WHEN_SKIPPING``, still run).
``compile_for_gpu`` then compiles each distinct launch for real GPU targets.
"""

import inspect
import json
import sys

import torch


def _jit_specialisation(value) -> tuple:
    """How Triton's JIT specialises one non-constexpr launch argument, as its launcher does
    (``JITFunction.run`` -> ``specialize_impl(backend, arg, is_const=False, specialize=True,
    align=True)``, the same code in Triton 3.6 and 3.9, and no asrec kernel opts out with
    ``do_not_specialize``): -> (type, attribute). An integer equal to 1 (or None) comes back
    as ("constexpr", value): the kernel is compiled with it as a constant. Otherwise the type
    is the signature's ("*fp32", "i32", "i64" past int32, "u1", "fp32") and the attribute "D"
    where an integer is divisible by 16 or a pointer 16-byte aligned (the compiler's
    ``tt.divisibility = 16``), "" where not, None for what is never specialised (floats, bools).
    Pointers: CPU allocations here are 64-byte aligned and CUDA's 256-byte aligned, so a
    view's alignment (an offset into a buffer) is the same as on the GPU."""
    from triton.backends.nvidia.compiler import CUDABackend
    from triton.runtime.jit import native_specialize_impl

    kind, attribute = native_specialize_impl(CUDABackend, value, False, True, True)[:2]
    return kind, attribute


def install_recorder(launches: list):
    """Make every interpreted launch append (kernel, signature, constexprs, attrs, options) to
    ``launches``, specialised as the JIT would (``_jit_specialisation``)."""
    import triton.language as tl
    from triton.runtime.interpreter import InterpretedFunction

    from asrec.kernels.padding_bias import RUN_WHEN_SKIPPING

    interpret = InterpretedFunction.run

    def record(self, *args, grid, warmup, **kwargs):
        parameters = list(inspect.signature(self.fn).parameters.values())
        bound = dict(zip([p.name for p in parameters], args))
        options = {}
        for key, value in kwargs.items():
            if key in bound or key in {p.name for p in parameters}:
                bound[key] = value
            else:
                options[key] = value
        signature, constexprs, attrs = {}, {}, {}
        for parameter in parameters:
            value = bound[parameter.name]
            if parameter.annotation is tl.constexpr:
                signature[parameter.name] = "constexpr"
                constexprs[parameter.name] = value
                continue
            kind, attribute = _jit_specialisation(value)
            signature[parameter.name] = kind
            if kind == "constexpr":  # an integer 1 or None: a constant of this compile, as the JIT makes it
                constexprs[parameter.name] = value
            elif attribute is not None:
                attrs[parameter.name] = attribute
        launches.append(dict(module=self.fn.__module__, kernel=self.fn.__name__, signature=signature,
                             constexprs=constexprs, attrs=attrs, options=options))
        if self.fn.__name__ in RUN_WHEN_SKIPPING:
            return interpret(self, *args, grid=grid, warmup=warmup, **kwargs)

    InterpretedFunction.run = record


def _model_launches(setting: str, config: dict, batch: int):
    import asrec

    model = asrec.ASRecModel(**config)
    model.check_values = False
    items = torch.randint(1, config["n_items"], (batch, config["max_seq_length"]))
    lengths = torch.full((batch,), config["max_seq_length"])
    targets = torch.randint(1, config["n_items"], (batch,))
    with asrec.use_backend("triton"):
        for train in (False, True):  # eval: no dropout variants; train: the dropout ones
            model.train(train)
            model.loss(items, lengths, targets).backward()
            with torch.no_grad():
                model.full_sort_scores(items, lengths)


def _standalone_launches(config: dict, batch: int):
    """The ops the model does not launch on its own: plain and gated attention, the smoothing,
    take_rows, the materialised cross-entropy, the evaluation's ranks, recommend's top-k."""
    import asrec
    from asrec import ops

    seq_len, hidden, heads = config["max_seq_length"], config["hidden_size"], config["n_heads"]
    d = hidden // heads
    q, k, v = (torch.randn(batch, heads, seq_len, d, requires_grad=True) for _ in range(3))
    bias = torch.zeros(batch, 1, 1, seq_len)
    gate = (torch.randn(2 * d, 2 * d, requires_grad=True), torch.randn(2 * d, requires_grad=True))
    x = torch.randn(batch, seq_len, hidden, requires_grad=True)
    with asrec.use_backend("triton"):
        for p, training in ((0.0, False), (0.5, True)):
            ops.gated_attention(q, k, v, bias, *gate, p, training).sum().backward()
            ops.attention(q[:, :, :1], k, v, bias, p, training).sum().backward()
        ops.fourier_smoothing(x, torch.tensor([0.3]), torch.zeros(1, 1, hidden), torch.ones(1, 1, hidden),
                              0.4).sum().backward()
        # the last layer's rows of x and of the dynamic context (two tensors: one launch each way)
        rows = torch.full((batch,), seq_len - 1)
        sum(t.sum() for t in ops.take_rows(rows, x, x * 2)).backward()
        # the materialised loss over full-sort scores (the model's loss is the tiled linear_cross_entropy)
        n_items = config["n_items"]
        ops.cross_entropy(torch.randn(batch, n_items, requires_grad=True), torch.ones(batch, dtype=torch.int64)).backward()
        # the evaluation's ranks and recommend's top-k (k + the history's columns candidates per row)
        scored, catalog = torch.randn(batch, hidden), torch.randn(n_items, hidden)
        ops.target_ranks(scored, catalog, torch.ones(batch, dtype=torch.int64))
        ops.top_items(scored, catalog, 10, torch.ones((batch, seq_len), dtype=torch.int64))


def main():
    from asrec.bench.settings import SETTINGS

    launches = []
    install_recorder(launches)
    batch = 256
    # "high" gives the TF32 variants of the GEMM-like kernels (their DOT_PRECISION constexpr)
    for precision in ("highest", "high"):
        torch.set_float32_matmul_precision(precision)
        for setting, config in SETTINGS.items():
            _model_launches(setting, config, batch)
            _standalone_launches(config, batch)
    seen = set()
    for launch in launches:
        key = json.dumps(launch, sort_keys=True)
        if key not in seen:
            seen.add(key)
            sys.stdout.write(key + "\n")


if __name__ == "__main__":
    main()
