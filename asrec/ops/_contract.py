"""The contract of every public op of ``asrec.ops``, in one place.

Each public op calls its ``check_<op>`` here first thing, before ``backends.plan`` picks an
implementation, so the reference, Triton and CUDA paths get the same error for the same
wrong call: the backends are not consulted until the call is known to be well formed. What
a contract checks, in this order (the first failure raises):

- types: each tensor argument is a ``torch.Tensor`` (TypeError naming it);
- shapes: every axis, not the element count (a transposed tensor is refused);
- dtypes: floating arguments take float16, bfloat16, float32 or float64; ids, lengths and
  positions take integer dtypes. A bool tensor is refused everywhere, with what to pass
  instead (a key_bias is an additive float bias, not a bool mask; a bool is not an id).
  Outside autocast the tensors that an op multiplies or normalises together share one
  dtype (mixed bfloat16/float32 raised on one backend and computed on another); the
  exceptions are documented per op below (an additive bias, take_rows' tensors, the
  residual and the activations of residual_norm, the smoothing parameters);
- devices: every tensor of a call on one device (named; on another device than the
  tensors, a ``meta`` tensor included);
- scalars: a dropout_p is a real number in [0, 1), an eps a finite number >= 0, training (and
  other flags) True or False, the smoothing's mix a finite number;
- index ranges: ids, targets, lengths and positions lie in their range (no ignore_index:
  a target of -100 is out of range like any other).

Shape, dtype and device checks read metadata only. An index-range check reads the values,
which on a GPU is a host synchronisation per call (DESIGN.md: a training step makes none).
So the ranges are checked where reading costs nothing: on CPU tensors, in eager mode,
through NumPy over the tensor's memory (no aten kernel, no synchronisation). On CUDA
tensors and under ``torch.compile`` the op does not read them: there the caller holds the range (the
model checks its inputs at its own boundary, ``ASRecModel(check_values=True)``, with
``torch._check`` under compile), and an out-of-range value is not defined behaviour: a NaN
loss row or a NaN row on "triton", torch's own behaviour on "reference" (a device-side
assert of a gather; ``F.cross_entropy``, under ``cross_entropy``, skips a target of -100).

Value checks that remain per backend are capability checks (``backends.plan``: float64 or a
shape a fused kernel does not take), which name the backend, and the kernels' own guards.
"""

import math
import numbers

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
_FLOAT_NAMES = "float16, bfloat16, float32 or float64"
_INTEGER_NAMES = "int64, int32, int16, int8 or uint8"


# ---- the checks each contract is made of ----

def check_tensors(op: str, **named) -> None:
    """Each named argument is a tensor (a list or array is a TypeError naming it)."""
    for name, value in named.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")


def check_tensor_list(op: str, name: str, values, length=None) -> None:
    """``values`` is a list or tuple of ``length`` tensors (None: any number but none)."""
    is_list = isinstance(values, (list, tuple))
    if not is_list or (len(values) != length if length is not None else not values):
        wanted = f"a list of {length} tensors" if length is not None else "a non-empty list of tensors"
        raise TypeError(f"{op}: {name} must be {wanted}, got {type(values).__name__}"
                        + (f" of length {len(values)}" if is_list else ""))
    check_tensors(op, **{f"{name}[{i}]": v for i, v in enumerate(values)})


def check_shape(op: str, name: str, tensor: torch.Tensor, expected: tuple, meaning: str = "") -> None:
    """Every axis of ``tensor`` as ``expected`` (sizes; None for any size)."""
    if tensor.dim() != len(expected) or any(e is not None and e != s for e, s in zip(expected, tensor.shape)):
        sizes = ", ".join("*" if e is None else str(e) for e in expected)
        want = f"({sizes}{',' if len(expected) == 1 else ''})"
        raise ValueError(f"{op}: {name} must be {meaning + ' = ' if meaning else ''}{want}, got {tuple(tensor.shape)}")


def check_one_element(op: str, name: str, tensor: torch.Tensor) -> None:
    """A scalar parameter: shape () or (1,) (a (1, 1) or (2,) tensor is refused)."""
    if tensor.shape not in ((), (1,)):
        raise ValueError(f"{op}: {name} must be a scalar of shape () or (1,), got {tuple(tensor.shape)}")


def check_norm(op: str, hidden: int, **tensors: torch.Tensor) -> None:
    """Each named LayerNorm weight or bias is (hidden,)."""
    for name, tensor in tensors.items():
        if tensor.shape != (hidden,):
            raise ValueError(f"{op}: {name} must be ({hidden},), got {tuple(tensor.shape)}")


