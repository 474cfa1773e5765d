"""Start one process per device (or run in-process for a single one) with torch.distributed."""
from __future__ import annotations

import datetime
import logging
import os
import socket
from typing import Any, Callable, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..utils import comm

__all__ = ["launch", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


def _find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: Optional[str] = None,
    args: Sequence[Any] = (),
    timeout: datetime.timedelta = DEFAULT_TIMEOUT,
) -> None:
    """Run ``main_func(*args)`` in ``num_gpus_per_machine`` processes on each of
    ``num_machines`` machines, joined in one process group (NCCL on CUDA, gloo on CPU).

    Args:
        num_gpus_per_machine: processes on this machine (on a CPU machine: gloo processes).
        dist_url: ``tcp://host:port`` of machine 0; ``"auto"`` picks a free local port
            (single machine only).
        timeout: collective timeout.
    With one process in total, ``main_func`` runs in this process without a process group.
    """
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url in (None, "auto"):
        if num_machines > 1:
            raise ValueError("dist_url='auto' works on one machine only; pass --dist-url tcp://<machine0>:<port>.")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    mp.start_processes(
        _distributed_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, tuple(args), timeout),
        daemon=False,
        start_method="spawn",
    )


def _distributed_worker(
    local_rank: int,
    main_func: Callable[..., Any],
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: datetime.timedelta,
) -> None:
    use_cuda = torch.cuda.is_available()
    if use_cuda and num_gpus_per_machine > torch.cuda.device_count():
        raise RuntimeError(
            f"--num-gpus {num_gpus_per_machine} but only {torch.cuda.device_count()} CUDA devices are visible."
        )
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    backend = "nccl" if use_cuda else "gloo"
    try:
        dist.init_process_group(
            backend=backend, init_method=dist_url, world_size=world_size, rank=global_rank, timeout=timeout
        )
    except Exception as e:
        logging.getLogger(__name__).error(f"Process group initialisation failed with url {dist_url}: {e}")
        raise
    num_machines = world_size // num_gpus_per_machine
    for i in range(num_machines):
        ranks = list(range(i * num_gpus_per_machine, (i + 1) * num_gpus_per_machine))
        group = dist.new_group(ranks)
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    if use_cuda:
        torch.cuda.set_device(local_rank)
    os.environ.setdefault("LOCAL_RANK", str(local_rank))
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()
