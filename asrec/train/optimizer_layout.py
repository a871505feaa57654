"""The optimizer state of a ``last.pt`` written for an earlier parameter layout, made to fit.

An optimizer's state_dict names its parameters by their position in the optimizer's list,
so it fits only the parameter list it was written for. asrec's list has changed while the
model's state_dict kept its keys (``asrec.modules.stacked``):

- before 02b353f every state_dict entry was a parameter of its own: each hybrid layer had
  twelve q/k/v tensors (``seasonal.query.weight`` ... ``dynamic.value.bias``) and the
  seasonal branch three position scales (``position_scale_small``, ``_large``, ``_middle``,
  in that registration order) -- the layout of every ``last.pt`` written before then;
- 02b353f stacked the q/k/v projections into ``encoder.layers.<i>.projections.weight``
  (6H, H) and ``.bias`` (6H,), rows [seasonal query, key, value | dynamic query, key, value];
- 5283ec0 stacked the position scales into ``seasonal.position_scales`` (3, N, 1), rows
  [small, middle, large].

From now on ``last.pt`` records the optimizer's parameter names in its order
(``LAYOUT_KEY``), and a resume maps the saved state onto the current parameters by those
names. A checkpoint without the record is matched against the layouts above by the number
and shapes of its tensors. A parameter stored stacked gets its parts' state stacked in its
row order (Adam's ``exp_avg`` and ``exp_avg_sq``; the parts' ``step`` counts, which are
equal, once): the same numbers the optimizer would hold had the parameter always been
stacked, so the resumed run continues exactly. What cannot be mapped raises a
``CheckpointError`` that says why, before PyTorch's own loader sees it.
"""

import torch
from torch import nn

from .checkpoints import CheckpointError

LAYOUT_KEY = "optimizer_parameters"
POSITION_SCALE_NAMES = ("position_scale_small", "position_scale_large", "position_scale_middle")

# a slot: (name, current parameter, (start, stop) rows of it along dim 0, or None for all of it)


