"""A small cache of constant tensors (the DFT matrices) that never holds a traced tensor.

``functools.lru_cache`` served here before, with two faults: ``torch.compile`` warns at
every call site of an lru_cache-wrapped function (Dynamo traces through the wrapper), and
when ``torch.export`` (or any tracing under a fake or proxy mode) made the first call, the
cache kept the trace's placeholder tensors, so every later eager call computed with
FakeTensors. This cache is read and written only in plain eager mode and keeps only plain
tensors; under tracing the constants are built afresh (Dynamo and export see ordinary
tensor code, which they trace or fold).
"""

import collections

import torch
from torch.utils._python_dispatch import _get_current_dispatch_mode


def _plain_eager() -> bool:
    """Not under torch.compile / export, and no dispatch mode (fake, proxy, functional) active."""
    return not torch.compiler.is_compiling() and _get_current_dispatch_mode() is None


class ConstantCache:
    """``cache(key, build)``: ``build()``'s tuple of tensors, remembered per key (the last
    ``size`` keys) when built in plain eager mode and made of plain ``torch.Tensor``s."""

    def __init__(self, size: int):
        self.size = size
        self.entries = collections.OrderedDict()

    def __call__(self, key, build) -> tuple:
        if not _plain_eager():
            return build()
        hit = self.entries.get(key)
        if hit is not None:
            self.entries.move_to_end(key)
            return hit
        tensors = build()
        if all(type(t) is torch.Tensor for t in tensors):  # never a FakeTensor or other subclass
            self.entries[key] = tensors
            if len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return tensors

    def clear(self) -> None:
        self.entries.clear()
