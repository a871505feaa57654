"""Process-group setup for ``torchrun`` (NCCL on GPUs, Gloo on CPUs) and small helpers."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Runtime:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup(device_choice: str) -> Runtime:
    """Join the process group when started by torchrun; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_choice == "auto":
        device_choice = "cuda" if torch.cuda.is_available() else "cpu"
    if device_choice == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available to this torch build")
        device = torch.device("cuda", local_rank if world_size > 1 else torch.cuda.current_device())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Runtime(rank, world_size, device)


def all_gather_objects(obj, runtime: Runtime) -> list:
    if not runtime.distributed:
        return [obj]
    gathered = [None] * runtime.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()


def teardown(runtime: Runtime) -> None:
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()
