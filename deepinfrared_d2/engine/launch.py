"""Multi-process / multi-machine launcher that also works without GPUs.

Detectron2 v0.6's ``launch`` hard-codes NCCL and asserts CUDA. This one keeps its signature
and semantics but picks the ``gloo`` backend when CUDA is unavailable, so
``--num-gpus N`` means "N processes" on a CPU-only machine.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Callable, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine.launch import _find_free_port
from detectron2.utils import comm

DEFAULT_TIMEOUT = timedelta(minutes=30)


def default_backend() -> str:
    """'nccl' when CUDA is available, else 'gloo'."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def launch(
    main_func: Callable,
    num_procs_per_machine: int,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: Optional[str] = None,
    args: tuple = (),
    backend: Optional[str] = None,
    timeout: timedelta = DEFAULT_TIMEOUT,
) -> None:
    """Run ``main_func(*args)`` in ``num_procs_per_machine`` processes on each machine.

    Args:
        num_procs_per_machine: processes on this machine (one per GPU, or CPU workers).
        dist_url: e.g. "tcp://127.0.0.1:8686"; "auto" picks a free local port (1 machine).
        backend: "nccl" or "gloo"; default: nccl with CUDA, else gloo.
    """
    world_size = num_machines * num_procs_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("dist_url=auto is only supported on a single machine")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    backend = backend or default_backend()
    mp.spawn(
        _worker,
        nprocs=num_procs_per_machine,
        args=(main_func, world_size, num_procs_per_machine, machine_rank, dist_url, args,
              backend, timeout),
        daemon=False,
    )


def _worker(local_rank, main_func, world_size, procs_per_machine, machine_rank, dist_url, args,
            backend, timeout):
    global_rank = machine_rank * procs_per_machine + local_rank
    try:
        dist.init_process_group(backend=backend, init_method=dist_url, world_size=world_size,
                                rank=global_rank, timeout=timeout)
    except Exception:
        logging.getLogger(__name__).error("Process group URL: %s", dist_url)
        raise
    num_machines = world_size // procs_per_machine
    for i in range(num_machines):
        group = dist.new_group(list(range(i * procs_per_machine, (i + 1) * procs_per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    if backend == "nccl":
        if procs_per_machine > torch.cuda.device_count():
            raise RuntimeError(f"{procs_per_machine} processes but only "
                               f"{torch.cuda.device_count()} GPUs on this machine")
        torch.cuda.set_device(local_rank)
    else:
        # Share the cores instead of oversubscribing them.
        torch.set_num_threads(max(1, torch.get_num_threads() // procs_per_machine))
    try:
        comm.synchronize()
        main_func(*args)
    finally:
        # Left to interpreter exit, gloo's threads can still be running when their C++
        # destructors run, which aborts the process ("terminate called without an active
        # exception") after main_func has succeeded.
        dist.destroy_process_group()
