"""One contract per public op, on every backend (issue 25 point 2): a wrong call of any op of
``asrec.ops`` gets the same error on "reference" and "triton" (interpreter), or the same value,
and every error comes from the op's boundary (``asrec/ops/_contract.py``) before
``backends.plan`` picks an implementation, so the CUDA path, which cannot run here, gives it too
(checked by dispatching the same wrong calls under ``use_backend("cuda")``).

Wrong calls are drawn by hypothesis from one valid tiny call per op (tests/op_calls.py): one
tensor argument transposed (the right element count), with an axis more or less, in bfloat16
among float32 tensors, bool, of the other kind (int for float, float for int), or on the
"meta" device; a dropout_p outside [0, 1); an index out of range (a target of -100 or n_items,
a row past seq_len, an id past the table, a length of 0)."""

import math
import traceback

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asrec import backends, ops

from .op_calls import BATCH, N_ITEMS, SEQ_LEN, run, valid_call

pytest.importorskip("triton")

OPS = list(ops.__all__)

# the dropout arguments of each op: (position in args or keyword name)
DROPOUTS = {
    "input_stage": [6], "frequency_filter": ["dropout_p"], "frequency_filter_groups": ["dropout_p"],
    "attention": ["dropout_p"], "gated_attention": ["dropout_p"], "hybrid_attention": ["dropout_p"],
    "residual_norm": ["dropout_p"], "feed_forward": ["dropout_p"],
    "seasonal_branch": ["hidden_dropout_p", "attn_dropout_p"], "dynamic_branch": ["hidden_dropout_p", "attn_dropout_p"],
    "hybrid_layer": ["hidden_dropout_p", "attn_dropout_p"],
}
BAD_PROBABILITIES = [-0.1, 1.0, 1.5, math.nan, math.inf]

# the other scalar arguments of each op (position in args or keyword name) and wrong values of each
SCALARS = {
    "input_stage": {5: "eps", 7: "training", 11: "mix"}, "fourier_smoothing": {4: "mix"},
    "frequency_filter": {4: "eps", "training": "training"}, "frequency_filter_groups": {4: "eps", "training": "training"},
    "attention": {"training": "training"}, "gated_attention": {"training": "training"},
    "hybrid_attention": {"training": "training"}, "residual_norm": {4: "eps", "training": "training"},
    "feed_forward": {"training": "training"}, "multiscale_conv": {"stacked": "training"},
    "seasonal_branch": {"training": "training"}, "dynamic_branch": {"training": "training"},
    "hybrid_layer": {"training": "training"},
}
BAD_SCALARS = {"eps": [-1.0, math.nan, "1e-5", None, torch.tensor(1e-5)], "training": ["no", None, 1, 0.0],
               "mix": [math.inf, math.nan, "1", None]}

# the index arguments of each op: (path into args, values out of range)
INDICES = {
    "input_stage": ((0,), [N_ITEMS, -1]),
    "padding_bias": ((1,), [0, SEQ_LEN + 1]),
    "take_rows": ((0,), [SEQ_LEN, -1]),
    "cross_entropy": ((1,), [-100, N_ITEMS]),
    "linear_cross_entropy": ((2,), [-100, N_ITEMS]),
    "target_ranks": ((2,), [-100, N_ITEMS]),
}

TENSOR_CHANGES = ["transposed", "extra_axis", "fewer_axes", "bfloat16", "bool", "other_kind", "meta"]


def _leaves(obj, path=()):
    if isinstance(obj, torch.Tensor):
        yield path, obj
    elif isinstance(obj, (tuple, list)):
        for i, value in enumerate(obj):
            yield from _leaves(value, path + (i,))


def _replace(obj, path, new):
    if not path:
        return new
    items = list(obj)
    items[path[0]] = _replace(items[path[0]], path[1:], new)
    if isinstance(obj, list):
        return items
    return type(obj)(*items) if hasattr(obj, "_fields") else tuple(items)


def _get(obj, path):
    for i in path:
        obj = obj[i]
    return obj


def _changed(tensor: torch.Tensor, change: str):
    """``tensor`` changed by ``change``, or None where the change does not apply."""
    if change == "transposed":
        shape = tuple(reversed(tensor.shape))
        return tensor.reshape(shape) if tensor.dim() >= 2 and shape != tuple(tensor.shape) else None
    if change == "extra_axis":
        return tensor.unsqueeze(0)
    if change == "fewer_axes":
        return tensor.flatten(-2) if tensor.dim() >= 2 else None
    if change == "bfloat16":
        return tensor.to(torch.bfloat16) if tensor.dtype == torch.float32 else None
    if change == "bool":
        return tensor.bool()
    if change == "other_kind":
        return tensor.long() if tensor.is_floating_point() else tensor.float()
    return tensor.to("meta")


