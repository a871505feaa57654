"""Parameters stored stacked, saved and loaded under the names of their parts.

The hybrid layer's six q/k/v projections (seasonal and dynamic) are one (6H, H) weight and
(6H,) bias (``StackedProjections``): the Triton path hands them to one ``F.linear`` as they
are, with no per-call concatenation. Each projection still stands where its ``nn.Linear``
stood (``layer.seasonal.query`` is a ``ProjectionRows``: ``.weight``, ``.bias`` are views of
its rows), and the state_dict does not change: the rows are saved under each projection's
own name (``seasonal.query.weight``, ...) and the stack under none; on load, the module
that owns the stack gathers those keys back into it (``load_stacked_projections``), so
asrec checkpoints written before the stacking, and the published code's through
``asrec.checkpoint``, load as before (``assign=True`` included: the stack loads through
PyTorch's own path). ``load_stacked_parts`` does the same for any stacked parameter.
"""

import math

import torch
from torch import nn

from ..ops import LinearWeights


def _size_mismatch(key: str, given: torch.Tensor, expected: torch.Size) -> str:
    # PyTorch's own wording (Module._load_from_state_dict)
    return (f"size mismatch for {key}: copying a param with shape {given.shape} from checkpoint, "
            f"the shape in current model is {expected}.")


def _not_a_tensor(key: str, given) -> str:
    return (f'While copying the parameter named "{key}", expected torch.Tensor or Tensor-like object from '
            f"checkpoint but received {type(given)}")


