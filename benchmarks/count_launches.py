"""Count what one model call costs the host: Triton launches, aten ops, host synchronisations.

For each published setting (asrec.bench.settings) and mode (a training step: forward, loss
and backward; an eval forward: full-sort scores under no_grad) on the "triton" backend,
prints one line with:

    triton      Triton kernel launches
    aten        aten ops dispatched outside the Triton launchers' kernels (views and
                allocations included)
    kernels     the device kernels they launch on a GPU (not views, not allocations, not
                metadata; addmm with a matrix addend is two: ATen copies it, then the GEMM)
    syncs       ops that make the host wait for the device on a GPU: aten._local_scalar_dense
                (.item(), int(t), if t:), nonzero, boolean indexing, data-dependent shapes
    host_data   tensors made from Python data inside the call (torch.tensor(...)): on a GPU,
                a host-to-device copy per call
    total       triton + kernels, against the ceiling tests/test_launch_budget.py holds and
                the issue's budget (BUDGET, CEILING)

Runs anywhere: without a GPU, Triton's interpreter is selected (set here before triton is
imported) and its launches are counted but not run (``--execute`` runs them, minutes on a
CPU): the host code between kernels reads no kernel output, which is what this counts, so
the counts are those of a real run. The batch is small (``--batch``, default 2; the counts
do not depend on it). ``python benchmarks/count_launches.py [--batch B] [--settings ml-100k,ml-1m]
[--sites]``; ``--sites`` lists where each kernel comes from (Triton kernels by name, aten
kernels by op and the asrec line that dispatched them).
"""

import argparse
import collections
import importlib.util
import os
import sys
import traceback

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

# The folder of the asrec package that ``import asrec`` loads (found without importing it, so
# TRITON_INTERPRET above is set before anything imports triton).
PACKAGE_DIR = os.path.realpath(importlib.util.find_spec("asrec").submodule_search_locations[0])

# Ops whose result the host must read before it can go on: each is a device-to-host sync on a GPU.
SYNC_OPS = frozenset({"aten._local_scalar_dense.default", "aten.item.default", "aten.is_nonzero.default",
                      "aten.nonzero.default", "aten.nonzero_static.default", "aten.equal.default",
                      "aten.masked_select.default", "aten.unique_consecutive.default",
                      "aten._unique2.default", "aten.repeat_interleave.Tensor"})
# A tensor built from Python data (torch.tensor) arrives through lift_fresh: a host-to-device copy on a GPU.
HOST_DATA_OPS = frozenset({"aten.lift_fresh.default", "aten.lift_fresh_copy.default"})
# Ops that launch no device kernel: allocations and metadata (views are recognised by their schema).
NO_KERNEL_OPS = frozenset({"aten.empty.memory_format", "aten.empty_strided.default", "aten.new_empty.default",
                           "aten.new_empty_strided.default", "aten.empty_like.default", "aten.detach.default",
                           "aten.lift_fresh.default", "aten.set_.source_Storage_storage_offset",
                           "aten.sym_size.int", "aten.sym_stride.int", "aten.sym_numel.default",
                           "aten.is_same_size.default", "aten._has_compatible_shallow_copy_type.default",
                           "aten.promote_types.default",
                           # a view in all but its schema (matmul's reshape of an mm result)
                           "aten._unsafe_view.default"})


def is_sync(func, args) -> bool:
    """Whether one aten call waits for the device: a sync op, or indexing by a bool tensor."""
    name = str(func)
    if name in SYNC_OPS:
        return True
    if name.startswith("aten.index.") or name.startswith("aten.index_put"):
        indices = args[1] if len(args) > 1 else ()
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices or ())
    return False


def launches_kernel(func) -> bool:
    return not (func.is_view or str(func) in NO_KERNEL_OPS)