def _outcome(op, args, kwargs, backend):
    """("ok", result) or (exception type, message, raised at the op's boundary)."""
    torch.manual_seed(0)
    try:
        with backends.use_backend(backend):
            return ("ok", run(op, args, kwargs))
    except Exception as error:  # noqa: BLE001 (any error is compared across backends)
        frames = traceback.extract_tb(error.__traceback__)
        at_boundary = any(frame.filename.endswith("_contract.py") for frame in frames)
        return (type(error), str(error), at_boundary)


def _assert_same(first, second, what):
    if first[0] != "ok" or second[0] != "ok":
        assert first == second, f"{what}: {first} vs {second}"
        return
    left, right = [t for _, t in _leaves(first[1])], [t for _, t in _leaves(second[1])]
    assert len(left) == len(right), what
    for a, b in zip(left, right):
        assert (a.shape, a.dtype, a.device) == (b.shape, b.dtype, b.device), what
        if a.is_floating_point():
            low = a.dtype in (torch.bfloat16, torch.float16)
            torch.testing.assert_close(a, b, atol=3e-2 if low else 2e-3, rtol=3e-2 if low else 2e-3, equal_nan=True,
                                       msg=what)
        else:
            assert torch.equal(a, b), what


@st.composite
def wrong_calls(draw, op):
    """(description, args, kwargs) of a wrong call of ``op``."""
    args, kwargs = valid_call(op)
    kinds = ["tensor"] + (["dropout"] if op in DROPOUTS else []) + (["index"] if op in INDICES else [])
    kind = draw(st.sampled_from(kinds + (["scalar"] if op in SCALARS else [])))
    if kind == "scalar":
        where, what = draw(st.sampled_from(sorted(SCALARS[op].items(), key=str)))
        value = draw(st.sampled_from(BAD_SCALARS[what]))
        if isinstance(where, int):
            args = _replace(args, (where,), value)
        else:
            kwargs = {**kwargs, where: value}
        return f"{where}={value!r}", args, kwargs
    if kind == "dropout":
        where = draw(st.sampled_from(DROPOUTS[op]))
        value = draw(st.sampled_from(BAD_PROBABILITIES))
        if isinstance(where, int):
            args = _replace(args, (where,), value)
        else:
            kwargs = {**kwargs, where: value}
        return f"{where}={value}", args, kwargs
    if kind == "index":
        path, values = INDICES[op]
        value = draw(st.sampled_from(values))
        index = _get(args, path).clone()
        index.view(-1)[draw(st.integers(0, index.numel() - 1))] = value
        return f"args{path} holding {value}", _replace(args, path, index), kwargs
    leaves = list(_leaves(args))
    path, tensor = leaves[draw(st.integers(0, len(leaves) - 1))]
    change = draw(st.sampled_from([c for c in TENSOR_CHANGES if _changed(tensor, c) is not None]))
    new = _changed(tensor, change)
    return f"args{path} {tuple(tensor.shape)} {tensor.dtype} {change}", _replace(args, path, new), kwargs


COMPOSITIONS = ("seasonal_branch", "dynamic_branch", "hybrid_layer")


