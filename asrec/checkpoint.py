"""Conversion between asrec state_dicts and those of the published RecBole ``ASRec``.

The published code's names live only here. ``ORIGINAL_ORDER`` follows the order in which
the published modules register their tensors, so ``to_original`` returns a state_dict
whose keys come in the same order as the published model's own ``state_dict()``.
"""

import math
import numbers
from collections import OrderedDict
from collections.abc import Mapping

import torch

# (published name, asrec name) inside one seasonal branch, published registration order:
# the module's own parameters first, then its children.
_SEASONAL = [
    ("contra_scale", "contrast_scale"),
    ("orgin_scale", "origin_scale"),
    ("head_weights", "unused_head_weights"),
    ("contra_scale1", "position_scale_small"),
    ("contra_scale2", "position_scale_large"),
    ("contra_scale3", "position_scale_middle"),
    ("w_gate", "gate_weight"),
    ("b_gate", "gate_bias"),
    *[(f"{lin}.{p}", f"{lin}.{p}") for lin in ("query", "key", "value", "dense") for p in ("weight", "bias")],
    ("LayerNorm.weight", "norm.weight"),
    ("LayerNorm.bias", "norm.bias"),
    *[(f"{conv}.{p}", f"{conv}.{p}") for conv in ("conv_small", "conv_middle", "conv_large")
      for p in ("weight", "bias")],
    ("AHFF.threshold_param", "frequency_filter.threshold"),
    ("AHFF.LayerNorm.weight", "frequency_filter.norm.weight"),
    ("AHFF.LayerNorm.bias", "frequency_filter.norm.bias"),
]

_DYNAMIC = [
    *[(f"{lin}.{p}", f"{lin}.{p}") for lin in ("query", "key", "value", "dense") for p in ("weight", "bias")],
    ("LayerNorm.weight", "norm.weight"),
    ("LayerNorm.bias", "norm.bias"),
]

_LAYER = [
    ("v3", "branch_mix"),
    *[(f"multi_head_attention.{o}", f"seasonal.{a}") for o, a in _SEASONAL],
    *[(f"multi_head_attention1.{o}", f"dynamic.{a}") for o, a in _DYNAMIC],
    ("LayerNorm.weight", "unused_norm_weight"),
    ("LayerNorm.bias", "unused_norm_bias"),
    ("feed_forward.dense_1.weight", "feed_forward.dense_in.weight"),
    ("feed_forward.dense_1.bias", "feed_forward.dense_in.bias"),
    ("feed_forward.dense_2.weight", "feed_forward.dense_out.weight"),
    ("feed_forward.dense_2.bias", "feed_forward.dense_out.bias"),
    ("feed_forward.LayerNorm.weight", "feed_forward.norm.weight"),
    ("feed_forward.LayerNorm.bias", "feed_forward.norm.bias"),
]

CONFIG_KEYS = ("n_layers", "n_heads", "hidden_size", "inner_size", "hidden_dropout_prob", "attn_dropout_prob",
               "hidden_act", "layer_norm_eps", "initializer_range", "A", "MAX_ITEM_LIST_LENGTH")


def name_map(n_layers: int) -> list:
    """[(published key, asrec key)] for a model of ``n_layers`` layers, in published order."""
    pairs = [("item_embedding.weight", "item_embedding.weight"),
             ("position_embedding.weight", "position_embedding.weight")]
    for i in range(n_layers):
        pairs += [(f"trm_encoder.layer.{i}.{o}", f"encoder.layers.{i}.{a}") for o, a in _LAYER]
    pairs += [
        ("LayerNorm.weight", "input_norm.weight"),
        ("LayerNorm.bias", "input_norm.bias"),
        ("FSM._smoothing_weight", "encoder.fsm.smoothing_logit"),
        ("FSM.v0", "encoder.fsm.init_level"),
        ("FSM.v1", "encoder.fsm.smoothed_scale"),
        ("FSM.LayerNorm.weight", "encoder.fsm.unused_norm_weight"),
        ("FSM.LayerNorm.bias", "encoder.fsm.unused_norm_bias"),
    ]
    return pairs


def _check_keys(given, expected, what: str) -> None:
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in set(expected)]
    if missing or unexpected:
        raise ValueError(f"{what} does not match the published ASRec layout: "
                         f"missing keys {missing}, unexpected keys {unexpected}")


def original_config(model_config: dict) -> dict:
    """The published config keys (``CONFIG_KEYS``) of an ``ASRecModel.config``: the reverse
    of ``model_kwargs_from_original``."""
    c = model_config
    return dict(n_layers=c["n_layers"], n_heads=c["n_heads"], hidden_size=c["hidden_size"], inner_size=c["inner_size"],
                hidden_dropout_prob=c["hidden_dropout_prob"], attn_dropout_prob=c["attn_dropout_prob"],
                hidden_act=c["hidden_act"], layer_norm_eps=c["layer_norm_eps"],
                initializer_range=c["initializer_range"], A=c["fsm_mix"], MAX_ITEM_LIST_LENGTH=c["max_seq_length"])


