"""Start the processes of a (multi-machine) job with torch.distributed.

Three ways in, one code path after the process group exists:

- ``launch(main, num_gpus_per_machine, ...)`` spawns one process per device on this machine
  (NCCL on CUDA, gloo on CPU) and joins them with the other machines at ``dist_url``;
- under ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` set)
  the current process *is* one rank: it joins the group through the environment;
- under SLURM with one task per device (``srun``; ``SLURM_PROCID``/``SLURM_NTASKS``/
  ``SLURM_LOCALID``/``SLURM_JOB_NODELIST``), the same, with the master host taken from the
  node list.

If one process fails, the others are stopped: on one machine the parent terminates the
remaining workers; across machines the collective timeout bounds the wait.
"""
from __future__ import annotations

import datetime
import logging
import os
import pickle
import re
import socket
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..utils import comm

__all__ = ["launch", "DEFAULT_TIMEOUT", "first_host_of_slurm_nodelist"]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
logger = logging.getLogger(__name__)


def _find_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_host_of_slurm_nodelist(nodelist: str) -> str:
    """The first host of a SLURM node list: ``"gpu[03-05,09],cpu1"`` → ``"gpu03"``."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not match:
        raise ValueError(f"Cannot parse SLURM node list '{nodelist}'.")
    prefix, ranges = match.group(1), match.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _env_rank_info() -> Optional[Tuple[int, int, int, int]]:
    """``(rank, world_size, local_rank, local_world_size)`` from torchrun or SLURM, else None."""
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun / torch.distributed.run
        world = int(env["WORLD_SIZE"])
        return int(env["RANK"]), world, int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE", world))
    if "SLURM_PROCID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        world = int(env["SLURM_NTASKS"])
        local_world = int(env.get("SLURM_NTASKS_PER_NODE", env.get("SLURM_TASKS_PER_NODE", str(world))).split("(")[0])
        env.setdefault("MASTER_ADDR", first_host_of_slurm_nodelist(env.get("SLURM_JOB_NODELIST", "127.0.0.1")))
        env.setdefault("MASTER_PORT", "29500")
        return int(env["SLURM_PROCID"]), world, int(env.get("SLURM_LOCALID", 0)), local_world
    return None


def launch(
    main_func: Callable[..., Any],
    num_gpus_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: Optional[str] = None,
    args: Sequence[Any] = (),
    timeout: datetime.timedelta = DEFAULT_TIMEOUT,
) -> None:
    """Run ``main_func(*args)`` on every rank of the job.

    Args:
        num_gpus_per_machine: processes to start on this machine (gloo processes on a CPU
            machine). Ignored under torchrun/SLURM, which start the processes themselves.
        num_machines, machine_rank: the machines of the job and this one's index.
        dist_url: ``tcp://<machine 0 host>:<port>``, or ``"auto"``/None for a free local port
            (single machine only).
        timeout: how long a collective may wait for the other ranks before failing.
    With a single process in total, ``main_func`` runs here without a process group.
    """
    env_info = _env_rank_info()
    if env_info is not None:
        rank, world_size, local_rank, local_world_size = env_info
        _init_and_run(main_func, args, "env://", world_size, rank, local_rank, local_world_size, timeout)
        return
    world_size = num_machines * num_gpus_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url in (None, "auto"):
        if num_machines > 1:
            raise ValueError("dist_url 'auto' works on one machine only; pass --dist-url tcp://<machine0 host>:<port>.")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    if num_machines > 1 and dist_url.startswith("file://"):
        logger.warning("file:// init with several machines needs a shared file system.")
    mp.start_processes(
        _spawned_worker,
        nprocs=num_gpus_per_machine,
        args=(main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, tuple(args), timeout,
              _picklable_registrations()),
        daemon=False,
        start_method="spawn",
    )


def _picklable_registrations() -> Dict[str, Any]:
    """Datasets registered in this (parent) process, to re-register in spawned workers.

    Loader callables that cannot be pickled (lambdas, local functions) cannot travel; their
    names are passed so that asking for them in a worker explains what to do.
    """
    from ..data.catalog import DatasetCatalog, MetadataCatalog

    loaders, unpicklable = {}, []
    for name, func in DatasetCatalog.items():
        try:
            pickle.dumps(func)
            loaders[name] = func
        except Exception:
            unpicklable.append(name)
    metadata = {}
    for name, meta in MetadataCatalog.items():
        try:
            pickle.dumps(meta.as_dict())
            metadata[name] = meta.as_dict()
        except Exception:
            pass
    return {"loaders": loaders, "unpicklable": unpicklable, "metadata": metadata}


def _restore_registrations(registrations: Dict[str, Any]) -> None:
    from ..data.catalog import DatasetCatalog, MetadataCatalog

    for name, func in registrations["loaders"].items():
        if name not in DatasetCatalog:
            DatasetCatalog.register(name, func)
    DatasetCatalog.parent_only_names.update(n for n in registrations["unpicklable"] if n not in DatasetCatalog)
    for name, fields in registrations["metadata"].items():
        meta = MetadataCatalog.get(name)
        for key, value in fields.items():
            if key != "name" and meta.get(key) is None:
                setattr(meta, key, value)


def _spawned_worker(
    local_rank: int,
    main_func: Callable[..., Any],
    world_size: int,
    num_gpus_per_machine: int,
    machine_rank: int,
    dist_url: str,
    args: tuple,
    timeout: datetime.timedelta,
    registrations: Dict[str, Any],
) -> None:
    _restore_registrations(registrations)
    rank = machine_rank * num_gpus_per_machine + local_rank
    _init_and_run(main_func, args, dist_url, world_size, rank, local_rank, num_gpus_per_machine, timeout)


def _init_and_run(
    main_func: Callable[..., Any],
    args: Sequence[Any],
    init_method: str,
    world_size: int,
    rank: int,
    local_rank: int,
    local_world_size: int,
    timeout: datetime.timedelta,
) -> None:
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"Local rank {local_rank} needs a GPU but only {torch.cuda.device_count()} are visible; "
                f"lower --num-gpus (or --nproc_per_node)."
            )
        torch.cuda.set_device(local_rank)
    backend = "nccl" if use_cuda else "gloo"
    try:
        dist.init_process_group(backend=backend, init_method=init_method, world_size=world_size, rank=rank,
                                timeout=timeout)
    except Exception as e:
        raise RuntimeError(
            f"Rank {rank}/{world_size} could not join the process group at {init_method} ({backend}): {e}. "
            f"Check that every machine uses the same --dist-url, that its port is reachable, and that "
            f"--num-machines/--machine-rank are right."
        ) from e
    if world_size % local_world_size != 0:
        raise RuntimeError(f"World size {world_size} is not a multiple of the processes per machine {local_world_size}.")
    for machine in range(world_size // local_world_size):
        ranks = list(range(machine * local_world_size, (machine + 1) * local_world_size))
        group = dist.new_group(ranks)
        if rank in ranks:
            comm.set_local_process_group(group)
    os.environ["LOCAL_RANK"] = str(local_rank)
    comm.synchronize()
    main_func(*args)
    # Only after success: tearing the group down while other ranks wait in a collective can
    # block, and a failing rank must exit at once so the launcher stops the others.
    dist.destroy_process_group()