@pytest.mark.parametrize("op", OPS)
def test_wrong_calls_behave_alike_on_every_backend(op):
    # few examples: a wrong call that passes the contract runs the interpreted kernels (slow)
    @settings(max_examples=3 if op in COMPOSITIONS else 8, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(wrong_calls(op))
    def check(call):
        what, args, kwargs = call
        reference = _outcome(op, args, kwargs, "reference")
        triton = _outcome(op, args, kwargs, "triton")
        _assert_same(reference, triton, f"{op} with {what}")
        if reference[0] != "ok":
            assert reference[2], f"{op} with {what}: raised past the op's boundary: {reference[:2]}"
            if op not in COMPOSITIONS:
                # the CUDA path: the same error, before its plan would say CPU tensors cannot run there (a
                # composition checks each leaf's arguments at that leaf, after the leaves before it ran:
                # on "cuda" here an earlier leaf would refuse the CPU tensors first)
                assert _outcome(op, args, kwargs, "cuda") == reference, f"{op} with {what} on 'cuda'"

    check()


@pytest.mark.parametrize("op", OPS)
def test_the_contract_runs_before_any_dispatch(op, monkeypatch):
    """A wrong call raises before ``backends.plan`` is asked which implementation runs it:
    backend-independent by construction (the CUDA extension is not built here)."""
    planned = []
    real_plan = backends.plan
    monkeypatch.setattr(backends, "plan", lambda *a, **k: planned.append(a[0]) or real_plan(*a, **k))
    args, kwargs = valid_call(op)
    path, tensor = next(iter(_leaves(args)))
    wrong = _replace(args, path, tensor.to("meta"))  # another device than the other tensors'
    for backend in ("cuda", "triton", "reference"):
        with backends.use_backend(backend), pytest.raises(ValueError, match=f"{op}: .* is on (meta|cpu), .* on "
                                                                            "(cpu|meta): every tensor of a call"):
            run(op, wrong, kwargs)
    assert planned == [], f"{op}: dispatched {planned} before refusing the call"
    with backends.use_backend("reference"):
        run(op, args, kwargs)
    assert planned, f"{op}: the valid call never reached backends.plan"


# ---- the cases the issue names ----

def test_a_transposed_key_bias_is_refused():
    args, _ = valid_call("attention")
    key_bias = args[3].reshape(BATCH, SEQ_LEN, 1, 1)
    for backend in ("reference", "triton"):
        with backends.use_backend(backend), pytest.raises(ValueError, match=r"attention: key_bias must be \(batch, "
                                                                           r"1, 1, seq_len\) = \(2, 1, 1, 4\), got "
                                                                           r"\(2, 4, 1, 1\)"):
            ops.attention(*args[:3], key_bias)


def test_a_bool_key_bias_is_refused_with_what_it_would_mean():
    args, _ = valid_call("gated_attention")
    with pytest.raises(ValueError, match="key_bias must be an additive float bias .* not a bool mask"):
        ops.gated_attention(*args[:3], args[3] == 0, *args[4:])


@pytest.mark.parametrize("dropout_p", [-0.5, 1.0, 2.0, math.nan, "0.1", True])
def test_a_dropout_p_outside_0_1_is_refused(dropout_p):
    args, _ = valid_call("attention")
    with pytest.raises(ValueError, match=r"attention: dropout_p must be a number in \[0, 1\)"):
        ops.attention(*args, dropout_p=dropout_p, training=True)


@pytest.mark.parametrize("op", ["cross_entropy", "linear_cross_entropy", "target_ranks"])
def test_a_target_of_minus_100_is_out_of_range_not_ignored(op):
    args, _ = valid_call(op)
    targets = args[-1].clone()
    targets[0] = -100
    for backend in ("reference", "triton"):
        with backends.use_backend(backend), pytest.raises(
                ValueError, match=rf"{op}: targets must lie in \[0, {N_ITEMS - 1}\], got min -100, max 5 "
                                  r"\(there is no ignore_index"):
            run(op, (*args[:-1], targets), {})


@pytest.mark.parametrize("training", ["no", None, 1])
def test_training_must_be_a_bool(training):
    args, _ = valid_call("residual_norm")
    with pytest.raises(TypeError, match=rf"residual_norm: training must be True or False, got {training!r}"):
        ops.residual_norm(*args, dropout_p=0.1, training=training)


@pytest.mark.parametrize("eps", [-1e-5, math.nan, "1e-5", torch.tensor(1e-5)])
def test_eps_must_be_a_finite_number_at_least_0(eps):
    args, _ = valid_call("frequency_filter")
    with pytest.raises(ValueError, match=r"frequency_filter: eps must be a finite number >= 0, got"):
        ops.frequency_filter(*args[:4], eps)


def test_mixed_bfloat16_and_float32_is_refused_where_the_math_needs_one_dtype():
    args, _ = valid_call("attention")
    for backend in ("reference", "triton"):
        with backends.use_backend(backend), pytest.raises(ValueError, match="attention: k is torch.bfloat16 and q "
                                                                            "torch.float32: q, k, v share one dtype"):
            ops.attention(args[0], args[1].bfloat16(), *args[2:])


def test_narrow_integer_ids_are_taken_as_ids():
    """input_stage takes the integer dtypes ASRecModel and padding_bias take (uint8 included)."""
    args, _ = valid_call("input_stage")
    expected = ops.input_stage(*args)
    for dtype in (torch.uint8, torch.int8, torch.int16, torch.int32):
        torch.testing.assert_close(ops.input_stage(args[0].to(dtype), *args[1:]), expected)


def test_index_ranges_are_read_without_a_kernel_or_a_sync():
    """On CPU tensors the range check reads host memory (NumPy): no kernel and no synchronisation
    in the step's audit, whose CPU run stands for a GPU's (where the check does not run)."""
    from .helpers import load_count_launches

    audit = load_count_launches().HostAudit()
    args, _ = valid_call("cross_entropy")
    from asrec.ops import _contract

    with audit:
        _contract.check_index_range("cross_entropy", "targets", args[1], 0, N_ITEMS)
    assert not audit.kernels and not audit.syncs and not audit.host_data, dict(audit.aten)
    assert sum(audit.aten.values()) <= 1  # the detach of .numpy(), a view
