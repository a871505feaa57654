"""Catalog-scale rows: the loss (forward + backward), the target ranks and the top-k over
100,000 and 1,000,000 items, tiled (``asrec.ops``) against the materialised (batch, n_items)
matrix, time and the peak memory each adds.

``python -m asrec.bench.scale [--items 100000 1000000] [--batch 256] [--hidden 64]``

Each (case, path, items) runs in a fresh subprocess, so the peak memory it adds is its own:
on the CPU the process's peak resident set (VmHWM, reset once the inputs exist) over all its
calls minus its resident set then, less the loss's gradients (which any path holds), with
glibc mapping every block over 64 kB (``MALLOC_MMAP_THRESHOLD_``) so that freed tiles leave
the resident set (otherwise the allocator's retention shows as the case's); one-time library
buffers count. On CUDA ``torch.cuda.max_memory_allocated`` minus the memory allocated then.
Time: the best of ``--repeat`` runs after one warm-up call.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch

CASES = ("loss", "ranks", "topk")
PATHS = ("tiled", "materialised")
TOPK = 20


def _resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _reset_cpu_peak() -> bool:
    """Reset the process's peak resident set (Linux: ``5`` to /proc/self/clear_refs resets
    VmHWM), so the peak read later is the case's, not the inputs' creation's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e6
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3   # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _step(case: str, path: str, hidden, weight, targets, exclude):
    """One call of the case on the path."""
    from ..ops import linear_cross_entropy, target_ranks, top_items
    from ..train.metrics import target_ranks as materialised_ranks

    if case == "loss":
        hidden.grad = weight.grad = None
        if path == "tiled":
            loss = linear_cross_entropy(hidden, weight, targets)
        else:
            loss = torch.nn.functional.cross_entropy(hidden @ weight.t(), targets)
        loss.backward()
        return loss.detach()
    with torch.no_grad():
        if case == "ranks":
            return target_ranks(hidden, weight, targets) if path == "tiled" else \
                materialised_ranks(hidden @ weight.t(), targets)
        if path == "tiled":
            return top_items(hidden, weight, TOPK, exclude)
        scores = hidden @ weight.t()
        scores[:, 0] = float("-inf")
        scores.scatter_(1, exclude, float("-inf"))
        return scores.topk(TOPK, dim=1)


def measure(case: str, path: str, n_items: int, batch: int, hidden_size: int, repeat: int, device) -> dict:
    """Time (s, best of ``repeat`` after a warm-up) and the peak memory (MB) the case adds."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    hidden = torch.randn(batch, hidden_size, generator=generator).to(device).requires_grad_(case == "loss")
    weight = (0.1 * torch.randn(n_items, hidden_size, generator=generator)).to(device).requires_grad_(case == "loss")
    targets = torch.randint(1, n_items, (batch,), generator=generator).to(device)
    exclude = torch.randint(1, n_items, (batch, 50), generator=generator).to(device)   # a history of 50 items
    # a training loop sets gradients to None (zero_grad): each step allocates them anew, as much on
    # either path; "added_peak_mb" leaves them out ("added_peak_with_grads_mb" keeps them)
    grads_mb = (weight.numel() + hidden.numel()) * weight.element_size() / 1e6 if case == "loss" else 0.0
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device) / 1e6
    else:
        if not _reset_cpu_peak():
            raise RuntimeError("cannot reset the peak resident set (/proc/self/clear_refs): no peak of the case alone")
        base = _resident_mb()
    times = []
    for _ in range(repeat + 1):   # the first call warms up, untimed
        start = time.perf_counter()
        _step(case, path, hidden, weight, targets, exclude)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return {"case": case, "path": path, "items": n_items, "batch": batch, "hidden": hidden_size,
            "device": str(device), "seconds": min(times[1:]),
            "added_peak_mb": _peak_mb(device) - base - grads_mb, "added_peak_with_grads_mb": _peak_mb(device) - base}


def run_isolated(case: str, path: str, n_items: int, batch: int, hidden_size: int, repeat: int, device: str) -> dict:
    """``measure`` in a fresh interpreter (its own peak memory)."""
    command = [sys.executable, "-m", "asrec.bench.scale", "--one", case, path, str(n_items), "--batch", str(batch),
               "--hidden", str(hidden_size), "--repeat", str(repeat), "--device", device]
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
    if done.returncode != 0:
        raise RuntimeError(f"scale row {case}/{path}/{n_items} failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_rows(rows: list) -> str:
    """A markdown table: tiled against materialised per (case, items)."""
    lines = ["| case | items | tiled s | materialised s | tiled / materialised | tiled adds MB "
             "| materialised adds MB |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    by_key = {(r["case"], r["items"], r["path"]): r for r in rows}
    for case in CASES:
        for items in sorted({r["items"] for r in rows}):
            tiled, full = by_key.get((case, items, "tiled")), by_key.get((case, items, "materialised"))
            if tiled is None or full is None:
                continue
            lines.append(f"| {case} | {items:,} | {tiled['seconds']:.3f} | {full['seconds']:.3f} | "
                         f"{tiled['seconds'] / full['seconds']:.2f} | {tiled['added_peak_mb']:.0f} | "
                         f"{full['added_peak_mb']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asrec.bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--one", nargs=3, metavar=("CASE", "PATH", "ITEMS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        case, path, items = args.one
        print(json.dumps(measure(case, path, int(items), args.batch, args.hidden, args.repeat,
                                 torch.device(args.device))))
        return 0
    rows = []
    for items in args.items:
        for case in args.cases:
            for path in PATHS:
                rows.append(run_isolated(case, path, items, args.batch, args.hidden, args.repeat, args.device))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(f"device={args.device} batch={args.batch} hidden={args.hidden} torch={torch.__version__} "
          f"threads={torch.get_num_threads()}")
    print(format_rows(rows))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
