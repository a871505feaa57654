"""Runs the benchmark cases and reports: progress on stderr, a table, JSON, a plot."""

import json
import sys
import time

import torch

from . import cases as case_lib
from . import library_warnings
from .environment import describe
from .settings import SETTINGS
from .timing import copy_bandwidth_gbs, time_fn

# A row whose q20-q80 spread is wider than this share of its median is flagged: its figures
# (and any speedup computed from them) are not to be trusted.
WIDE_SPREAD = 0.25


def run_benchmark(settings: list, batch: int, dtype: torch.dtype, device: torch.device, repeats: int,
                  compile_reference: bool, compile_skip_reason: str = "", progress=sys.stderr) -> dict:
    """Measure every case of ``settings``; returns the JSON-ready result.

    A row that raises is recorded as ``status: "failed"`` with the error, and the others are
    measured. Ctrl-C ends the run early: the result holds the rows measured so far and
    ``interrupted: True``. Warnings that libraries raise meanwhile are not printed between
    the progress lines: ``warnings`` lists the ones worth reporting (``library_warnings``).
    """
    bandwidth = copy_bandwidth_gbs(device)
    rows = []
    interrupted = False
    started = time.perf_counter()
    with library_warnings.collected() as caught:
        try:
            for setting in settings:
                _measure_setting(setting, batch, dtype, device, repeats, compile_reference, compile_skip_reason,
                                 bandwidth, rows, started, progress)
        except KeyboardInterrupt:
            interrupted = True
            print("\ninterrupted: keeping the rows measured so far", file=progress, flush=True)
    for row in rows:
        if row["status"] == "ok":
            row["wide_spread"] = wide_spread(row)
    result = {**describe(device), "dtype": str(dtype).replace("torch.", ""), "batch": batch, "repeats": repeats,
              "settings": {s: SETTINGS[s] for s in settings}, "copy_bandwidth_gb_per_s": bandwidth, "rows": rows}
    result["headlines"] = headlines(rows)
    result["warnings"] = library_warnings.reportable(caught)
    if interrupted:
        result["interrupted"] = True
    return result


def wide_spread(row: dict) -> bool:
    """Whether a measured row's q20-q80 spread is wider than ``WIDE_SPREAD`` of its median:
    the machine was busy or the repeats too few for its figures to be trusted."""
    return (row["q80_ms"] - row["q20_ms"]) > WIDE_SPREAD * row["median_ms"]


def headlines(rows: list) -> list:
    """Per setting and model mode (eval, train-step): the fastest implementation measured
    against the published code, with the ratio's range over both rows' q20-q80 spreads
    (``low``: the published q20 over the best's q80; ``high``: q80 over q20). ``clear`` is
    False when that range holds 1.0 (the spreads overlap: not known to be faster or slower)."""
    found = []
    model_rows = [r for r in rows if r["target"] == "model" and r["status"] == "ok"]
    for setting, mode in dict.fromkeys((r["setting"], r["mode"]) for r in model_rows):
        group = [r for r in model_rows if r["setting"] == setting and r["mode"] == mode]
        published = next((r for r in group if r["implementation"] == "published"), None)
        others = [r for r in group if r["implementation"] != "published"]
        if published is None or not others:
            continue
        best = min(others, key=lambda r: r["median_ms"])
        low, high = published["q20_ms"] / best["q80_ms"], published["q80_ms"] / best["q20_ms"]
        found.append(dict(setting=setting, mode=mode, implementation=best["implementation"],
                          speedup=published["median_ms"] / best["median_ms"], low=low, high=high,
                          median_ms=best["median_ms"], published_ms=published["median_ms"],
                          clear=not (low <= 1.0 <= high),
                          wide_spread=wide_spread(best) or wide_spread(published)))
    return found


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
    total = sum(name in case.run for case in cases for name in case_lib.IMPLEMENTATIONS)  # the rows to measure
    measured = 0
    for case in cases:
        published_ms = None
        for name in case_lib.IMPLEMENTATIONS:
            row = dict(setting=setting, target=case.target, mode=case.mode, implementation=name, batch=batch)
            if name in case.run:
                measured += 1
                print(f"[{setting} {measured}/{total}] {case.target} {case.mode} {name} ...", end="", file=progress,
                      flush=True)
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
    """A fixed-width table of the measured rows (``!``: a spread too wide to trust), the
    absent implementations once, the failed rows, then the headline per setting."""
    header = (f"{'setting':<8} {'target':<18} {'mode':<17} {'implementation':<18} {'median ms':>10} "
              f"{'q20-q80 ms':>15} {'seq/s':>9} {'vs published':>12} {'GB/s':>7} {'of copy':>8}")
    lines = [f"asrec bench on {result['device']} | {result['dtype']} | batch {result['batch']} | commit "
             f"{result['commit']} | copy bandwidth {result['copy_bandwidth_gb_per_s']:.1f} GB/s", header,
             "-" * len(header)]
    absent, failed, wide = {}, [], 0
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
        flag = " !" if row.get("wide_spread") else ""
        wide += bool(flag)
        lines.append(f"{row['setting']:<8} {row['target']:<18} {row['mode']:<17} {row['implementation']:<18} "
                     f"{row['median_ms']:>10.2f} {row['q20_ms']:>7.1f}-{row['q80_ms']:<7.1f} "
                     f"{row['sequences_per_s']:>9.0f} {speedup:>12} {gbs:>7} {share:>8}{flag}")
    if wide:
        lines.append(f"! {wide} rows: q20-q80 spread wider than {100 * WIDE_SPREAD:.0f}% of the median (a busy "
                     "machine, or too few --repeats): their figures and speedups are not to be trusted; rerun on "
                     "an idle machine with more --repeats")
    for name, reason in absent.items():
        lines.append(f"{name}: not measured: {reason}")
    lines += failed
    if result.get("interrupted"):
        lines.append(f"interrupted after {len(result['rows'])} rows")
    lines += format_headlines(result)
    return "\n".join(lines)


