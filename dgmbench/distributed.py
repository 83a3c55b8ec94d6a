"""Multi-process scoring through ``torch.distributed`` (launched by ``torchrun``).

``torchrun --nproc_per_node=K -m dgmbench score ...`` starts K processes with RANK,
WORLD_SIZE and MASTER_ADDR/PORT set; :func:`init_from_env` joins them into one group
(gloo on CPU, NCCL on CUDA). Work is split into fixed-size *chunks* of samples; chunk i
is always drawn with a generator seeded from (seed, i), so the samples, and therefore every
metric, are the same whatever the number of processes. Each rank samples and extracts
features for its chunks; the float64 streaming statistics are all-reduced (FID) and the
per-sample features are gathered in chunk order (KID, precision/recall) so rank 0 computes
exactly what a single process computes and writes the one Record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import UsageError


@dataclass(frozen=True)
class Chunk:
    """Samples [start, stop) of a run, drawn with the generator seeded by ``chunk_seed``."""

    index: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


def chunk_seed(seed: int, index: int) -> int:
    """Seed of chunk ``index`` of a run with ``seed`` (stable across versions and world sizes)."""
    return (int(seed) * 1_000_003 + int(index) * 7_919 + 12_345) % (2**63 - 1)


def chunk_generator(seed: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed(chunk_seed(seed, index))


def plan_chunks(n: int, chunk_size: int, rank: int = 0, world_size: int = 1) -> list[Chunk]:
    """This rank's chunks: chunk i goes to rank i mod world_size (balanced, in order)."""
    if chunk_size < 1:
        raise UsageError(f"chunk size must be >= 1, got {chunk_size}")
    chunks = [Chunk(i, s, min(s + chunk_size, n)) for i, s in enumerate(range(0, n, chunk_size))]
    return [c for c in chunks if c.index % world_size == rank]


def is_initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if is_initialized() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_env(device: str | torch.device = "cpu") -> bool:
    """Join the process group torchrun describes in the environment; return whether distributed.

    Backend: NCCL when ``device`` is CUDA, gloo otherwise. Each rank uses cuda:LOCAL_RANK.
    """
    if is_initialized():
        return True
    if not launched_by_torchrun():
        return False
    dev = torch.device(device)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if dev.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend=backend)
    return True


def local_device(device: str | torch.device) -> torch.device:
    """The device this rank uses: cuda:LOCAL_RANK under torchrun on CUDA, else ``device``."""
    dev = torch.device(device)
    if dev.type == "cuda" and is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


def _comm_device() -> torch.device:
    if is_initialized() and torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_rows(local: torch.Tensor, n_total: int, chunk_size: int) -> torch.Tensor:
    """All-gather per-sample rows (features) from every rank back into sample order.

    ``local`` holds this rank's rows for its chunks (:func:`plan_chunks` with the same
    ``n_total`` and ``chunk_size``) concatenated in order. Returns, on every rank and on the
    CPU, the ``n_total`` rows in the order a single process produces them.
    """
    if not is_initialized():
        return local
    dev = _comm_device()
    ws = world_size()
    sizes = [torch.zeros(1, dtype=torch.int64, device=dev) for _ in range(ws)]
    torch.distributed.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.int64, device=dev))
    max_rows = max(int(s) for s in sizes)
    padded = torch.zeros((max_rows, *local.shape[1:]), dtype=local.dtype, device=dev)
    padded[: local.shape[0]] = local.to(dev)
    parts = [torch.zeros_like(padded) for _ in range(ws)]
    torch.distributed.all_gather(parts, padded)
    out = torch.empty((n_total, *local.shape[1:]), dtype=local.dtype)
    for r in range(ws):
        rows = parts[r][: int(sizes[r])].cpu()
        offset = 0
        for c in plan_chunks(n_total, chunk_size, r, ws):
            out[c.start:c.stop] = rows[offset:offset + len(c)]
            offset += len(c)
    return out


def broadcast_object(obj, src: int = 0):
    """Send a picklable object from ``src`` to every rank (identity when not distributed)."""
    if not is_initialized():
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=src)
    return box[0]


def barrier() -> None:
    if is_initialized():
        torch.distributed.barrier()


def shutdown() -> None:
    if is_initialized():
        torch.distributed.destroy_process_group()
