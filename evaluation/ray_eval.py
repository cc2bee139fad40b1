"""`drivestack evaluate --ray [ADDRESS]`: seed chunks of an evaluation become Ray tasks.

Each task drives its contiguous seed range with the same multi-process `launch` a local run uses, in a fresh
temporary folder (so its own ipc namespace) on whichever machine Ray picks, and returns the recording's bytes.
The driver writes every recording where a local run would have put it, so the report, `--recordings` and
replay work the same; the per-episode metrics are computed from the recordings on the driver.

Without ADDRESS a local Ray instance is started with `--jobs` CPUs (all CPUs if `--jobs` is not given); with
ADDRESS (`auto`, `ray://HOST:10001`, `HOST:6379`) the tasks go to that cluster, whose every machine needs
drivestack installed (`pip install "drivestack[ray]"`, the same version). If Ray was already initialised in
this process (`ray.init(...)` from Python), that instance is used as is.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evaluation.runner import Job, run_multiprocess

INSTALL_HINT = 'Ray is an optional extra: pip install "drivestack[ray]"'


class RayUnavailable(RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


@contextmanager
def ray_session(address: str | None, cpus: int | None) -> Iterator[int]:
    """Connect to (or start) Ray for the block; yield the CPUs it offers. Shuts down only what it started."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(INSTALL_HINT) from exc
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.WARNING}
        if address:
            kwargs["address"] = address
        elif cpus:
            kwargs["num_cpus"] = cpus
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayUnavailable(f"cannot reach Ray at {address or 'a new local instance'}: {exc}") from exc
        started = True
    try:
        yield max(1, int(ray.cluster_resources().get("CPU", 1)))
    finally:
        if started:
            ray.shutdown()


def chunk_count(episodes: int, cpus: int, chunk: int | None) -> int:
    """Tasks for `episodes`: `chunk` episodes each if given, else two waves over the CPUs (load balance)."""
    per_task = chunk if chunk and chunk > 0 else max(1, math.ceil(episodes / (2 * cpus)))
    return max(1, math.ceil(episodes / per_task))


def drive_chunk(job: Job) -> tuple[bytes, str]:
    """Ray task body: drive `job`'s seeds in a temporary folder here; return (recording bytes, host name)."""
    with tempfile.TemporaryDirectory(prefix="drivestack-ray-") as tmp:
        local = dataclasses.replace(job, workdir=Path(tmp))
        with tqdm(total=job.episodes, disable=True) as quiet:
            [path] = run_multiprocess([local], quiet)
        return path.read_bytes(), socket.gethostname()


def _portable(job: Job) -> Job:
    """A launch file in the current folder by absolute path (a worker's folder differs); a name in the
    package's launch/ stays a name, found in each worker's own install."""
    path = Path(job.config)
    return dataclasses.replace(job, config=str(path.resolve())) if path.is_file() else job


def run_ray(jobs: list[Job], progress: tqdm, hosts: dict[str, int]) -> list[Path]:
    """Run every job as a Ray task (inside `ray_session`); return their recordings. `hosts` counts the
    episodes each machine drove."""
    import ray

    task = ray.remote(num_cpus=1)(drive_chunk)
    pending = {task.remote(_portable(job)): job for job in jobs}
    paths: dict[int, Path] = {}
    waiting = list(pending)
    while waiting:
        done, waiting = ray.wait(waiting, num_returns=1)
        job = pending[done[0]]
        try:
            data, host = ray.get(done[0])
        except ray.exceptions.RayTaskError as exc:
            for ref in waiting:
                ray.cancel(ref, force=True)
            raise RuntimeError(f"Ray task for {job.config} seeds {job.seed}..{job.seed + job.episodes - 1} "
                               f"failed: {exc.cause if exc.cause is not None else exc}") from exc
        job.workdir.mkdir(parents=True, exist_ok=True)
        path = job.workdir / "recording.mcap"
        path.write_bytes(data)
        paths[id(job)] = path
        hosts[host] = hosts.get(host, 0) + job.episodes
        progress.update(job.episodes)
    return [paths[id(job)] for job in jobs]
