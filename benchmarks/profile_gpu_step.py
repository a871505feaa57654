"""Where a Triton-backend training step spends its GPU time (top kernels), per published setting.

    python benchmarks/profile_gpu_step.py     (CUDA only; prints two tables)
"""

import torch
from torch.profiler import ProfilerActivity, profile

import asrec
from asrec.bench.cases import random_batch
from asrec.bench.settings import SETTINGS


def main():
    for name, config in SETTINGS.items():
        model = asrec.ASRecModel(**config).cuda().train()
        items, lengths, targets = random_batch(256, config["max_seq_length"], config["n_items"], "cuda",
                                               torch.Generator().manual_seed(0))
        for backend in ("triton", "reference"):
            with asrec.use_backend(backend):
                for _ in range(3):
                    model.loss(items, lengths, targets).backward()
                torch.cuda.synchronize()
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    for _ in range(3):
                        model.loss(items, lengths, targets).backward()
                    torch.cuda.synchronize()
            print(f"== {name} train step, backend {backend}, 3 steps ==")
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))


if __name__ == "__main__":
    main()
