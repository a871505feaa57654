"""A small cache of constant tensors (the DFT matrices) that never holds a traced tensor.

``functools.lru_cache`` served here before, with two faults: ``torch.compile`` warns at
every call site of an lru_cache-wrapped function (Dynamo traces through the wrapper), and
when ``torch.export`` (or any tracing under a fake or proxy mode) made the first call, the
cache kept the trace's placeholder tensors, so every later eager call computed with
FakeTensors. This cache is read and written only outside tracing (no fake, proxy or
functional mode) and keeps only plain tensors; under tracing the constants are built afresh
(Dynamo and export see ordinary tensor code, which they trace or fold).
"""

import collections

import torch

# the dispatch modes of tracing (export, make_fx, functionalization); other modes (a profiler's,
# an op counter's) see the cached tensors as eager code does
_TRACING_MODES = tuple(torch._C._TorchDispatchModeKey.__members__.values())  # FUNCTIONAL, PROXY, FAKE


def _plain_eager() -> bool:
    """Not under torch.compile or export, and no fake, proxy or functional mode active."""
    return not torch.compiler.is_compiling() and all(torch._C._get_dispatch_mode(key) is None
                                                      for key in _TRACING_MODES)


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
