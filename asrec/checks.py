"""Argument checks at the public boundary: errors that name the argument, what was
expected and what was given, instead of a wrong answer or a stack trace from deep in torch."""

import math
import numbers

import torch


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


def require_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")


def require_number(name: str, value, low: float = -math.inf, high: float = math.inf, what: str = "a number",
                   include_high: bool = True) -> None:
    """A finite real number in [low, high] (or [low, high) without include_high)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value < low or value > high or (value == high and not include_high)):
        raise ValueError(f"{name}: expected {what}, got {value!r}")


def check_encoder_config(hidden_size, max_seq_length, n_layers, n_heads, inner_size, hidden_dropout_prob,
                         attn_dropout_prob, layer_norm_eps, fsm_mix, initializer_range, filter_scope) -> None:
    """The encoder's constructor arguments (ASRec and ASRecModel)."""
    from .reference.frequency_filter import check_scope

    check_scope(filter_scope, "filter_scope")
    for name, value in (("hidden_size", hidden_size), ("max_seq_length", max_seq_length), ("n_layers", n_layers),
                        ("n_heads", n_heads), ("inner_size", inner_size)):
        require_positive_int(name, value)
    if hidden_size % n_heads:
        raise ValueError(f"n_heads: must divide hidden_size={hidden_size}, got {n_heads}")
    for name, value in (("hidden_dropout_prob", hidden_dropout_prob), ("attn_dropout_prob", attn_dropout_prob)):
        require_number(name, value, 0.0, 1.0, "a probability in [0, 1)", include_high=False)
    require_number("layer_norm_eps", layer_norm_eps, 0.0, what="a finite number >= 0")
    require_number("fsm_mix", fsm_mix, what="a finite number (the published A)")
    require_number("initializer_range", initializer_range, 0.0, what="a finite standard deviation >= 0")


def require_tensor(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    return value


def require_floating(name: str, t: torch.Tensor) -> None:
    if t.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise TypeError(f"{name}: expected float16, bfloat16, float32 or float64, got {t.dtype}")


def require_integer(name: str, t: torch.Tensor) -> None:
    if t.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name}: expected an integer tensor (item ids/lengths), got {t.dtype}")


def require_shape(name: str, t: torch.Tensor, expected: tuple, meaning: str) -> None:
    """expected: sizes, None for any; meaning: e.g. '(batch, seq_len, hidden)'."""
    if t.dim() != len(expected) or any(e is not None and e != s for e, s in zip(expected, t.shape)):
        want = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name}: expected shape {meaning} = {want}, got {_shape(t)}")


def require_same_device(**tensors: torch.Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    if len(set(devices.values())) > 1:
        listing = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(f"tensors must share one device, got {listing}")


def require_on_device(name: str, t: torch.Tensor, device: torch.device, owner: str = "the model's parameters") -> None:
    """``t`` on ``device`` (where ``owner`` lives), instead of torch's message from deep inside an op."""
    if t.device != device:
        raise ValueError(f"{name}: expected device {device}, where {owner} are, got {t.device} (move the inputs "
                         f"with .to({str(device)!r}) or the model with .to({str(t.device)!r}))")


def require_in_range(name: str, t: torch.Tensor, low: int, high: int) -> None:
    """Every value in [low, high); one host synchronisation."""
    if t.numel() == 0:
        return
    low_seen, high_seen = torch.aminmax(t)
    if torch.compiler.is_compiling():
        # a traced graph (torch.compile, torch.export) cannot branch on values, and int() of a
        # traced value is a guard it cannot make: the same check as runtime assertions on the
        # unbacked scalars, kept in the compiled graph and in an exported package (it raises
        # there with torch's own message, as the data is only seen then)
        low_value, high_value = low_seen.item(), high_seen.item()
        torch._check(low_value >= low, lambda: f"{name}: values must lie in [{low}, {high - 1}]")
        torch._check(high_value < high, lambda: f"{name}: values must lie in [{low}, {high - 1}]")
        return
    low_seen, high_seen = int(low_seen), int(high_seen)
    if low_seen < low or high_seen >= high:
        raise ValueError(f"{name}: values must lie in [{low}, {high - 1}], got min {low_seen}, max {high_seen}")


def check_encoder_input(x, valid, hidden_size: int, max_seq_length: int, dtype: torch.dtype) -> None:
    """x: (batch, max_seq_length, hidden_size) in the encoder's dtype ``dtype`` (any float dtype
    under autocast); valid: (batch, max_seq_length) bool."""
    require_tensor("x", x)
    require_tensor("valid", valid)
    require_floating("x", x)
    if x.dtype != dtype and not torch.is_autocast_enabled(x.device.type):
        raise TypeError(f"x: expected {dtype}, the dtype of the encoder's parameters (convert one of the two, or "
                        f"run under torch.autocast), got {x.dtype}")
    require_shape("x", x, (None, max_seq_length, hidden_size), "(batch, max_seq_length, hidden_size)")
    if valid.dtype != torch.bool:
        raise TypeError(f"valid: expected a bool mask of real items, got {valid.dtype}")
    require_shape("valid", valid, (x.shape[0], max_seq_length), "(batch, max_seq_length)")
    require_same_device(x=x, valid=valid)


def check_item_seq(item_seq, n_items: int, max_seq_length: int, check_values: bool) -> None:
    """item_seq: (batch, max_seq_length) integer ids in [0, n_items)."""
    require_tensor("item_seq", item_seq)
    require_integer("item_seq", item_seq)
    require_shape("item_seq", item_seq, (None, max_seq_length), "(batch, max_seq_length)")
    if check_values:
        require_in_range("item_seq", item_seq, 0, n_items)


def check_item_sequences(item_seq, item_seq_len, n_items: int, max_seq_length: int,
                         check_values: bool) -> None:
    """item_seq as ``check_item_seq``; item_seq_len: (batch,) integer lengths in [1, max_seq_length]."""
    check_item_seq(item_seq, n_items, max_seq_length, False)
    require_tensor("item_seq_len", item_seq_len)
    require_integer("item_seq_len", item_seq_len)
    require_shape("item_seq_len", item_seq_len, (item_seq.shape[0],), "(batch,)")
    require_same_device(item_seq=item_seq, item_seq_len=item_seq_len)
    if check_values:
        require_in_range("item_seq", item_seq, 0, n_items)
        require_in_range("item_seq_len", item_seq_len, 1, max_seq_length + 1)


def check_targets(pos_items, batch: int, n_items: int, device: torch.device, check_values: bool) -> None:
    """pos_items: (batch,) ids in [0, n_items)."""
    require_tensor("pos_items", pos_items)
    require_integer("pos_items", pos_items)
    require_shape("pos_items", pos_items, (batch,), "(batch,)")
    if pos_items.device != device:
        raise ValueError(f"pos_items: expected device {device}, got {pos_items.device}")
    if check_values:
        require_in_range("pos_items", pos_items, 0, n_items)