def check_floating(op: str, **tensors: torch.Tensor) -> None:
    """Each named tensor has a floating dtype; a bool one is refused with what it would mean."""
    for name, tensor in tensors.items():
        if tensor.dtype in FLOAT_DTYPES:
            continue
        if name == "key_bias" and tensor.dtype == torch.bool:
            raise ValueError(f"{op}: key_bias must be an additive float bias (0 at keys to attend, -10000 at "
                             "padding), not a bool mask (asrec.ops.padding_bias makes one from the ids), got "
                             "torch.bool")
        hint = " (a bool tensor is not read as 0/1 numbers: convert it with .float() if that is meant)" \
            if tensor.dtype == torch.bool else ""
        raise ValueError(f"{op}: {name} must be a floating tensor ({_FLOAT_NAMES}), got {tensor.dtype}{hint}")


def check_integer(op: str, what: str, **tensors: torch.Tensor) -> None:
    """Each named tensor has an integer dtype (``what``: e.g. "item ids"); bool is refused."""
    for name, tensor in tensors.items():
        if tensor.dtype not in INTEGER_DTYPES:
            hint = " (a bool tensor is not " + what + ")" if tensor.dtype == torch.bool else ""
            raise ValueError(f"{op}: {name} must be an integer tensor of {what} ({_INTEGER_NAMES}), got "
                             f"{tensor.dtype}{hint}")


def autocasting(device: torch.device) -> bool:
    """Whether autocast is on for ``device`` (False for a device type autocast does not know, e.g. meta)."""
    try:
        return torch.is_autocast_enabled(device.type)
    except RuntimeError:
        return False


def check_one_dtype(op: str, **tensors: torch.Tensor) -> None:
    """Outside autocast the named tensors share one dtype (autocast casts them at each product)."""
    first_name, first = next(iter(tensors.items()))
    if autocasting(first.device):
        return
    for name, tensor in tensors.items():
        if tensor.dtype != first.dtype:
            raise ValueError(f"{op}: {name} is {tensor.dtype} and {first_name} {first.dtype}: "
                             f"{', '.join(tensors)} share one dtype (convert them, or run under torch.autocast)")


def check_one_device(op: str, **tensors: torch.Tensor) -> None:
    """Every named tensor on the first one's device."""
    first_name, first = next(iter(tensors.items()))
    for name, tensor in tensors.items():
        if tensor.device != first.device:
            raise ValueError(f"{op}: {name} is on {tensor.device}, {first_name} on {first.device}: every tensor "
                             "of a call must be on one device")


def check_dropout(op: str, dropout_p, name: str = "dropout_p") -> None:
    """A probability in [0, 1) (1 would drop everything and scale by infinity)."""
    if isinstance(dropout_p, bool) or not isinstance(dropout_p, numbers.Real) or not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: {name} must be a number in [0, 1), got {dropout_p!r}")