def format_headlines(result: dict) -> list:
    """The headline lines: per setting, the model's eval and training step, the fastest
    implementation here against the published code."""
    found = result.get("headlines") or []
    if not found:
        return []
    lines = ["", f"headline: {result['device']}, {result['dtype']}, batch {result['batch']}, median of "
                 f"{result['repeats'] if result['device_type'] == 'cpu' else 'triton.testing.do_bench'} runs"]
    for h in found:
        if h["speedup"] >= 1:
            verdict = f"{h['speedup']:.2f}x as fast as the published code"
        else:
            verdict = f"{1 / h['speedup']:.2f}x slower than the published code"
        line = (f"  {h['setting']} model {h['mode']}: {h['implementation']} is {verdict} ({h['median_ms']:.1f} vs "
                f"{h['published_ms']:.1f} ms; {h['low']:.2f}x-{h['high']:.2f}x over the q20-q80 spreads)")
        if not h["clear"]:
            line += " -- not a clear result: the spreads overlap 1.00x"
        elif h["wide_spread"]:
            line += " -- a wide spread (!): rerun to confirm"
        lines.append(line)
    return lines


def write_json(result: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=2)


def write_plot(result: dict, path: str) -> None:
    """A PNG of the speedups against the published code: one panel per setting, one group of
    horizontal bars per row (model eval, train step, each op and mode), the value written at
    the end of each bar and the spread-flagged ones marked ``!``; sized so that its text reads
    at its natural size (9 pt at 100 dpi)."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(f"--plot needs matplotlib ({error}): pip install 'asrec[bench]'") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r["status"] == "ok" and r["implementation"] != "published"
            and r.get("speedup_vs_published")]
    settings = list(dict.fromkeys(r["setting"] for r in rows)) or ["(no rows measured)"]
    names = list(dict.fromkeys(r["implementation"] for r in rows))
    groups = {s: list(dict.fromkeys((r["target"], r["mode"]) for r in rows if r["setting"] == s)) for s in settings}
    bar = 0.32  # inches per bar
    heights = [max(1, len(groups[s]) * max(1, len(names))) * bar + 0.6 for s in settings]
    fig, axes = plt.subplots(len(settings), 1, figsize=(9, sum(heights) + 1.0), squeeze=False,
                             gridspec_kw=dict(height_ratios=heights))
    colors = plt.get_cmap("tab10")
    largest = max([r["speedup_vs_published"] for r in rows] + [1.0])
    for ax, setting in zip(axes[:, 0], settings):
        labels = groups[setting]
        width = 0.8 / max(1, len(names))
        for i, name in enumerate(names):
            for j, (target, mode) in enumerate(labels):
                row = next((r for r in rows if r["setting"] == setting and r["implementation"] == name
                            and r["target"] == target and r["mode"] == mode), None)
                if row is None:
                    continue
                y = j + (i - (len(names) - 1) / 2) * width
                value = row["speedup_vs_published"]
                ax.barh(y, value, width, color=colors(i % 10), label=name if j == 0 else None)
                ax.text(value, y, f" {value:.2f}x" + (" !" if row.get("wide_spread") else ""), va="center",
                        fontsize=8)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(labels)), [f"{target} {mode}" for target, mode in labels], fontsize=9)
        ax.invert_yaxis()
        ax.set_xlim(0, largest * 1.22)
        ax.set_title(f"{setting}: speedup vs the published code (1.00x = as fast; ! = wide spread)", fontsize=10)
        ax.tick_params(axis="x", labelsize=9)
    handles, legend_labels = axes[0, 0].get_legend_handles_labels()
    by_label = dict(zip(legend_labels, handles))
    if by_label:
        axes[0, 0].legend(by_label.values(), by_label.keys(), fontsize=9, loc="lower right")
    fig.suptitle(f"asrec bench: {result['device']} ({result['dtype']}, batch {result['batch']}, "
                 f"commit {result['commit']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