def kernels_of(func, args) -> int:
    """Device kernels one aten call launches on a GPU: 0 for views, allocations and metadata; 2
    for ``addmm`` with a 2-d ``self`` (ATen's CUDA addmm fuses only a 1-d bias into the GEMM's
    epilogue; a matrix it copies into the result first, then runs the GEMM with beta=1), so
    folding an addition into an out-of-place addmm does not count as a kernel saved; 1 otherwise."""
    if not launches_kernel(func):
        return 0
    # (in-place addmm_ accumulates into its own matrix: the GEMM with beta=1, one kernel)
    if str(func) == "aten.addmm.default" and isinstance(args[0], torch.Tensor) and args[0].dim() >= 2:
        return 2
    return 1


class HostAudit(TorchDispatchMode):
    """Counts every aten op dispatched while active, except inside a Triton launch (the
    interpreter's own copies); ``syncs`` and ``host_data`` count the offending op names,
    ``aten`` all of them, ``kernels`` those that launch a device kernel."""

    def __init__(self, sites: bool = False):
        super().__init__()
        self.aten = collections.Counter()
        self.kernels = collections.Counter()
        self.syncs = collections.Counter()
        self.host_data = collections.Counter()
        self.paused = False
        # with sites: kernels by (op, the innermost asrec frame that dispatched it)
        self.sites = collections.Counter() if sites else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.paused:
            return func(*args, **(kwargs or {}))
        name = str(func)
        self.aten[name] += 1
        kernels = kernels_of(func, args)
        if kernels:
            self.kernels[name] += kernels
            if self.sites is not None:
                self.sites[(name, call_site())] += kernels
        if is_sync(func, args):
            self.syncs[name] += 1
        if name in HOST_DATA_OPS:
            self.host_data[name] += 1
        return func(*args, **(kwargs or {}))


def package_file(filename: str):
    """``asrec/<path>`` for a file of the asrec package that is imported, else None.

    Decided by the package's real location, not by a folder named ``asrec`` in the path: a
    checkout cloned into a folder named ``asrec`` with its venv inside holds torch's files
    under ``asrec/.venv/``, which are not asrec's."""
    path = os.path.realpath(os.path.abspath(filename))
    if not path.startswith(PACKAGE_DIR + os.sep):
        return None
    return "asrec/" + os.path.relpath(path, PACKAGE_DIR).replace(os.sep, "/")