def check_number(op: str, name: str, value, low: float = -math.inf) -> None:
    """A finite real number >= ``low`` (a Python number: a tensor or a string is refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < low:
        wanted = "a finite number" + (f" >= {low:g}" if low > -math.inf else "")
        raise ValueError(f"{op}: {name} must be {wanted}, got {value!r}")


def check_flag(op: str, name: str, value) -> None:
    """True or False (a string such as "no" is truthy: refused, not read as True)."""
    if not isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")


def check_scalars(op: str, **scalars) -> None:
    """The scalar arguments an op has, by name: eps a finite number >= 0, training a bool, mix
    (the smoothing's A) a finite number."""
    for name, value in scalars.items():
        if name == "training":
            check_flag(op, name, value)
        else:
            check_number(op, name, value, 0.0 if name == "eps" else -math.inf)


def check_output_rows(op: str, output_rows, batch: int, seq_len: int, device) -> None:
    """None, or (batch,) int64 positions in [0, seq_len) on ``device``."""
    if output_rows is None:
        return
    if not torch.is_tensor(output_rows) or output_rows.shape != (batch,) or output_rows.dtype != torch.int64:
        got = (f"{tuple(output_rows.shape)} {output_rows.dtype}" if torch.is_tensor(output_rows)
               else type(output_rows).__name__)
        raise ValueError(f"{op}: output_rows must be a ({batch},) int64 tensor of positions, got {got}")
    if output_rows.device != device:
        raise ValueError(f"{op}: output_rows is on {output_rows.device}, x on {device}: every tensor of a call "
                         "must be on one device")
    check_index_range(op, "output_rows", output_rows, 0, seq_len)


def values_readable(tensor: torch.Tensor) -> bool:
    """Whether this op may read ``tensor``'s values at no cost: a plain CPU tensor in eager mode."""
    return (type(tensor) is torch.Tensor and tensor.device.type == "cpu" and tensor.numel() > 0
            and not torch.compiler.is_compiling())


def check_index_range(op: str, name: str, tensor: torch.Tensor, low: int, high: int, note: str = "") -> None:
    """Every value of the integer ``tensor`` in [low, high), where ``values_readable``.

    Read through NumPy: on the CPU a pass over host memory, no aten kernel and no
    synchronisation in the step's audit (benchmarks/count_launches.py, whose CPU run stands for
    the GPU's: on a GPU this check does not run)."""
    if not values_readable(tensor):
        return
    values = tensor.numpy()  # an integer tensor: never requires grad
    seen_low, seen_high = int(values.min()), int(values.max())
    if seen_low < low or seen_high >= high:
        raise ValueError(f"{op}: {name} must lie in [{low}, {high - 1}], got min {seen_low}, max {seen_high}{note}")


_NO_IGNORE_INDEX = " (there is no ignore_index: every row is a target)"


# ---- one contract per public op ----

def check_input_stage(item_seq, item_weight, position_weight, norm_weight, norm_bias, eps, dropout_p, training,
                      smoothing_logit, init_level, smoothed_scale, mix) -> None:
    """item_seq (batch, seq_len) integer ids in [0, n_items); item_weight (n_items, hidden);
    position_weight (>= seq_len, hidden); norm_* (hidden,); smoothing as ``check_fourier_smoothing``
    (any float dtype: the smoothing computes in float32); the tables and norm share one dtype."""
    op = "input_stage"
    check_tensors(op, item_seq=item_seq, item_weight=item_weight, position_weight=position_weight,
                  norm_weight=norm_weight, norm_bias=norm_bias, smoothing_logit=smoothing_logit,
                  init_level=init_level, smoothed_scale=smoothed_scale)
    check_shape(op, "item_seq", item_seq, (None, None), "(batch, seq_len)")
    check_shape(op, "item_weight", item_weight, (None, None), "(n_items, hidden)")
    hidden, seq_len = item_weight.shape[1], item_seq.shape[1]
    if position_weight.dim() != 2 or position_weight.shape[1] != hidden or position_weight.shape[0] < seq_len:
        raise ValueError(f"{op}: position_weight must be (>= {seq_len}, {hidden}), got "
                         f"{tuple(position_weight.shape)}")
    check_norm(op, hidden, norm_weight=norm_weight, norm_bias=norm_bias)
    _check_smoothing_shapes(op, hidden, smoothing_logit, init_level, smoothed_scale)
    check_integer(op, "item ids", item_seq=item_seq)
    floats = dict(item_weight=item_weight, position_weight=position_weight, norm_weight=norm_weight,
                  norm_bias=norm_bias)
    check_floating(op, **floats, smoothing_logit=smoothing_logit, init_level=init_level, smoothed_scale=smoothed_scale)
    check_one_dtype(op, **floats)
    check_one_device(op, item_weight=item_weight, item_seq=item_seq, position_weight=position_weight,
                     norm_weight=norm_weight, norm_bias=norm_bias, smoothing_logit=smoothing_logit,
                     init_level=init_level, smoothed_scale=smoothed_scale)
    check_dropout(op, dropout_p)
    check_scalars(op, eps=eps, training=training, mix=mix)
    check_index_range(op, "item_seq", item_seq, 0, item_weight.shape[0], " (the rows of item_weight)")


def check_padding_bias(item_seq, item_seq_len) -> None:
    """item_seq (batch, seq_len) integer ids; item_seq_len None or (batch,) integer lengths in [1, seq_len]."""
    op = "padding_bias"
    check_tensors(op, item_seq=item_seq)
    if item_seq.dim() != 2 or item_seq.dtype not in INTEGER_DTYPES:
        raise ValueError(f"{op}: item_seq must be a (batch, seq_len) integer tensor, got shape "
                         f"{tuple(item_seq.shape)} of {item_seq.dtype}")
    if item_seq_len is None:
        return
    check_tensors(op, item_seq_len=item_seq_len)
    if item_seq_len.shape != (item_seq.shape[0],) or item_seq_len.dtype not in INTEGER_DTYPES:
        raise ValueError(f"{op}: item_seq_len must be a ({item_seq.shape[0]},) integer tensor, got shape "
                         f"{tuple(item_seq_len.shape)} of {item_seq_len.dtype}")
    check_one_device(op, item_seq=item_seq, item_seq_len=item_seq_len)
    check_index_range(op, "item_seq_len", item_seq_len, 1, item_seq.shape[1] + 1)


def _check_smoothing_shapes(op, hidden, smoothing_logit, init_level, smoothed_scale) -> None:
    check_one_element(op, "smoothing_logit", smoothing_logit)
    for name, tensor in (("init_level", init_level), ("smoothed_scale", smoothed_scale)):
        if tensor.shape != (1, 1, hidden):
            raise ValueError(f"{op}: {name} must be (1, 1, {hidden}), got {tuple(tensor.shape)}")


def check_fourier_smoothing(x, smoothing_logit, init_level, smoothed_scale, mix) -> None:
    """x (batch, seq_len, hidden); smoothing_logit () or (1,); init_level, smoothed_scale (1, 1,
    hidden); any float dtypes (the smoothing computes in float32, float64 for float64 x)."""
    op = "fourier_smoothing"
    check_tensors(op, x=x, smoothing_logit=smoothing_logit, init_level=init_level, smoothed_scale=smoothed_scale)
    if x.dim() != 3:
        raise ValueError(f"{op}: x must be (batch, seq_len, hidden), got shape {tuple(x.shape)}")
    _check_smoothing_shapes(op, x.shape[-1], smoothing_logit, init_level, smoothed_scale)
    named = dict(x=x, smoothing_logit=smoothing_logit, init_level=init_level, smoothed_scale=smoothed_scale)
    check_floating(op, **named)
    check_one_device(op, **named)
    check_scalars(op, mix=mix)


def check_frequency_filter(op: str, y, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope) -> None:
    """y (batch, [groups,] seq_len, hidden); threshold () or (1,) quantile level (any float
    dtype); norm_* (hidden,) in y's dtype. Also each group of ``frequency_filter_groups``."""
    from ..reference.frequency_filter import check_scope

    check_tensors(op, y=y, threshold=threshold, norm_weight=norm_weight, norm_bias=norm_bias)
    if y.dim() not in (3, 4):
        raise ValueError(f"{op}: y must be (batch, seq_len, hidden) or (batch, groups, seq_len, hidden), "
                         f"got shape {tuple(y.shape)}")
    check_norm(op, y.shape[-1], norm_weight=norm_weight, norm_bias=norm_bias)
    check_one_element(op, "threshold", threshold)
    check_floating(op, y=y, threshold=threshold, norm_weight=norm_weight, norm_bias=norm_bias)
    check_one_dtype(op, y=y, norm_weight=norm_weight, norm_bias=norm_bias)
    check_one_device(op, y=y, threshold=threshold, norm_weight=norm_weight, norm_bias=norm_bias)
    check_dropout(op, dropout_p)
    check_scalars(op, eps=eps, training=training)
    check_scope(scope, f"{op}: scope")


def check_frequency_filter_groups(groups, threshold, norm_weight, norm_bias, eps, dropout_p, training, scope) -> None:
    """groups: a non-empty list of same-shaped (batch, seq_len, hidden) tensors of one dtype and
    device, or one (groups, batch, seq_len, hidden) tensor; the rest as ``check_frequency_filter``."""
    op = "frequency_filter_groups"
    if torch.is_tensor(groups):
        if groups.dim() != 4 or groups.shape[0] == 0:
            raise ValueError(f"{op}: a groups tensor must be (groups, batch, seq_len, hidden) with "
                             f"at least one group, got shape {tuple(groups.shape)}")
    else:
        check_tensor_list(op, "groups", groups)
        for i, group in enumerate(groups[1:], 1):
            if group.shape != groups[0].shape:
                raise ValueError(f"{op}: groups[{i}] is {tuple(group.shape)}, groups[0] {tuple(groups[0].shape)}: "
                                 "the groups share one shape")
        named = {f"groups[{i}]": g for i, g in enumerate(groups)}
        check_floating(op, **named)
        check_one_dtype(op, **named)
        check_one_device(op, **named)
    check_frequency_filter(op, groups[0], threshold, norm_weight, norm_bias, eps, dropout_p, training, scope)


def _check_attention(op, q, k, v, key_bias, dropout_p, training) -> None:
    check_tensors(op, q=q, k=k, v=v, key_bias=key_bias)
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"{op}: q, k, v must be (batch, heads, seq_len, head_dim), got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[3] != k.shape[3]:
        raise ValueError(f"{op}: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} do not agree")
    check_shape(op, "key_bias", key_bias, (k.shape[0], 1, 1, k.shape[2]), "(batch, 1, 1, seq_len)")
    check_floating(op, key_bias=key_bias, q=q, k=k, v=v)
    check_dropout(op, dropout_p)
    check_scalars(op, training=training)


def check_attention(q, k, v, key_bias, dropout_p, training) -> None:
    """q (batch, heads, q_len, d); k, v (batch, heads, N, d), one dtype; key_bias (batch, 1, 1, N)
    additive float (any float dtype); dropout_p in [0, 1)."""
    _check_attention("attention", q, k, v, key_bias, dropout_p, training)
    check_one_dtype("attention", q=q, k=k, v=v)
    check_one_device("attention", q=q, k=k, v=v, key_bias=key_bias)


def check_gated_attention(q, k, v, key_bias, gate_weight, gate_bias, dropout_p, training) -> None:
    """As ``check_attention`` with q's shape k's; gate_weight (2d, 2d), gate_bias (2d,) in q's dtype."""
    op = "gated_attention"
    _check_attention(op, q, k, v, key_bias, dropout_p, training)
    check_tensors(op, gate_weight=gate_weight, gate_bias=gate_bias)
    if q.shape != k.shape:
        raise ValueError(f"{op}: the gate reads v at every query, so q {tuple(q.shape)} must match "
                         f"k {tuple(k.shape)}")
    d = q.shape[-1]
    if gate_weight.shape != (2 * d, 2 * d) or gate_bias.shape != (2 * d,):
        raise ValueError(f"{op}: gate_weight must be ({2 * d}, {2 * d}) and gate_bias ({2 * d},), got "
                         f"{tuple(gate_weight.shape)} and {tuple(gate_bias.shape)}")
    check_floating(op, gate_weight=gate_weight, gate_bias=gate_bias)
    check_one_dtype(op, q=q, k=k, v=v, gate_weight=gate_weight, gate_bias=gate_bias)
    check_one_device(op, q=q, k=k, v=v, key_bias=key_bias, gate_weight=gate_weight, gate_bias=gate_bias)


def check_n_heads(op: str, n_heads) -> None:
    if isinstance(n_heads, bool) or not isinstance(n_heads, numbers.Integral) or n_heads < 1:
        raise ValueError(f"{op}: n_heads must be a positive int, got {n_heads!r}")


def check_hybrid_attention(x, key_bias, seasonal, dynamic, n_heads, dropout_p, training, output_rows, projections,
                           stacked) -> None:
    """x (batch, seq_len, hidden); key_bias (batch, 1, 1, seq_len) additive float; the six
    projections (hidden, hidden) + (hidden,), the stack (6 hidden, hidden) + (6 hidden,) if any,
    the gate (2d, 2d) + (2d,), all in x's dtype. projections: the named q/k/v LinearWeights;
    stacked: the shared stack or None."""
    op = "hybrid_attention"
    check_tensors(op, x=x, key_bias=key_bias)
    check_n_heads(op, n_heads)
    if x.dim() != 3:
        raise ValueError(f"{op}: x must be (batch, seq_len, hidden), got {tuple(x.shape)}")
    batch, seq_len, hidden = x.shape
    if hidden % n_heads:
        raise ValueError(f"{op}: hidden {hidden} is not a multiple of n_heads {n_heads}")
    check_shape(op, "key_bias", key_bias, (batch, 1, 1, seq_len), "(batch, 1, 1, seq_len)")
    weights = {}
    for name, linear in projections.items():
        check_tensors(op, **{f"{name}.weight": linear.weight, f"{name}.bias": linear.bias})
        if linear.weight.shape != (hidden, hidden) or linear.bias.shape != (hidden,):
            raise ValueError(f"{op}: {name} must be a ({hidden}, {hidden}) weight and a ({hidden},) "
                             f"bias, got {tuple(linear.weight.shape)} and {tuple(linear.bias.shape)}")
        weights[f"{name}.weight"], weights[f"{name}.bias"] = linear.weight, linear.bias
    if stacked is not None:
        if stacked.weight.shape != (6 * hidden, hidden) or stacked.bias.shape != (6 * hidden,):
            raise ValueError(f"{op}: stacked_projections must be a ({6 * hidden}, {hidden}) weight and a "
                             f"({6 * hidden},) bias, got {tuple(stacked.weight.shape)} and "
                             f"{tuple(stacked.bias.shape)}")
        weights["stacked_projections.weight"], weights["stacked_projections.bias"] = stacked
    gate = seasonal.gate
    check_tensors(op, **{"gate.weight": gate.weight, "gate.bias": gate.bias})
    d = hidden // n_heads
    if gate.weight.shape != (2 * d, 2 * d) or gate.bias.shape != (2 * d,):
        raise ValueError(f"{op}: the gate must be a ({2 * d}, {2 * d}) weight and a ({2 * d},) bias, "
                         f"got {tuple(gate.weight.shape)} and {tuple(gate.bias.shape)}")
    weights["gate.weight"], weights["gate.bias"] = gate.weight, gate.bias
    check_floating(op, key_bias=key_bias, x=x, **weights)
    check_one_dtype(op, x=x, **weights)
    check_one_device(op, x=x, key_bias=key_bias, **weights)
    check_dropout(op, dropout_p)
    check_scalars(op, training=training)
    check_output_rows(op, output_rows, batch, seq_len, x.device)


def check_take_rows(rows, tensors: tuple, max_tensors: int) -> None:
    """1 to ``max_tensors`` (batch, seq_len, hidden) tensors of one shape and device, each in its
    own float dtype; rows None or (batch,) int64 positions in [0, seq_len)."""
    op = "take_rows"
    if not 1 <= len(tensors) <= max_tensors:
        raise TypeError(f"{op}: takes 1 to {max_tensors} tensors after rows, got {len(tensors)}")
    named = {f"tensors[{i}]": t for i, t in enumerate(tensors)}
    check_tensors(op, **named)
    first = tensors[0]
    if first.dim() != 3:
        raise ValueError(f"{op}: tensors[0] must be (batch, seq_len, hidden), got shape {tuple(first.shape)}")
    for i, tensor in enumerate(tensors[1:], 1):
        if tensor.shape != first.shape or tensor.device != first.device:
            raise ValueError(f"{op}: tensors[{i}] is {tuple(tensor.shape)} on {tensor.device}, "
                             f"expected tensors[0]'s {tuple(first.shape)} on {first.device}")
    check_floating(op, **named)
    if rows is None:
        return
    check_tensors(op, rows=rows)
    if rows.shape != (first.shape[0],) or rows.dtype != torch.int64:
        raise ValueError(f"{op}: rows must be a ({first.shape[0]},) int64 tensor, got shape {tuple(rows.shape)} "
                         f"of {rows.dtype}")
    check_one_device(op, **named, rows=rows)
    check_index_range(op, "rows", rows, 0, first.shape[1])


def check_multiscale_conv(context, conv_weights, conv_biases, stacked, kernel_sizes) -> None:
    """context (batch, seq_len, hidden); conv_weights (seq_len, seq_len, k) for k in
    ``kernel_sizes``; conv_biases three (seq_len,); one dtype."""
    op = "multiscale_conv"
    check_tensors(op, context=context)
    check_tensor_list(op, "conv_weights", conv_weights, 3)
    check_tensor_list(op, "conv_biases", conv_biases, 3)
    if context.dim() != 3:
        raise ValueError(f"{op}: context must be (batch, seq_len, hidden), got {tuple(context.shape)}")
    seq_len = context.shape[1]
    for i, (size, weight, bias) in enumerate(zip(kernel_sizes, conv_weights, conv_biases)):
        if weight.shape != (seq_len, seq_len, size):
            raise ValueError(f"{op}: conv_weights[{i}] must be ({seq_len}, {seq_len}, {size}) (positions "
                             f"are the channels), got {tuple(weight.shape)}")
        if bias.shape != (seq_len,):
            raise ValueError(f"{op}: conv_biases[{i}] must be ({seq_len},), got {tuple(bias.shape)}")
    named = dict(context=context, **{f"conv_weights[{i}]": w for i, w in enumerate(conv_weights)},
                 **{f"conv_biases[{i}]": b for i, b in enumerate(conv_biases)})
    check_floating(op, **named)
    check_one_dtype(op, **named)
    check_one_device(op, **named)
    check_flag(op, "stacked", stacked)


def _branches(op: str, name: str, branches) -> dict:
    if torch.is_tensor(branches):
        if branches.dim() != 4 or branches.shape[0] != 3:
            raise ValueError(f"{op}: {name} must be three (batch, seq_len, hidden) tensors or one (3, batch, "
                             f"seq_len, hidden) tensor, got shape {tuple(branches.shape)}")
        return {name: branches}
    check_tensor_list(op, name, branches, 3)
    return {f"{name}[{i}]": t for i, t in enumerate(branches)}


def check_contrast_gelu(filtered, conv_outputs, position_scales, origin_scale, contrast_scale, output_rows) -> None:
    """filtered, conv_outputs: three (batch, seq_len, hidden) tensors or one (3, batch, seq_len,
    hidden) each (any float dtypes: the contrast promotes); position_scales (3, seq_len, 1);
    origin_scale, contrast_scale () or (1,); output_rows None or (batch,) int64 in [0, seq_len)."""
    op = "contrast_gelu"
    named = {**_branches(op, "filtered", filtered), **_branches(op, "conv_outputs", conv_outputs)}
    check_tensors(op, position_scales=position_scales, origin_scale=origin_scale, contrast_scale=contrast_scale)
    shape = conv_outputs[0].shape
    for name, tensor in [(f"filtered[{i}]", t) for i, t in enumerate(filtered)] + \
            [(f"conv_outputs[{i}]", t) for i, t in enumerate(conv_outputs)]:
        if tensor.shape != shape:
            raise ValueError(f"{op}: {name} has shape {tuple(tensor.shape)}, expected {tuple(shape)}")
    if len(shape) != 3:
        raise ValueError(f"{op}: the branches must be (batch, seq_len, hidden), got {tuple(shape)}")
    check_shape(op, "position_scales", position_scales, (3, shape[1], 1), "(3, seq_len, 1)")
    check_one_element(op, "origin_scale", origin_scale)
    check_one_element(op, "contrast_scale", contrast_scale)
    scalars = dict(position_scales=position_scales, origin_scale=origin_scale, contrast_scale=contrast_scale)
    check_floating(op, **named, **scalars)
    if output_rows is not None:
        if (not torch.is_tensor(output_rows) or output_rows.shape != (shape[0],)
                or output_rows.dtype != torch.int64):
            got = (f"{tuple(output_rows.shape)} {output_rows.dtype}" if torch.is_tensor(output_rows)
                   else type(output_rows).__name__)
            raise ValueError(f"{op}: output_rows must be a ({shape[0]},) int64 tensor of positions, got {got}")
        scalars["output_rows"] = output_rows
    check_one_device(op, **named, **scalars)
    if output_rows is not None:
        check_index_range(op, "output_rows", output_rows, 0, shape[1])


MIX_NAMES = ("mix_other", "mix_other_norm_weight", "mix_other_norm_bias", "mix_weight")


def check_residual_norm(x, residual, norm_weight, norm_bias, eps, dropout_p, training, mix, x_bias,
                        other_bias) -> None:
    """x, residual, mix's other (..., hidden) of one shape; norm weights and biases, x_bias,
    other_bias (hidden,); mix's weight () or (1,). Float dtypes: x, residual, other and the
    biases may differ (the sum promotes, as under autocast); each norm's weight and bias share
    one dtype."""
    op = "residual_norm"
    check_tensors(op, x=x, residual=residual, norm_weight=norm_weight, norm_bias=norm_bias)
    if x.shape != residual.shape:
        raise ValueError(f"{op}: x {tuple(x.shape)} and residual {tuple(residual.shape)} must match")
    if x.dim() == 0:
        raise ValueError(f"{op}: x must be (..., hidden), got shape ()")
    hidden = x.shape[-1]
    check_norm(op, hidden, norm_weight=norm_weight, norm_bias=norm_bias)
    named = dict(x=x, residual=residual, norm_weight=norm_weight, norm_bias=norm_bias)
    if mix is not None:
        if not isinstance(mix, (tuple, list)) or len(mix) != 4:
            raise TypeError(f"{op}: mix must be (other, other_norm_weight, other_norm_bias, weight), got "
                            f"{type(mix).__name__}" + (f" of length {len(mix)}" if isinstance(mix, (tuple, list))
                                                       else ""))
        check_tensors(op, **dict(zip(MIX_NAMES, mix)))
        if mix[0].shape != x.shape:
            raise ValueError(f"{op}: mix's other {tuple(mix[0].shape)} must match x {tuple(x.shape)}")
        check_norm(op, hidden, mix_other_norm_weight=mix[1], mix_other_norm_bias=mix[2])
        check_one_element(op, "mix's weight", mix[3])
        named.update(zip(MIX_NAMES, mix))
    elif other_bias is not None:
        raise ValueError(f"{op}: other_bias is the bias of mix's other: it needs mix")
    for name, bias in (("x_bias", x_bias), ("other_bias", other_bias)):
        if bias is not None:
            check_tensors(op, **{name: bias})
            check_norm(op, hidden, **{name: bias})
            named[name] = bias
    check_floating(op, **named)
    if not autocasting(x.device):
        # the norms normalise the promoted sum: their parameters in its dtype
        summed = x.dtype
        for tensor in (residual, x_bias, other_bias, None if mix is None else mix[0]):
            summed = summed if tensor is None else torch.promote_types(summed, tensor.dtype)
        norms = dict(norm_weight=norm_weight, norm_bias=norm_bias)
        if mix is not None:
            norms.update(mix_other_norm_weight=mix[1], mix_other_norm_bias=mix[2])
        for name, tensor in norms.items():
            if tensor.dtype != summed:
                raise ValueError(f"{op}: {name} is {tensor.dtype}, the sum it normalises (x + residual) {summed}: "
                                 "a norm's parameters share that dtype (convert them, or run under torch.autocast)")
    check_one_device(op, **named)
    check_dropout(op, dropout_p)
    check_scalars(op, eps=eps, training=training)


def check_feed_forward(x, weights, dropout_p, training, activations) -> None:
    """x (..., hidden); dense_in (inner, hidden) + (inner,); dense_out (hidden, inner) +
    (hidden,); norm (hidden,) twice; activation one of ``activations``; x, the two weights
    and the norm share one dtype outside autocast (the biases may differ: they are added)."""
    op = "feed_forward"
    if weights.activation not in activations:
        raise ValueError(f"{op}: activation must be one of {sorted(activations)}, got {weights.activation!r}")
    (w_in, b_in), (w_out, b_out), norm, _ = weights
    named = dict(x=x, dense_in_weight=w_in, dense_in_bias=b_in, dense_out_weight=w_out, dense_out_bias=b_out,
                 norm_weight=norm.weight, norm_bias=norm.bias)
    check_tensors(op, **named)
    if x.dim() == 0 or w_in.dim() == 0:
        raise ValueError(f"{op}: x must be (..., hidden) and dense_in's weight (inner, hidden), got "
                         f"{tuple(x.shape)} and {tuple(w_in.shape)}")
    hidden, inner = x.shape[-1], w_in.shape[0]
    expected = dict(dense_in_weight=(w_in, (inner, hidden)), dense_in_bias=(b_in, (inner,)),
                    dense_out_weight=(w_out, (hidden, inner)), dense_out_bias=(b_out, (hidden,)),
                    norm_weight=(norm.weight, (hidden,)), norm_bias=(norm.bias, (hidden,)))
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{op}: {name} must be {shape} for x (..., {hidden}), got {tuple(tensor.shape)}")
    check_floating(op, **named)
    check_one_dtype(op, x=x, dense_in_weight=w_in, dense_in_bias=b_in, dense_out_weight=w_out,
                    norm_weight=norm.weight, norm_bias=norm.bias)
    check_one_device(op, **named)
    check_dropout(op, dropout_p)
    check_scalars(op, eps=norm.eps, training=training)


def _named_tensors(bundle, prefix: str) -> dict:
    """The tensors of a weight bundle (nested NamedTuples, tuples), named by their fields."""
    if isinstance(bundle, torch.Tensor):
        return {prefix: bundle}
    if not isinstance(bundle, (tuple, list)):
        return {}
    fields = getattr(bundle, "_fields", None) or [f"[{i}]" for i in range(len(bundle))]
    named = {}
    for field, value in zip(fields, bundle):
        named.update(_named_tensors(value, prefix + (field if field.startswith("[") else "." + field)))
    return named


def check_branch(op: str, x, key_bias, weights, n_heads, hidden_dropout_p, attn_dropout_p, training,
                 output_rows, filter_scope=None) -> None:
    """The compositions' own arguments (their leaf ops check the rest): x (batch, seq_len,
    hidden) with hidden a multiple of n_heads; every tensor of ``weights`` and key_bias on x's
    device (the compositions project with F.linear outside the leaf ops, where torch takes a
    meta weight with a CPU input); both dropouts in [0, 1)."""
    check_tensors(op, x=x, key_bias=key_bias)
    check_n_heads(op, n_heads)
    if x.dim() != 3 or x.shape[-1] % n_heads:
        raise ValueError(f"{op}: x must be (batch, seq_len, hidden) with hidden a multiple of "
                         f"n_heads={n_heads}, got {tuple(x.shape)}")
    check_one_device(op, x=x, key_bias=key_bias, **_named_tensors(weights, "weights"))
    check_dropout(op, hidden_dropout_p, "hidden_dropout_p")
    check_dropout(op, attn_dropout_p, "attn_dropout_p")
    check_scalars(op, training=training)
    check_output_rows(op, output_rows, x.shape[0], x.shape[1], x.device)
    if filter_scope is not None:
        from ..reference.frequency_filter import check_scope

        check_scope(filter_scope, f"{op}: filter_scope")


def check_cross_entropy(scores, targets) -> None:
    """scores (batch, n_items >= 1) float; targets (batch,) integer ids in [0, n_items)."""
    op = "cross_entropy"
    check_tensors(op, scores=scores, targets=targets)
    if scores.dim() != 2 or scores.shape[1] == 0 or scores.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{op}: scores must be a (batch, n_items) floating tensor with n_items >= 1, got "
                         f"shape {tuple(scores.shape)} of {scores.dtype}")
    if targets.shape != (scores.shape[0],) or targets.dtype not in INTEGER_DTYPES:
        raise ValueError(f"{op}: targets must be a ({scores.shape[0]},) integer tensor, got shape "
                         f"{tuple(targets.shape)} of {targets.dtype}")
    check_one_device(op, scores=scores, targets=targets)
    check_index_range(op, "targets", targets, 0, scores.shape[1], _NO_IGNORE_INDEX)


