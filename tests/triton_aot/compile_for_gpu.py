"""Compile recorded Triton launches (``record_launches``) for a real GPU target, ahead of
time, on a machine without a GPU, and report each kernel's shared memory, registers and
spills (from the bundled ptxas).

    TRITON_INTERPRET=1 python -m tests.triton_aot.record_launches > launches.jsonl
    python -m tests.triton_aot.compile_for_gpu launches.jsonl [--arch 90,80] [--jobs 2] [--json out.json]

Each launch is compiled as Triton's JIT compiles it on a GPU: with the specialisation the
recording took (integer arguments equal to 1 as constants, ``tt.divisibility = 16`` on the
integers divisible by 16 and the 16-byte aligned pointers), by whichever Triton runs this
script (3.9 in the project's venv; 3.6, the GPU image's, from a venv of its own: the two
versions take the same ``ASTSource(fn, signature, constexprs, attrs)`` and ``GPUTarget``, and
their backends parse the attributes). The interpreter checks a kernel's arithmetic; this
checks what it cannot: that the kernel compiles (Triton's type, layout and dot-shape rules),
that one program's shared memory fits the target (the software pipeline's buffers grow with
every load in a loop), that no thread spills more than SPILL_LIMIT bytes of registers to
local memory, and that no offset is a 32-bit product of size arguments (``i32_size_products``).
"""

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

# largest dynamic shared memory one block may opt into, bytes (CUDA programming guide, table 21)
SHARED_MEMORY_LIMIT = {80: 166912, 86: 101376, 89: 101376, 90: 232448}
# register spill stores per thread above which a launch fails the check: past this the
# local-memory traffic of a spilling kernel costs more than the tiles it keeps in registers
SPILL_LIMIT = 1024
# Kernels that still spill over SPILL_LIMIT at the published shapes, each with the most it may
# spill (bytes per thread, either target; open work). None today: the kernels that held whole
# (seq_len, hidden) sequences in registers (input stage, smoothing, contrast) walk them in
# blocks of rows. A kernel listed here and over its ceiling fails the check as any other over
# SPILL_LIMIT.
SPILL_CEILINGS = {}
# Kernels allowed 32-bit products of integer arguments (``i32_size_products``), each with the
# products and why they cannot pass 2^31. Any other such product fails the check.
I32_PRODUCTS_ALLOWED = {
    # one sequence's elements (positions x hidden), not the batch's
    "_input_stage_finish_kernel": {"seq_len * hidden", "n_positions * hidden"},
}


def _ptxas_report(ptx: str, arch: int) -> dict:
    """Registers and spill bytes of the kernel in ``ptx`` as the ptxas Triton itself uses for
    ``arch`` reports them (Triton bundles more than one; an older one refuses a newer PTX
    version, and its error would leave the figures empty)."""
    from triton.backends.nvidia.compiler import get_ptxas

    ptxas = get_ptxas(arch).path
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "kernel.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        target = f"sm_{arch}a" if arch == 90 else f"sm_{arch}"
        done = subprocess.run([ptxas, "-v", f"--gpu-name={target}", path, "-o", os.path.join(folder, "k.cubin")],
                              capture_output=True, text=True)
    registers = re.search(r"Used (\d+) registers", done.stderr)
    spills = re.search(r"(\d+) bytes spill stores", done.stderr)
    if done.returncode != 0 or not registers or not spills:
        return dict(ptxas_error=(done.stderr.strip().splitlines() or ["no report"])[0])
    return dict(registers=int(registers.group(1)), spill_bytes=int(spills.group(1)))


def _source(kernel, launch: dict, target):
    """The launch as Triton's JIT hands it to the compiler: its signature (an integer 1 is a
    "constexpr" there), the constexprs by argument position, and the attributes its launcher
    derives from the recorded specialisation ("D": ``tt.divisibility = 16``), parsed by this
    Triton's own backend (``parse_attr``: Triton 3.3 and later, 3.6 and 3.9 among them)."""
    from triton.compiler import ASTSource
    from triton.compiler.compiler import make_backend

    backend = make_backend(target)
    if not hasattr(backend, "parse_attr"):
        raise RuntimeError(f"Triton {triton_version()} has no backend.parse_attr: the compile check needs Triton >= 3.3")
    index = {name: i for i, name in enumerate(kernel.arg_names)}
    constexprs = {(index[name],): value for name, value in launch["constexprs"].items()}
    attrs = {(index[name],): backend.parse_attr(spec) for name, spec in launch.get("attrs", {}).items()}
    return ASTSource(kernel, launch["signature"], constexprs, attrs)


def triton_version() -> str:
    import triton

    return triton.__version__


def compile_launch(launch: dict, arch: int) -> dict:
    """Compile one recorded launch for sm_<arch>; -> the launch's name, shared bytes, registers,
    spills and its 32-bit products of integer arguments (``i32_size_products``), or an error."""
    os.environ.pop("TRITON_INTERPRET", None)
    import triton
    from triton.backends.compiler import GPUTarget

    kernel = getattr(importlib.import_module(launch["module"]), launch["kernel"])
    shown = {k: v for k, v in launch["constexprs"].items() if v is not None}
    result = dict(kernel=launch["kernel"], constexprs=shown, options=launch["options"], arch=arch,
                  triton=triton.__version__)
    target = GPUTarget("cuda", arch, 32)
    try:
        compiled = triton.compile(_source(kernel, launch, target), target=target, options=launch["options"])
    except Exception as error:  # reported, and a failure of the check
        result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return result
    result["shared_bytes"] = compiled.metadata.shared
    result["i32_size_products"] = i32_size_products(compiled.asm["ttir"])
    result.update(_ptxas_report(compiled.asm["ptx"], arch))
    return result


