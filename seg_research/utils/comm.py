"""Process-group helpers. They work (as no-ops) when torch.distributed is not initialised."""
from __future__ import annotations

from typing import Any, List, Optional

import torch
import torch.distributed as dist

__all__ = [
    "get_world_size", "get_rank", "get_local_rank", "get_local_size", "is_main_process",
    "synchronize", "all_gather", "gather", "reduce_dict", "shared_random_seed", "set_local_process_group",
    "unwrap_model",
]

# Set by engine.launch (set_local_process_group): the process group of the processes on this machine.
# The name is detectron2's, which some user code reads.
_LOCAL_PROCESS_GROUP: Optional[dist.ProcessGroup] = None


def set_local_process_group(group: Optional[dist.ProcessGroup]) -> None:
    """Make ``group`` (the processes on this machine) the group of :func:`get_local_rank` and
    :func:`get_local_size`; ``engine.launch`` calls it once per process after creating the groups."""
    global _LOCAL_PROCESS_GROUP
    _LOCAL_PROCESS_GROUP = group


def _ready() -> bool:
    return dist.is_available() and dist.is_initialized()


def get_world_size() -> int:
    return dist.get_world_size() if _ready() else 1


def get_rank() -> int:
    return dist.get_rank() if _ready() else 0


def get_local_rank() -> int:
    if not _ready() or _LOCAL_PROCESS_GROUP is None:
        return 0
    return dist.get_rank(group=_LOCAL_PROCESS_GROUP)


def get_local_size() -> int:
    if not _ready() or _LOCAL_PROCESS_GROUP is None:
        return 1
    return dist.get_world_size(group=_LOCAL_PROCESS_GROUP)


def is_main_process() -> bool:
    return get_rank() == 0


def synchronize() -> None:
    """Barrier across all processes (no-op for one process)."""
    if get_world_size() > 1:
        dist.barrier()


def all_gather(data: Any, group: Optional[dist.ProcessGroup] = None) -> List[Any]:
    """Gather a picklable object from every rank; returns a list indexed by rank."""
    if get_world_size() == 1:
        return [data]
    output: List[Any] = [None] * dist.get_world_size(group=group)
    dist.all_gather_object(output, data, group=group)
    return output


def gather(data: Any, dst: int = 0, group: Optional[dist.ProcessGroup] = None) -> List[Any]:
    """Gather a picklable object on rank ``dst``; other ranks get ``[]``."""
    if get_world_size() == 1:
        return [data]
    if dist.get_rank() == dst:
        output: List[Any] = [None] * dist.get_world_size(group=group)
        dist.gather_object(data, output, dst=dst, group=group)
        return output
    dist.gather_object(data, None, dst=dst, group=group)
    return []


def reduce_dict(input_dict: dict, average: bool = True) -> dict:
    """Sum (or average) a dict of scalar tensors over ranks; every rank gets the result."""
    world_size = get_world_size()
    if world_size == 1:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict)
        values = torch.stack([input_dict[k].detach().float() for k in names])
        dist.all_reduce(values)
        if average:
            values /= world_size
        return dict(zip(names, values, strict=True))


def shared_random_seed() -> int:
    """A random integer that is the same on every rank (drawn on each, rank 0's kept)."""
    seed = int(torch.randint(2**31, (1,)).item())
    return all_gather(seed)[0]


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel, else ``model`` itself: what checkpoints, EMA and
    test-time augmentation hold (state_dict keys without ``module.``)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
