"""Runners of evaluation jobs on this machine: each job drives one launch file over a contiguous seed range,
as a real multi-process stack (`nodes.launch`, `run_multiprocess`) or composed in one process (`run_inprocess`),
and returns its recording. evaluation/ray_eval.py runs the same jobs as Ray tasks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nodes.runtime.launchfile import load_plan, parse_overrides, resolve_path

EPISODE_LINE = re.compile(r"\[launch\] episode (\d+) \(seed (\d+)\) ended")


@dataclass(frozen=True)
class Job:
    config: str  # launch file as given
    seed: int  # seed of the job's first episode
    episodes: int
    workdir: Path
    overrides: dict[str, Any]


def split_seeds(seed: int, episodes: int, jobs: int) -> list[tuple[int, int]]:
    """(first seed, episodes) per job: contiguous seed ranges covering seed .. seed + episodes - 1."""
    jobs = max(1, min(jobs, episodes))
    base, extra = divmod(episodes, jobs)
    out, next_seed = [], seed
    for j in range(jobs):
        n = base + (j < extra)
        out.append((next_seed, n))
        next_seed += n
    return out


def _job_args(job: Job) -> list[str]:
    args = {**job.overrides, "episodes": job.episodes, "seed": job.seed, "record": True, "gui": False}
    return [f"{k}:={_format(v)}" for k, v in args.items()]


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(map(str, value)) + "]"
    return str(value)


def known_overrides(config: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Drop args a launch file does not take (e.g. gui:= on a baseline without a viewer)."""
    plan_args = set(load_plan(config, {}).args)
    return {k: v for k, v in overrides.items() if k in plan_args}


def run_multiprocess(jobs: list[Job], progress: tqdm) -> list[Path]:
    """Start every job's `launch` at once; return their recordings."""
    procs = []
    for job in jobs:
        job.workdir.mkdir(parents=True, exist_ok=True)
        overrides = known_overrides(job.config, dict(_parse(_job_args(job))))
        cmd = [sys.executable, "-m", "nodes.launch", str(resolve_path(job.config)),
               *[f"{k}:={_format(v)}" for k, v in overrides.items()]]
        log = open(job.workdir / "launch.log", "w")  # noqa: SIM115 - closed below
        env = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1")
        procs.append((job, subprocess.Popen(cmd, cwd=job.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True, env=env), log))
    import selectors

    sel = selectors.DefaultSelector()
    for job, proc, log in procs:
        sel.register(proc.stdout, selectors.EVENT_READ, (job, proc, log))
    open_streams = len(procs)
    while open_streams:
        for key, _ in sel.select(timeout=1.0):
            job, proc, log = key.data
            line = key.fileobj.readline()
            if not line:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            log.write(line)
            if EPISODE_LINE.search(line):
                progress.update(1)
    recordings = []
    for job, proc, log in procs:
        code = proc.wait()
        log.close()
        if code != 0:
            tail = (job.workdir / "launch.log").read_text().splitlines()[-15:]
            raise RuntimeError(f"{job.config} (seeds {job.seed}..{job.seed + job.episodes - 1}) failed with exit "
                               f"{code}; see {job.workdir / 'launch.log'}:\n" + "\n".join(tail))
        found = sorted(job.workdir.glob("runs/*/recording.mcap"))
        if not found:
            raise RuntimeError(f"{job.config}: no recording in {job.workdir} (does it have a recorder node?)")
        recordings.append(found[-1])
    return recordings


def _parse(items: list[str]) -> dict[str, Any]:
    return parse_overrides(items)


def run_inprocess_job(job: Job) -> Path:
    """The same launch file's nodes composed in one process, recorded like the recorder node would."""
    from nodes.runtime.local import LocalStack
    from nodes.runtime.mcap_io import RecordingWriter

    overrides = known_overrides(job.config, {**job.overrides, "episodes": job.episodes, "seed": job.seed,
                                              "record": False, "gui": False})
    plan = load_plan(job.config, overrides)
    job.workdir.mkdir(parents=True, exist_ok=True)
    path = job.workdir / "recording.mcap"
    writer = RecordingWriter(path)
    stack = LocalStack.from_plan(plan)
    stack.observers.append(lambda topic, msg: writer.write(topic, msg, time.time_ns()))
    stack.run()
    writer.finish()
    return path


def run_inprocess(jobs: list[Job], progress: tqdm) -> list[Path]:
    if len(jobs) == 1:
        path = run_inprocess_job(jobs[0])
        progress.update(jobs[0].episodes)
        return [path]
    with ProcessPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(run_inprocess_job, job) for job in jobs]
        paths = []
        for job, fut in zip(jobs, futures, strict=True):
            paths.append(fut.result())
            progress.update(job.episodes)
        return paths
