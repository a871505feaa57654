"""Argument checks at the public boundary: errors that name the argument, what was
expected and what was given, instead of a wrong answer or a stack trace from deep in torch."""

import torch


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(str(s) for s in t.shape) + ")"


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


def require_in_range(name: str, t: torch.Tensor, low: int, high: int) -> None:
    """Every value in [low, high); one host synchronisation."""
    if t.numel() == 0:
        return
    low_seen, high_seen = torch.aminmax(t)
    low_seen, high_seen = int(low_seen), int(high_seen)
    if low_seen < low or high_seen >= high:
        raise ValueError(f"{name}: values must lie in [{low}, {high - 1}], got min {low_seen}, max {high_seen}")


def check_encoder_input(x, valid, hidden_size: int, max_seq_length: int) -> None:
    """x: (batch, max_seq_length, hidden_size) float; valid: (batch, max_seq_length) bool."""
    require_tensor("x", x)
    require_tensor("valid", valid)
    require_floating("x", x)
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