def i32_size_products(ttir: str) -> list:
    """The 32-bit integer products a kernel forms from its integer arguments alone (``batch *
    seq_len * hidden``, ``rows * hidden``), read from its TTIR: sizes multiplied in int32 wrap
    past 2^31 at a large batch (B = 70,000, N = 200, H = 256 is 3.6e9 elements), where a product
    with a 64-bit program index (``seq * seq_len * hidden``, seq int64) is computed in int64.
    -> ["result = a * b", ...] of the scalar i32 products whose operands are integer arguments
    or such products (constants and program ids are not followed)."""
    header = re.search(r"tt\.func public @\w+\((.*?)\) attributes", ttir, re.S)
    sizes = set(re.findall(r"%(\w+): i32", header.group(1))) if header else set()
    found = []
    for result, a, b in re.findall(r"%([\w.]+) = arith\.muli %([\w.]+), %([\w.]+) : i32\b", ttir):
        if a in sizes and b in sizes:
            sizes.add(result)
            found.append(f"{result} = {a} * {b}")
    return found


def compile_all(launches: list, archs: list, jobs: int) -> list:
    """Every launch compiled for every arch: the results arch by arch, each in launch order."""
    pairs = [(launch, arch) for arch in archs for launch in launches]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(compile_launch, *zip(*pairs)))


def problems(results: list) -> list:
    """The failures: compile errors, shared memory over the target's per-block limit, no
    ptxas report, register spills over SPILL_LIMIT bytes per thread (SPILL_CEILINGS for the
    kernels listed there), and 32-bit products of integer arguments (I32_PRODUCTS_ALLOWED)."""
    found = []
    for r in results:
        where = f"{r['kernel']} {r['constexprs']} {r['options']}"
        if "error" in r:
            found.append(f"{where}: does not compile for sm_{r['arch']}: {r['error']}")
            continue
        allowed = I32_PRODUCTS_ALLOWED.get(r["kernel"], set())
        for product in r["i32_size_products"]:
            if product.split(" = ")[1] not in allowed:
                found.append(f"{where}: an int32 product of integer arguments ({product}) can pass 2^31 at a large "
                             "batch: cast one factor to tl.int64")
        if r["shared_bytes"] > SHARED_MEMORY_LIMIT[r["arch"]]:
            found.append(f"{where}: {r['shared_bytes']} bytes of shared memory, over "
                         f"sm_{r['arch']}'s {SHARED_MEMORY_LIMIT[r['arch']]}")
        if "ptxas_error" in r:
            found.append(f"{where}: ptxas gave no report for sm_{r['arch']}: {r['ptxas_error']}")
        elif r["spill_bytes"] > SPILL_CEILINGS.get(r["kernel"], SPILL_LIMIT):
            limit = SPILL_CEILINGS.get(r["kernel"], SPILL_LIMIT)
            found.append(f"{where}: spills {r['spill_bytes']} bytes per thread on sm_{r['arch']}, over {limit}")
    return found


def worst(results: list) -> list:
    """One line per (Triton, arch): the launch with the most shared memory, registers and spills."""
    lines = []
    for triton, arch in sorted({(r["triton"], r["arch"]) for r in results}):
        done = [r for r in results if (r["triton"], r["arch"]) == (triton, arch) and "registers" in r]
        if not done:
            continue
        parts = []
        for key in ("shared_bytes", "registers", "spill_bytes"):
            top = max(done, key=lambda r: r[key])
            parts.append(f"{key} {top[key]} ({top['kernel']})")
        spilling = sum(r["spill_bytes"] > 0 for r in done)
        lines.append(f"worst: Triton {triton} sm_{arch}: " + ", ".join(parts) + f"; {spilling} of {len(done)} spill")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("launches", help="JSON lines from record_launches")
    parser.add_argument("--arch", default="90", help="comma-separated targets, of " +
                        ", ".join(map(str, sorted(SHARED_MEMORY_LIMIT))))
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="also write every launch's figures here (a JSON list)")
    args = parser.parse_args()
    with open(args.launches) as f:
        launches = [json.loads(line) for line in f if line.strip()]
    archs = [int(arch) for arch in args.arch.split(",")]
    unknown = sorted(set(archs) - set(SHARED_MEMORY_LIMIT))
    if unknown:
        parser.error(f"--arch: no shared-memory limit known for {unknown}")
    results = compile_all(launches, archs, args.jobs)
    for r in results:
        status = r.get("error") or r.get("ptxas_error") or (
            f"shared {r['shared_bytes']:>7} B  registers {r['registers']:>3}  spills {r['spill_bytes']:>5} B")
        sizes = {k: v for k, v in r["constexprs"].items() if k.isupper() or k in ("q_len", "k_len", "seq_len",
                                                                                  "hidden", "channels")}
        print(f"sm_{r['arch']} {r['kernel']:<36} {status}  {sizes} {r['options']}")
    for line in worst(results):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    found = problems(results)
    for line in found:
        print("PROBLEM:", line, file=sys.stderr)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