def optimizer_parameter_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list:
    """The names (``model.named_parameters()``) of the optimizer's parameters, in its order."""
    names = {id(p): name for name, p in model.named_parameters()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    missing = [i for i, p in enumerate(params) if id(p) not in names]
    if missing:
        raise ValueError(f"optimizer: parameters {missing} are not parameters of the model")
    return [names[id(p)] for p in params]


def _state_dict_parts(model: nn.Module) -> list:
    """Every parameter entry of ``model.state_dict()``, in its order, as a slot; ``None`` when
    an entry is neither a parameter nor a block of rows of one (a layout this cannot describe)."""
    params = dict(model.named_parameters())
    by_storage = {}
    for p in params.values():
        by_storage.setdefault((p.device, p.untyped_storage().data_ptr()), []).append(p)
    buffers = {name for name, _ in model.named_buffers()}
    slots = []
    for name, tensor in model.state_dict(keep_vars=True).items():
        if name in buffers:
            continue
        if name in params and tensor is params[name]:
            slots.append((name, tensor, None))
            continue
        rows = None
        for p in by_storage.get((tensor.device, tensor.untyped_storage().data_ptr()), []):
            if (p.dim() == tensor.dim() >= 1 and p.shape[1:] == tensor.shape[1:] and p.stride() == tensor.stride()
                    and p.stride(0) > 0):
                offset = tensor.storage_offset() - p.storage_offset()
                start = offset // p.stride(0)
                if offset % p.stride(0) == 0 and 0 <= start and start + tensor.shape[0] <= p.shape[0]:
                    rows = (p, (start, start + tensor.shape[0]))
                    break
        if rows is None:
            return None
        slots.append((name, *rows))
    return slots


def _current_layout(model, optimizer) -> list:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return [(name, p, None) for name, p in zip(optimizer_parameter_names(model, optimizer), params)]


def earlier_layouts(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """{description: slots} of the parameter lists asrec had before the stacking commits
    (see the module docstring), for the model's current parameters. Each is built from the
    state_dict, whose keys and order did not change: before 02b353f the parameters were the
    state_dict's parameter entries, in its order."""
    parts = _state_dict_parts(model)
    if parts is None:
        return {}
    layouts = {"of 0cfc416 and before (separate q/k/v projections and position scales)": parts}
    # 02b353f alone: the projections stacked, each seasonal branch's position scales still
    # three parameters where the stack stands now, in their registration order
    scale_parts = {}
    for slot in parts:
        if slot[2] is not None and slot[0].rsplit(".", 1)[-1] in POSITION_SCALE_NAMES:
            scale_parts.setdefault(id(slot[1]), []).append(slot)
    if scale_parts:
        between = []
        for slot in _current_layout(model, optimizer):
            between += scale_parts.get(id(slot[1]), [slot])
        layouts["of 02b353f (stacked q/k/v projections, separate position scales)"] = between
    return layouts


def _slot_shape(slot) -> torch.Size:
    _, p, rows = slot
    return p.shape if rows is None else torch.Size((rows[1] - rows[0], *p.shape[1:]))


def _saved_ids(saved: dict) -> list:
    return [i for group in saved["param_groups"] for i in group["params"]]


def _fits(slots: list, saved: dict) -> bool:
    """The saved state has one parameter per slot, and every per-element state tensor has
    the slot's shape (Adam's ``exp_avg``, ``exp_avg_sq``; ``step`` is one count)."""
    ids = _saved_ids(saved)
    if len(ids) != len(slots):
        return False
    for i, slot in zip(ids, slots):
        for key, value in saved["state"].get(i, {}).items():
            if key != "step" and torch.is_tensor(value) and value.shape != _slot_shape(slot):
                return False
    return True


def _same(values: list) -> bool:
    first = values[0]
    if torch.is_tensor(first):
        return all(torch.is_tensor(v) and v.shape == first.shape and torch.equal(v.cpu(), first.cpu())
                   for v in values[1:])
    return all(v == first for v in values[1:])


def convert(saved: dict, slots: list, optimizer: torch.optim.Optimizer, what: str) -> dict:
    """The optimizer state_dict ``saved``, written for the parameter list ``slots``, for
    ``optimizer``'s parameters: each parameter's state from the slots that make it, stacked
    in its row order."""
    ids = _saved_ids(saved)
    saved_group = {}
    for g, group in enumerate(saved["param_groups"]):
        for i in group["params"]:
            saved_group[i] = g
    if len(saved["param_groups"]) != len(optimizer.param_groups):
        raise CheckpointError(f"{what}: the checkpoint's optimizer has {len(saved['param_groups'])} parameter groups, "
                              f"this one {len(optimizer.param_groups)}")
    of_param = {}
    for i, slot in zip(ids, slots):
        of_param.setdefault(id(slot[1]), []).append((i, slot))
    state, groups, new_id = {}, [], 0
    for g, group in enumerate(optimizer.param_groups):
        group_ids = []
        for p in group["params"]:
            pieces = sorted(of_param.pop(id(p), []), key=lambda piece: -1 if piece[1][2] is None else piece[1][2][0])
            names = ", ".join(slot[0] for _, slot in pieces) or "none"
            tiled = ((len(pieces) == 1 and pieces[0][1][2] is None)
                     or (pieces and all(slot[2] is not None for _, slot in pieces)
                         and [slot[2][0] for _, slot in pieces] == [0] + [slot[2][1] for _, slot in pieces[:-1]]
                         and pieces[-1][1][2][1] == p.shape[0]))
            if not tiled:
                raise CheckpointError(f"{what}: the checkpoint's optimizer parameters ({names}) do not make up one "
                                      f"parameter of shape {tuple(p.shape)} of this model")
            if any(saved_group[i] != g for i, _ in pieces):
                raise CheckpointError(f"{what}: the checkpoint's optimizer holds the parts of one parameter ({names}) "
                                      "in different parameter groups")
            states = [saved["state"].get(i) for i, _ in pieces]
            if any(s is None for s in states) and not all(s is None for s in states):
                raise CheckpointError(f"{what}: the checkpoint's optimizer has state for some of {names} and not for "
                                      "others, which one stacked parameter cannot hold")
            if states[0] is not None:
                keys = set(states[0])
                if any(set(s) != keys for s in states):
                    raise CheckpointError(f"{what}: the checkpoint's optimizer state differs in kind between {names}")
                merged = {}
                for key in states[0]:
                    values = [s[key] for s in states]
                    if key != "step" and torch.is_tensor(values[0]):
                        merged[key] = torch.cat(values) if len(values) > 1 else values[0]
                    elif _same(values):
                        merged[key] = values[0]
                    else:
                        raise CheckpointError(f"{what}: the checkpoint's optimizer holds different {key!r} values for "
                                              f"{names}, which one stacked parameter cannot hold")
                state[new_id] = merged
            group_ids.append(new_id)
            new_id += 1
        groups.append(dict(saved["param_groups"][g], params=group_ids))
    if of_param:  # slots of parameters the optimizer does not hold
        left = [slot[0] for pieces in of_param.values() for _, slot in pieces]
        raise CheckpointError(f"{what}: the checkpoint's optimizer holds parameters this optimizer does not: "
                              f"{', '.join(left)}")
    return dict(saved, state=state, param_groups=groups)


def _unknown(what: str, saved: dict, model, optimizer, layouts: dict) -> CheckpointError:
    known = ", ".join(f"{len(slots)} ({description})" for description, slots in layouts.items())
    return CheckpointError(
        f"{what}: the checkpoint's optimizer state was written for {len(_saved_ids(saved))} parameter tensors, which "
        f"match neither this version's {len(_current_layout(model, optimizer))} parameters nor a known earlier layout "
        f"of asrec's parameters{' (' + known + ')' if known else ''}, by number and shapes; its Adam moments cannot "
        "be carried over. Resume it with the asrec version that wrote it; its weights still load into this version "
        "(asrec.train.checkpoints.load_model reads last.pt and best.pt)")


def load_optimizer_state(optimizer: torch.optim.Optimizer, model: nn.Module, checkpoint: dict,
                         what: str = "--resume") -> str:
    """Load ``checkpoint["optimizer"]`` (a ``last.pt`` payload) into ``optimizer``, whose
    parameters are ``model``'s, converting it from the layout it was written for. Returns
    that layout's description ("current" when no conversion was needed)."""
    saved = checkpoint["optimizer"]
    names = checkpoint.get(LAYOUT_KEY)
    current = _current_layout(model, optimizer)
    if names is not None:  # recorded: each name a parameter now, or a state_dict entry that is rows of one
        known = {slot[0]: slot for slot in current}
        if list(names) != list(known):  # dicts keep insertion order: the current names
            for slot in _state_dict_parts(model) or []:
                known.setdefault(slot[0], slot)
        unknown = [name for name in names if name not in known]
        if unknown:
            raise CheckpointError(
                f"{what}: the checkpoint's optimizer state holds parameters this model has neither as parameters nor "
                f"as parts of one: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}. Resume it with the "
                "asrec version that wrote it; its weights still load into this version "
                "(asrec.train.checkpoints.load_model reads last.pt and best.pt)")
        slots = [known[name] for name in names]
        description = "current" if list(names) == [slot[0] for slot in current] else "recorded names"
        if not _fits(slots, saved):
            raise CheckpointError(f"{what}: the checkpoint's optimizer state does not match the parameter names it "
                                  "records (its tensors' count or shapes differ): the file is not as written")
    elif _fits(current, saved):
        slots, description = current, "current"
    else:
        layouts = earlier_layouts(model, optimizer)
        matches = [(d, s) for d, s in layouts.items() if _fits(s, saved)]
        if not matches:
            raise _unknown(what, saved, model, optimizer, layouts)
        description, slots = matches[0]
    # through convert even as it is: its checks word what PyTorch's loader would reject
    optimizer.load_state_dict(convert(saved, slots, optimizer, what))
    return description
