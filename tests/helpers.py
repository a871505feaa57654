"""Shared builders for the module and model tests."""

import importlib.util
import os

import torch

from asrec import ASRecModel
from asrec.baselines import PublishedASRec


def published_config(model: ASRecModel) -> dict:
    return model.to_original_config()


@torch.no_grad()
def perturb(model: torch.nn.Module, scale: float = 0.1) -> None:
    """Move every parameter off its initial value so zero biases and unit norms get tested too."""
    for p in model.parameters():
        p.add_(scale * torch.randn_like(p))


def item_batch(batch: int, seq_len: int, n_items: int):
    """Left-aligned padded sequences with a length-1 and a full-length one."""
    lengths = torch.randint(1, seq_len + 1, (batch,))
    lengths[0], lengths[-1] = 1, seq_len
    items = torch.randint(1, n_items, (batch, seq_len))
    items[torch.arange(seq_len)[None, :] >= lengths[:, None]] = 0
    return items, lengths, torch.randint(1, n_items, (batch,))


def twin_models(dtype=torch.float64, **kwargs):
    """An ASRecModel with perturbed weights and the published-equivalent model on the same weights."""
    model = ASRecModel(**kwargs)
    perturb(model)
    published = PublishedASRec(kwargs["n_items"], published_config(model))
    published.load_state_dict(model.to_original_state_dict())
    return model.to(dtype).eval(), published.to(dtype).eval()


def load_count_launches():
    """benchmarks/count_launches.py as a module (benchmarks/ is no package)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("count_launches", os.path.join(root, "benchmarks",
                                                                                 "count_launches.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