_INT_KEYS = ("n_layers", "n_heads", "hidden_size", "inner_size", "MAX_ITEM_LIST_LENGTH")
_FLOAT_KEYS = ("hidden_dropout_prob", "attn_dropout_prob", "layer_norm_eps", "initializer_range", "A")


def _check_mapping(name: str, value) -> None:
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected a dict, got {type(value).__name__}")


def _check_config(config) -> None:
    _check_mapping("config", config)
    missing = [k for k in CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"config: missing published config keys {missing}")
    for key in _INT_KEYS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"config[{key!r}]: expected a positive int, got {value!r}")
    for key in _FLOAT_KEYS:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"config[{key!r}]: expected a finite number, got {value!r}")
    if not isinstance(config["hidden_act"], str):
        raise ValueError(f"config['hidden_act']: expected an activation name, got {config['hidden_act']!r}")


def _check_tensors(state_dict) -> None:
    _check_mapping("state_dict", state_dict)
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"state_dict[{key!r}]: expected a torch.Tensor, got {type(value).__name__}")


def model_kwargs_from_original(state_dict: dict, config: dict) -> dict:
    """ASRecModel keyword arguments from a published config and its state_dict (both checked:
    a dict of tensors; the config's keys present, its sizes positive ints, its rates numbers)."""
    _check_tensors(state_dict)
    _check_config(config)
    if "item_embedding.weight" not in state_dict:
        raise ValueError("state_dict: missing key 'item_embedding.weight' (needed for n_items)")
    table = state_dict["item_embedding.weight"]
    if table.dim() != 2:
        raise ValueError(f"state_dict['item_embedding.weight']: expected (n_items, hidden_size), got "
                         f"{tuple(table.shape)}")
    n_items, hidden = table.shape
    if hidden != config["hidden_size"]:
        raise ValueError(f"state_dict: item_embedding.weight has hidden size {hidden}, "
                         f"config hidden_size is {config['hidden_size']}")
    return dict(n_items=int(n_items), max_seq_length=int(config["MAX_ITEM_LIST_LENGTH"]),
                hidden_size=int(config["hidden_size"]), n_layers=int(config["n_layers"]),
                n_heads=int(config["n_heads"]), inner_size=int(config["inner_size"]),
                hidden_dropout_prob=float(config["hidden_dropout_prob"]),
                attn_dropout_prob=float(config["attn_dropout_prob"]), hidden_act=config["hidden_act"],
                layer_norm_eps=float(config["layer_norm_eps"]),
                initializer_range=float(config["initializer_range"]), fsm_mix=float(config["A"]))


THRESHOLD_KEYS = ("AHFF.threshold_param", "frequency_filter.threshold")  # published, asrec


def check_values(state_dict: Mapping, what: str = "state_dict") -> None:
    """Refuse values the published code would refuse or that make the model degenerate:
    a frequency filter level (``AHFF.threshold_param`` / ``frequency_filter.threshold``)
    outside [0, 1] or not finite (the published ``torch.quantile`` raises on it; here the
    filter would keep no frequency bin), and any non-finite parameter (NaN or inf, which every
    score would carry). Errors name the entry and its bad value."""
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor) or not (value.is_floating_point() or value.is_complex()):
            continue
        if key.endswith(THRESHOLD_KEYS):
            level = value.detach().float()
            if level.numel() != 1 or not bool(torch.isfinite(level).all()) or not 0 <= float(level) <= 1:
                shown = level.flatten().tolist() if level.numel() <= 4 else f"{level.numel()} values"
                raise ValueError(f"{what}[{key!r}]: the frequency filter's quantile level must be one finite number "
                                 f"in [0, 1] (the published code's torch.quantile refuses others), got {shown}")
        elif value.numel() and not bool(torch.isfinite(value.detach()).all()):
            bad = value.detach()[~torch.isfinite(value.detach())]
            raise ValueError(f"{what}[{key!r}]: {bad.numel()} of {value.numel()} values are not finite (first: "
                             f"{bad.flatten()[0].item()}); the checkpoint is damaged or its training diverged")


def from_original(state_dict: dict, n_layers: int) -> OrderedDict:
    """Published state_dict -> asrec state_dict (same tensors, asrec names); the values
    checked by ``check_values``."""
    _check_tensors(state_dict)
    pairs = name_map(n_layers)
    _check_keys(state_dict, [o for o, _ in pairs], "state_dict")
    check_values(state_dict)
    return OrderedDict((ours, state_dict[orig]) for orig, ours in pairs)


def to_original(state_dict: dict, n_layers: int) -> OrderedDict:
    """asrec state_dict -> published state_dict (keys, order and shapes of the published code)."""
    pairs = name_map(n_layers)
    _check_keys(state_dict, [a for _, a in pairs], "asrec state_dict")
    return OrderedDict((orig, state_dict[ours].clone()) for orig, ours in pairs)
