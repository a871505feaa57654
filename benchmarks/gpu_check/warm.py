"""One warm-up worker's job: replay on "triton" the recorded calls of one op in one call group
at one shape and precision, which makes Triton compile (and cache on disk) their kernels.

Runs in a worker process of ``steps/warmup.py``. In the dry run (Triton's interpreter) the
kernels are counted, not run (``benchmarks/count_launches.py``'s launch counter): the
interpreter compiles nothing, and the host code between kernels reads no kernel output.
"""

import collections
import importlib.abc
import os
import sys
import time

# (shape, group, precision) -> recorded calls, the latest few per worker process: a group's calls
# hold its activations (about 1 GB at ml-1m, batch 256), and 16 workers share the card
_recorded = collections.OrderedDict()
KEPT_GROUPS = 2


class _WithoutExtension(importlib.abc.MetaPathFinder):
    """Keeps ``asrec._C`` from loading in the warm-up: it may be mid-build beside it (and the
    warm-up compiles Triton kernels only)."""

    def find_spec(self, name, path, target=None):
        if name == "asrec._C":
            raise ModuleNotFoundError("asrec._C is being built beside the warm-up", name=name)
        return None


def start_worker() -> None:
    sys.meta_path.insert(0, _WithoutExtension())


def warm(unit: tuple, dry_run: bool) -> dict:
    """unit: (shape name, call group, precision, op) -> {"unit", "calls", "keys", "seconds"}."""
    import torch

    from benchmarks.count_launches import TritonLaunchCounter

    from . import calls as call_groups
    from . import plan
    from .launch_keys import recording_keys
    from .precision import matmul_precision
    from .recording import replay

    started = time.perf_counter()
    shape_name, group, precision, op = unit
    shape = next(s for s in plan.shapes(dry_run) if s.name == shape_name)
    dev = plan.device(dry_run)
    with matmul_precision(precision):
        key = (shape_name, group, precision)
        if key not in _recorded:
            while len(_recorded) >= KEPT_GROUPS:
                _recorded.popitem(last=False)
            _recorded[key] = call_groups.record(group, shape, dev)
        _recorded.move_to_end(key)
        calls = [c for c in _recorded[key] if c.op == op]
        with TritonLaunchCounter(execute=not dry_run), recording_keys() as keys:
            for call in calls:
                replay(call, "triton")
        if dev.type == "cuda":
            torch.cuda.synchronize()
    return dict(unit=list(unit), calls=len(calls), keys=keys, seconds=time.perf_counter() - started,
                pid=os.getpid())
