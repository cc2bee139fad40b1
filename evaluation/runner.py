"""Runners of evaluation jobs on this machine: each job drives one launch file over a contiguous seed range,
as a real multi-process stack (`nodes.launch`, `run_multiprocess`) or composed in one process (`run_inprocess`),
and returns its recording. evaluation/ray_eval.py runs the same jobs as Ray tasks.

A multi-process job's progress is the launcher's progress file (`launch --progress PATH`, one JSON line per
ended episode), read as it grows; its console output goes to launch.log in the job's folder. An in-process job
writes the same file itself from the sim's episode ends, so both runners count episodes as they end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nodes.runtime.launchfile import load_plan, resolve_path

PROGRESS_FILE = "progress.jsonl"  # in a job's folder: the launcher's record of each ended episode
POLL_S = 0.5  # [s] between looks at the jobs' progress files


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


def launch_args(job: Job) -> list[str]:
    """The job's launch args as typed on a command line (`episodes:=5`), the ones its launch file takes."""
    args = {**job.overrides, "episodes": job.episodes, "seed": job.seed, "record": True, "gui": False}
    return [f"{k}:={_format(v)}" for k, v in known_overrides(job.config, args).items()]


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


class ProgressReader:
    """Reads a launcher's progress file as it grows: the episode records whose line is whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0  # [bytes] read up to here: the end of the last whole line
        self.records: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        """The records written since the last call (none while the file does not exist yet)."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next call
        self.offset += len(whole)
        new = [json.loads(line) for line in whole.splitlines() if line.strip()]
        self.records += new
        return new


def run_multiprocess(jobs: list[Job], progress: tqdm) -> list[Path]:
    """Start every job's `launch` at once; count each ended episode on `progress`; return their recordings."""
    procs = []
    for job in jobs:
        job.workdir.mkdir(parents=True, exist_ok=True)
        reader = ProgressReader((job.workdir / PROGRESS_FILE).resolve())  # the launch runs in the job's folder
        reader.path.unlink(missing_ok=True)  # an earlier run's records are not this one's
        cmd = [sys.executable, "-m", "nodes.launch", str(resolve_path(job.config)), "--progress", str(reader.path),
               *launch_args(job)]
        env = dict(os.environ, NO_COLOR="1", PYTHONUNBUFFERED="1")
        with open(job.workdir / "launch.log", "w") as log:
            proc = subprocess.Popen(cmd, cwd=job.workdir, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
        procs.append((job, proc, reader))
    running = [proc for _, proc, _ in procs]
    while running:
        time.sleep(POLL_S)
        running = [proc for proc in running if proc.poll() is None]
        for _, _, reader in procs:
            if new := reader.poll():
                progress.update(len(new))
    recordings = []
    for job, proc, _ in procs:
        code = proc.wait()
        if code != 0:
            tail = (job.workdir / "launch.log").read_text().splitlines()[-15:]
            raise RuntimeError(f"{job.config} (seeds {job.seed}..{job.seed + job.episodes - 1}) failed with exit "
                               f"{code}; see {job.workdir / 'launch.log'}:\n" + "\n".join(tail))
        found = sorted(job.workdir.glob("runs/*/recording.mcap"))
        if not found:
            raise RuntimeError(f"{job.config}: no recording in {job.workdir} (does it have a recorder node?)")
        recordings.append(found[-1])
    return recordings


def run_inprocess_job(job: Job, on_episode_end: Callable[[], None] | None = None) -> Path:
    """The same launch file's nodes composed in one process, recorded like the recorder node would; each ended
    episode is a line of the job's progress file, as the launcher writes it, and a call of `on_episode_end`."""
    from msgs import EpisodeEvent
    from nodes.runtime.local import LocalStack
    from nodes.runtime.mcap_io import RecordingWriter

    overrides = known_overrides(job.config, {**job.overrides, "episodes": job.episodes, "seed": job.seed,
                                              "record": False, "gui": False})
    plan = load_plan(job.config, overrides)
    job.workdir.mkdir(parents=True, exist_ok=True)
    path = job.workdir / "recording.mcap"
    writer = RecordingWriter(path)
    progress = job.workdir / PROGRESS_FILE
    progress.write_text("")
    stack = LocalStack.from_plan(plan)

    def observe(topic: str, msg: Any) -> None:
        writer.write(topic, msg, time.time_ns())
        if isinstance(msg, EpisodeEvent) and msg.kind == "end":
            with progress.open("a") as f:
                f.write(json.dumps({"seed": msg.seed, "reason": msg.reason}) + "\n")
            if on_episode_end is not None:
                on_episode_end()

    stack.observers.append(observe)
    stack.run()
    writer.finish()
    return path


def run_inprocess(jobs: list[Job], progress: tqdm) -> list[Path]:
    """Each job in a process of its own (one job: in this one); count each ended episode on `progress`."""
    readers = []
    for job in jobs:
        reader = ProgressReader(job.workdir / PROGRESS_FILE)
        reader.path.unlink(missing_ok=True)  # an earlier run's records are not this one's
        readers.append(reader)
    if len(jobs) == 1:  # counted as each episode ends, not when the job is done
        return [run_inprocess_job(jobs[0], on_episode_end=lambda: progress.update(1))]
    with ProcessPoolExecutor(max_workers=len(jobs)) as pool:
        futures = [pool.submit(run_inprocess_job, job) for job in jobs]
        pending = set(futures)
        while pending:
            pending = wait(pending, timeout=POLL_S).not_done
            for reader in readers:
                if new := reader.poll():
                    progress.update(len(new))
        return [fut.result() for fut in futures]
