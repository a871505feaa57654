"""Compile recorded Triton launches (``record_launches``) for a real GPU target, ahead of
time, on a machine without a GPU, and report each kernel's shared memory, registers and
spills (from the bundled ptxas).

    TRITON_INTERPRET=1 python -m tests.triton_aot.record_launches > launches.jsonl
    python -m tests.triton_aot.compile_for_gpu launches.jsonl [--arch 90] [--jobs 2]

The interpreter checks a kernel's arithmetic; this checks what it cannot: that the kernel
compiles (Triton's type, layout and dot-shape rules), and that one program's shared memory
fits the target (the software pipeline's buffers grow with every load in a loop).
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


def _ptxas_report(ptx: str, arch: int) -> dict:
    """Registers and spill bytes of the kernel in ``ptx`` as the bundled ptxas reports them."""
    import triton

    ptxas = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "kernel.ptx")
        with open(path, "w") as f:
            f.write(ptx)
        target = f"sm_{arch}a" if arch == 90 else f"sm_{arch}"
        done = subprocess.run([ptxas, "-v", f"--gpu-name={target}", path, "-o", os.path.join(folder, "k.cubin")],
                              capture_output=True, text=True)
    registers = re.search(r"Used (\d+) registers", done.stderr)
    spills = re.search(r"(\d+) bytes spill stores", done.stderr)
    return dict(registers=int(registers.group(1)) if registers else None,
                spill_bytes=int(spills.group(1)) if spills else None)


def compile_launch(launch: dict, arch: int) -> dict:
    """Compile one recorded launch for sm_<arch>; -> the launch's name, shared bytes, registers, spills or error."""
    os.environ.pop("TRITON_INTERPRET", None)
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    kernel = getattr(importlib.import_module(launch["module"]), launch["kernel"])
    constexprs = {(kernel.arg_names.index(name),): value for name, value in launch["constexprs"].items()}
    shown = {k: v for k, v in launch["constexprs"].items() if v is not None}
    result = dict(kernel=launch["kernel"], constexprs=shown, options=launch["options"], arch=arch)
    try:
        compiled = triton.compile(ASTSource(kernel, launch["signature"], constexprs),
                                  target=GPUTarget("cuda", arch, 32), options=launch["options"])
    except Exception as error:  # reported, and a failure of the check
        result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        return result
    result["shared_bytes"] = compiled.metadata.shared
    result.update(_ptxas_report(compiled.asm["ptx"], arch))
    return result


def compile_all(launches: list, arch: int, jobs: int) -> list:
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(compile_launch, launches, [arch] * len(launches)))


def problems(results: list) -> list:
    """The failures: compile errors, and shared memory over the target's per-block limit."""
    found = []
    for r in results:
        if "error" in r:
            found.append(f"{r['kernel']} {r['constexprs']}: does not compile for sm_{r['arch']}: {r['error']}")
        elif r["shared_bytes"] > SHARED_MEMORY_LIMIT[r["arch"]]:
            found.append(f"{r['kernel']} {r['constexprs']}: {r['shared_bytes']} bytes of shared memory, over "
                         f"sm_{r['arch']}'s {SHARED_MEMORY_LIMIT[r['arch']]}")
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("launches", help="JSON lines from record_launches")
    parser.add_argument("--arch", type=int, default=90, choices=sorted(SHARED_MEMORY_LIMIT))
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with open(args.launches) as f:
        launches = [json.loads(line) for line in f if line.strip()]
    results = compile_all(launches, args.arch, args.jobs)
    for r in results:
        status = r.get("error") or (f"shared {r['shared_bytes']:>7} B  registers {r['registers']}  "
                                    f"spills {r['spill_bytes']} B")
        sizes = {k: v for k, v in r["constexprs"].items() if k.isupper() or k in ("q_len", "k_len", "seq_len",
                                                                                  "hidden", "channels")}
        print(f"sm_{r['arch']} {r['kernel']:<36} {status}  {sizes} {r['options']}")
    found = problems(results)
    for line in found:
        print("PROBLEM:", line, file=sys.stderr)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
