"""Runs the benchmark cases and reports: progress on stderr, a table, JSON, a plot."""

import json
import sys
import time

import torch

from . import cases as case_lib
from .environment import describe
from .settings import SETTINGS
from .timing import copy_bandwidth_gbs, time_fn


def run_benchmark(settings: list, batch: int, dtype: torch.dtype, device: torch.device, repeats: int,
                  compile_reference: bool, compile_skip_reason: str = "", progress=sys.stderr) -> dict:
    """Measure every case of ``settings``; returns the JSON-ready result.

    A row that raises is recorded as ``status: "failed"`` with the error, and the others are
    measured. Ctrl-C ends the run early: the result holds the rows measured so far and
    ``interrupted: True``.
    """
    bandwidth = copy_bandwidth_gbs(device)
    rows = []
    interrupted = False
    started = time.perf_counter()
    try:
        for setting in settings:
            _measure_setting(setting, batch, dtype, device, repeats, compile_reference, compile_skip_reason,
                             bandwidth, rows, started, progress)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: keeping the rows measured so far", file=progress, flush=True)
    result = {**describe(device), "dtype": str(dtype).replace("torch.", ""), "batch": batch, "repeats": repeats,
              "settings": {s: SETTINGS[s] for s in settings}, "copy_bandwidth_gb_per_s": bandwidth, "rows": rows}
    if interrupted:
        result["interrupted"] = True
    return result


def _measure_setting(setting, batch, dtype, device, repeats, compile_reference, compile_skip_reason, bandwidth,
                     rows, started, progress) -> None:
    try:
        cases = case_lib.build_cases(setting, SETTINGS[setting], batch, device, dtype, compile_reference)
    except Exception as error:  # e.g. out of memory for the inputs: the other settings are still measured
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        print(f"[{setting}] failed to set up: {reason}", file=progress, flush=True)
        rows.append(dict(setting=setting, target="(setup)", mode="", implementation="all", batch=batch,
                         status="failed", reason=reason))
        return
    total = len(cases) * len(case_lib.IMPLEMENTATIONS)
    for index, case in enumerate(cases):
        published_ms = None
        for offset, name in enumerate(case_lib.IMPLEMENTATIONS):
            label = f"[{setting} {index * len(case_lib.IMPLEMENTATIONS) + offset + 1}/{total}]"
            row = dict(setting=setting, target=case.target, mode=case.mode, implementation=name, batch=batch)
            if name in case.run:
                print(f"{label} {case.target} {case.mode} {name} ...", end="", file=progress, flush=True)
                try:
                    timing = time_fn(case.run[name], device, repeats)
                except Exception as error:  # one failing row (out of memory, a kernel error) keeps the others
                    reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
                    print(f" failed: {reason}", file=progress, flush=True)
                    row.update(status="failed", reason=reason)
                    rows.append(row)
                    continue
                print(f" {timing.median_ms:.1f} ms  ({time.perf_counter() - started:.0f} s)", file=progress,
                      flush=True)
                if name == "published":
                    published_ms = timing.median_ms
                row.update(status="ok", median_ms=timing.median_ms, q20_ms=timing.q20_ms, q80_ms=timing.q80_ms,
                           sequences_per_s=batch / (timing.median_ms * 1e-3),
                           speedup_vs_published=(published_ms / timing.median_ms) if published_ms else None)
                if case.bytes_moved:
                    gbs = case.bytes_moved / (timing.median_ms * 1e-3) / 1e9
                    row.update(gb_per_s=gbs, copy_bandwidth_fraction=gbs / bandwidth)
            else:
                absent = case_lib.absent_reason(name, device)
                row.update(status="absent" if absent else "skipped",
                           reason=absent or case_lib.skip_reason(name, compile_skip_reason))
            rows.append(row)


def format_table(result: dict) -> str:
    """A fixed-width table of the measured rows, then the absent implementations once."""
    header = (f"{'setting':<8} {'target':<18} {'mode':<17} {'implementation':<18} {'median ms':>10} "
              f"{'q20-q80 ms':>15} {'seq/s':>9} {'vs published':>12} {'GB/s':>7} {'of copy':>8}")
    lines = [f"asrec bench on {result['device']} | {result['dtype']} | batch {result['batch']} | commit "
             f"{result['commit']} | copy bandwidth {result['copy_bandwidth_gb_per_s']:.1f} GB/s", header,
             "-" * len(header)]
    absent, failed = {}, []
    for row in result["rows"]:
        if row["status"] == "failed":
            failed.append(f"{row['setting']} {row['target']} {row['mode']} {row['implementation']}: failed: "
                          f"{row['reason']}")
            continue
        if row["status"] != "ok":
            absent[row["implementation"]] = row["reason"]
            continue
        speedup = f"{row['speedup_vs_published']:.2f}x" if row.get("speedup_vs_published") else ""
        gbs = f"{row['gb_per_s']:.1f}" if "gb_per_s" in row else ""
        share = f"{100 * row['copy_bandwidth_fraction']:.0f}%" if "copy_bandwidth_fraction" in row else ""
        lines.append(f"{row['setting']:<8} {row['target']:<18} {row['mode']:<17} {row['implementation']:<18} "
                     f"{row['median_ms']:>10.2f} {row['q20_ms']:>7.1f}-{row['q80_ms']:<7.1f} "
                     f"{row['sequences_per_s']:>9.0f} {speedup:>12} {gbs:>7} {share:>8}")
    for name, reason in absent.items():
        lines.append(f"{name}: not measured: {reason}")
    lines += failed
    if result.get("interrupted"):
        lines.append(f"interrupted after {len(result['rows'])} rows")
    return "\n".join(lines)


def write_json(result: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=2)


def write_plot(result: dict, path: str) -> None:
    """A PNG bar chart of the speedups against the published-equivalent eager path."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(f"--plot needs matplotlib ({error}): pip install 'asrec[bench]'") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r["status"] == "ok" and r["implementation"] != "published"]
    names = sorted({r["implementation"] for r in rows})
    labels = list(dict.fromkeys(f"{r['setting']}\n{r['target']}\n{r['mode']}" for r in rows))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels)), 4.5))
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        values = {f"{r['setting']}\n{r['target']}\n{r['mode']}": r["speedup_vs_published"]
                  for r in rows if r["implementation"] == name}
        ax.bar([j + i * width for j in range(len(labels))], [values.get(label, 0) for label in labels], width,
               label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels, fontsize=6)
    ax.set_ylabel("speedup vs published eager")
    ax.set_title(f"asrec bench: {result['device']} ({result['dtype']}, batch {result['batch']})", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