def call_site() -> str:
    """``file:line function`` of the innermost frame inside the asrec package, or "autograd"
    (an op the autograd engine dispatches itself: a gradient addition, ``ones_like``, the
    backward of an aten op)."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        name = package_file(frame.filename)
        if name is not None:
            return f"{name}:{frame.lineno} {frame.name}"
    return "autograd"


class TritonLaunchCounter:
    """Counts Triton kernel launches (compiled or interpreted) while active; pauses ``audit``
    during each launch; ``execute=False`` skips interpreted kernels but RUN_WHEN_SKIPPING (their
    outputs stay uninitialised)."""

    def __init__(self, audit: HostAudit = None, execute: bool = True):
        self.launches = collections.Counter()
        self.audit = audit
        self.execute = execute

    def __enter__(self):
        from triton.runtime.interpreter import InterpretedFunction
        from triton.runtime.jit import JITFunction

        from asrec.kernels.padding_bias import RUN_WHEN_SKIPPING

        self._patched = []
        for cls in (JITFunction, InterpretedFunction):
            original = cls.run

            def run(fn, *args, _original=original, _interpreted=cls is InterpretedFunction, **kwargs):
                name = getattr(fn, "__name__", None) or fn.fn.__name__
                self.launches[name] += 1
                if _interpreted and not self.execute and name not in RUN_WHEN_SKIPPING:
                    return None
                if self.audit is not None:
                    self.audit.paused = True
                try:
                    return _original(fn, *args, **kwargs)
                finally:
                    if self.audit is not None:
                        self.audit.paused = False

            cls.run = run
            self._patched.append((cls, original))
        return self

    def __exit__(self, *exc):
        for cls, original in self._patched:
            cls.run = original


def model_and_batch(config: dict, batch: int, device):
    """A model of one published setting (check_values=False, as training uses it) and a full batch."""
    import asrec

    torch.manual_seed(0)
    model = asrec.ASRecModel(**config, check_values=False, device=device)
    seq_len = config["max_seq_length"]
    items = torch.randint(1, config["n_items"], (batch, seq_len), device=device)
    lengths = torch.randint(1, seq_len + 1, (batch,), device=device)
    items = items * (torch.arange(seq_len, device=device)[None, :] < lengths[:, None])
    targets = torch.randint(1, config["n_items"], (batch,), device=device)
    return model, items, lengths, targets


def training_step(model, items, lengths, targets):
    """Forward, loss and backward, as a training loop runs them (gradients set to None first,
    so backward writes them instead of accumulating; the optimizer step is not counted)."""
    model.train()
    model.zero_grad(set_to_none=True)
    model.loss(items, lengths, targets).backward()


def eval_forward(model, items, lengths, targets):
    model.eval()
    with torch.no_grad():
        model.full_sort_scores(items, lengths)


MODES = {"train step": training_step, "eval forward": eval_forward}
# Device kernels (Triton launches + aten kernels) per call on "triton", at either published
# setting: the budget, and the ceiling tests/test_launch_budget.py holds today (both
# under budget). What remains of the training step: the cuBLAS GEMMs of the projections and
# dense layers (one forward, two backward each), the second-stage column sums of per-program
# partials, the q/k/v projections' bias sums, the loss's mean and autograd's ones_like, the
# item table's embedding backward and its add to the scores' gradient, and the fused kernels.
BUDGET = {"train step": 100, "eval forward": 36}
CEILING = {"train step": 96, "eval forward": 32}


def count(step, model, items, lengths, targets, backend: str = "triton", execute: bool = True,
          sites: bool = False):
    """(Triton launches, HostAudit) of one call of ``step`` after one warm-up call; ``sites``:
    the audit also counts aten kernels by call site (slower)."""
    import asrec

    with asrec.use_backend(backend):
        with TritonLaunchCounter(execute=execute):
            step(model, items, lengths, targets)  # warm-up: caches, compiled kernels
        audit = HostAudit(sites)
        with TritonLaunchCounter(audit, execute) as triton_counter, audit:
            step(model, items, lengths, targets)
    return triton_counter, audit


def device_kernels(triton_counter: TritonLaunchCounter, audit: HostAudit) -> int:
    """Kernels one call puts on the device: Triton launches plus aten ops that launch a kernel."""
    return sum(triton_counter.launches.values()) + sum(audit.kernels.values())


def main(argv=None):
    from asrec.bench.settings import SETTINGS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--backend", default="triton")
    parser.add_argument("--execute", action="store_true", help="run interpreted Triton kernels too")
    parser.add_argument("--verbose", action="store_true", help="list the sync and host-data ops")
    parser.add_argument("--sites", action="store_true",
                        help="list the Triton launches by kernel and the aten kernels by op and call site")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device={device} backend={args.backend} batch={args.batch} torch={torch.__version__}")
    for setting in args.settings.split(","):
        model, items, lengths, targets = model_and_batch(SETTINGS[setting], args.batch, device)
        for mode, step in MODES.items():
            triton_counter, audit = count(step, model, items, lengths, targets, args.backend,
                                          args.execute or device.type == "cuda", args.sites)
            print(f"{setting:8s} {mode:12s} triton={sum(triton_counter.launches.values()):4d} "
                  f"aten={sum(audit.aten.values()):4d} kernels={sum(audit.kernels.values()):4d} "
                  f"syncs={sum(audit.syncs.values()):3d} "
                  f"host_data={sum(audit.host_data.values()):3d} "
                  f"total={device_kernels(triton_counter, audit):4d} (ceiling {CEILING[mode]}, budget {BUDGET[mode]})")
            if args.verbose:
                for what in (audit.syncs, audit.host_data):
                    for name, times in sorted(what.items()):
                        print(f"    {name} x{times}")
            if args.sites:
                for kernel, times in sorted(triton_counter.launches.items()):
                    print(f"    {times:3d}  triton  {kernel}")
                for (name, site), times in sorted(audit.sites.items(), key=lambda item: (item[0][1], item[0][0])):
                    print(f"    {times:3d}  {name:40s} {site}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