def check_scoring(op: str, hidden, item_weight, **integer) -> None:
    """hidden (batch, H) and item_weight (n_items >= 1, H) float tensors (their dtypes may
    differ: the scores accumulate in float32, float64 for a float64 input) on one device; each
    named integer tensor (batch,) (``targets``, ids in [0, n_items)) or (batch, M) (``exclude``,
    any ids: those outside [1, n_items) leave nothing out) on that device."""
    for name, value in dict(hidden=hidden, item_weight=item_weight, **integer).items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if hidden.dim() != 2 or hidden.dtype not in FLOAT_DTYPES:
        raise ValueError(f"{op}: hidden must be a (batch, hidden) float tensor, got shape {tuple(hidden.shape)} of "
                         f"{hidden.dtype}")
    if (item_weight.dim() != 2 or item_weight.dtype not in FLOAT_DTYPES or item_weight.shape[0] < 1
            or item_weight.shape[1] != hidden.shape[1]):
        raise ValueError(f"{op}: item_weight must be an (n_items, {hidden.shape[1]}) float tensor with n_items >= 1, "
                         f"got shape {tuple(item_weight.shape)} of {item_weight.dtype}")
    for name, value in integer.items():
        rows_ok = value.dim() >= 1 and value.shape[0] == hidden.shape[0]
        shape_ok = value.dim() == 1 if name == "targets" else value.dim() == 2
        if not (rows_ok and shape_ok) or value.dtype not in INTEGER_DTYPES:
            wanted = f"({hidden.shape[0]},)" if name == "targets" else f"({hidden.shape[0]}, M)"
            raise ValueError(f"{op}: {name} must be a {wanted} integer tensor, got shape {tuple(value.shape)} of "
                             f"{value.dtype}")
    check_one_device(op, hidden=hidden, item_weight=item_weight, **integer)
    if "targets" in integer:
        check_index_range(op, "targets", integer["targets"], 0, item_weight.shape[0], _NO_IGNORE_INDEX)


def check_top_items(hidden, item_weight, k, exclude) -> None:
    """As ``check_scoring``; k an int in [1, n_items - 1]."""
    op = "top_items"
    check_scoring(op, hidden, item_weight, **({} if exclude is None else {"exclude": exclude}))
    n_items = item_weight.shape[0]
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 1 <= k <= n_items - 1:
        raise ValueError(f"{op}: k must be an int in [1, {n_items - 1}] (the real items), got {k!r}")