def load_stacked_parts(state_dict: dict, prefix: str, stacked_name: str, parts: dict, strict: bool,
                       missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
    """Replace the keys ``prefix + name`` of ``parts`` ({name: the part's current value, a view of
    the stack}, in stacking order along dim 0) in ``state_dict`` by ``prefix + stacked_name``,
    their concatenation, which the stacked parameter then loads the usual way.

    Call it from the owner's ``_load_from_state_dict`` before the usual loading (the children
    see the dict after it). A part that is absent is reported missing and keeps its current
    value; a part of the wrong shape or type is reported as PyTorch reports it, and nothing
    of the stack is loaded. The stacked name itself is never saved, so it is unexpected.
    """
    stacked_key = prefix + stacked_name
    if stacked_key in state_dict:
        unexpected_keys.append(stacked_key)
    given, errors = {}, []
    for name, current in parts.items():
        key = prefix + name
        if key not in state_dict:
            if strict:
                missing_keys.append(key)
            continue
        value = given[name] = state_dict.pop(key)
        if not isinstance(value, torch.Tensor):
            errors.append(_not_a_tensor(key, value))
        elif value.shape != current.shape:
            errors.append(_size_mismatch(key, value, current.shape))
    if errors or not given:
        error_msgs.extend(errors)
        state_dict[stacked_key] = torch.cat([current.detach() for current in parts.values()])
        return
    like = next(iter(given.values()))  # the checkpoint's device and dtype (what assign=True keeps)
    state_dict[stacked_key] = torch.cat([given[name] if name in given else current.detach().to(like)
                                         for name, current in parts.items()])


class StackedProjections(nn.Module):
    """``count`` Linear(features, features) projections of one input, stacked: ``weight``
    (count * features, features), ``bias`` (count * features,); projection i is rows
    [i * features, (i + 1) * features), seen through a ``ProjectionRows``.

    It saves nothing itself: its rows are saved by the ``ProjectionRows`` under the
    projections' names. The module that registers it calls ``load_stacked_projections``.
    """

    def __init__(self, count: int, features: int, device=None, dtype=None):
        super().__init__()
        self.count, self.features = count, features
        self.weight = nn.Parameter(torch.empty(count * features, features, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.empty(count * features, device=device, dtype=dtype))

    def stacked(self) -> LinearWeights:
        return LinearWeights(self.weight, self.bias)

    def split(self) -> tuple:
        """Every projection's LinearWeights, views of the stack. One split per tensor: backward
        through all of them is one concatenation, not one full-size zero-fill per view."""
        return tuple(LinearWeights(w, b) for w, b in zip(self.weight.split(self.features),
                                                         self.bias.split(self.features)))

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        pass  # the ProjectionRows save the rows, under the projections' names

    def extra_repr(self) -> str:
        return f"count={self.count}, features={self.features}"


class ProjectionRows(nn.Module):
    """Projection ``index`` of a ``StackedProjections``, where its ``nn.Linear`` would stand:
    ``weight`` (features, features) and ``bias`` (features,) are views of the stack's rows
    (no parameters of its own), ``forward`` applies them, and its state_dict entries are an
    ``nn.Linear``'s (``weight``, ``bias``)."""

    def __init__(self, stack: StackedProjections, index: int):
        super().__init__()
        if not 0 <= index < stack.count:
            raise ValueError(f"index: expected 0 <= index < {stack.count}, got {index}")
        # A plain attribute, not a child module: the stack is registered once, by its owner
        # (a child here would be saved, converted and counted once per ProjectionRows).
        object.__setattr__(self, "stack", stack)
        self.index = index
        self.in_features = self.out_features = stack.features

    def _rows(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.narrow(0, self.index * self.out_features, self.out_features)

    @property
    def weight(self) -> torch.Tensor:
        return self._rows(self.stack.weight)

    @property
    def bias(self) -> torch.Tensor:
        return self._rows(self.stack.bias)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """``nn.Linear.reset_parameters`` on these rows: the same draws in the same order."""
        weight = self.weight
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
        fan_in = weight.shape[1]
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in_features) -> (..., out_features)."""
        return nn.functional.linear(x, self.weight, self.bias)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, rows in (("weight", self.weight), ("bias", self.bias)):
            destination[prefix + name] = rows if keep_vars else rows.detach()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # The stack's owner takes these keys before its children load (and reports absent ones
        # missing); they reach this module only when the module being loaded lies below the
        # owner (e.g. layer.seasonal.load_state_dict(...)), which cannot load part of the stack.
        given = [key for key in state_dict if key.startswith(prefix)]
        if given:
            error_msgs.append(f"{', '.join(given)}: rows of a stacked projection, which the module that registers "
                              f"the StackedProjections loads (load that module's state_dict)")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rows of projection {self.index}"


def attach_query_key_value(branch: nn.Module, projections, first_projection: int, hidden_size: int,
                           factory: dict) -> None:
    """Give an attention branch its ``query``, ``key`` and ``value``: rows ``first_projection..+2``
    of ``projections`` (a layer's stack), or of a (3H, H) stack of its own (``projections=None``,
    registered as ``branch.projections``), initialised with nn.Linear's draws in the order the
    three Linears made them."""
    if projections is None:
        branch.projections = projections = StackedProjections(3, hidden_size, **factory)
    elif projections.features != hidden_size:
        raise ValueError(f"projections: expected projections of {hidden_size} features, got {projections.features}")
    branch.query, branch.key, branch.value = (ProjectionRows(projections, first_projection + i) for i in range(3))
    for rows in (branch.query, branch.key, branch.value):
        rows.reset_parameters()


def load_stacked_projections(owner: nn.Module, state_dict: dict, prefix: str, strict: bool, missing_keys: list,
                             unexpected_keys: list, error_msgs: list) -> None:
    """For each ``StackedProjections`` registered in ``owner`` itself: gather its rows' keys
    (``<ProjectionRows path>.weight`` / ``.bias``, wherever they sit under ``owner``) into the
    stack's keys (``load_stacked_parts``). Call from the owner's ``_load_from_state_dict``."""
    for stack_name, stack in owner.named_children():
        if not isinstance(stack, StackedProjections):
            continue
        rows = sorted(((path, module) for path, module in owner.named_modules()
                       if isinstance(module, ProjectionRows) and module.stack is stack), key=lambda r: r[1].index)
        if [module.index for _, module in rows] != list(range(stack.count)):
            raise RuntimeError(f"{prefix}{stack_name}: every projection of the stack must have one ProjectionRows "
                               f"under its owner, found indices {[module.index for _, module in rows]}")
        for tensor in ("weight", "bias"):
            load_stacked_parts(state_dict, prefix, f"{stack_name}.{tensor}",
                               {f"{path}.{tensor}": getattr(module, tensor) for path, module in rows}, strict,
                               missing_keys, unexpected_keys, error_msgs)
