"""The local multi-process runner: episodes counted from the launchers' progress files, args built once."""

from __future__ import annotations

import io
import json

from tqdm import tqdm

from evaluation.runner import Job, ProgressReader, launch_args, run_inprocess, run_multiprocess
from tests.conftest import _env


def test_progress_reader_takes_whole_lines_only(tmp_path):
    path = tmp_path / "progress.jsonl"
    reader = ProgressReader(path)
    assert reader.poll() == []  # not written yet
    path.write_text('{"episode": 0, "seed": 5}\n{"episode": 1, "se')
    assert reader.poll() == [{"episode": 0, "seed": 5}]
    assert reader.poll() == []  # the half line waits
    with path.open("a") as f:
        f.write('ed": 6}\n')
    assert reader.poll() == [{"episode": 1, "seed": 6}]
    assert [r["seed"] for r in reader.records] == [5, 6]


def test_launch_args_are_typed_once_and_only_the_files_own(tmp_path):
    job = Job("full_stack.yaml", seed=40, episodes=3, workdir=tmp_path,
              overrides={"perception": "gt", "duration": 2.5, "no_such_arg": 1})
    assert launch_args(job) == ["perception:=gt", "duration:=2.5", "episodes:=3", "seed:=40", "record:=true",
                                "gui:=false"]


def test_progress_bar_counts_the_episodes_of_every_job(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", _env(None)["PYTHONPATH"])  # the launches import this tree
    jobs = [Job("demo.yaml", seed=0, episodes=3, workdir=tmp_path / "job0", overrides={"ticks": 30}),
            Job("demo.yaml", seed=3, episodes=2, workdir=tmp_path / "job1", overrides={"ticks": 30})]
    with tqdm(total=5, file=io.StringIO()) as progress:
        recordings = run_multiprocess(jobs, progress)
        assert progress.n == 5
    assert [r.parent.parent.parent for r in recordings] == [tmp_path / "job0", tmp_path / "job1"]
    for job in jobs:
        records = [json.loads(line) for line in (job.workdir / "progress.jsonl").read_text().splitlines()]
        assert [r["episode"] for r in records] == list(range(job.episodes))
        assert "[launch] done" in (job.workdir / "launch.log").read_text()


def test_inprocess_jobs_count_their_episodes_as_they_end(tmp_path):
    jobs = [Job("demo.yaml", seed=0, episodes=3, workdir=tmp_path / "job0", overrides={"ticks": 30}),
            Job("demo.yaml", seed=3, episodes=2, workdir=tmp_path / "job1", overrides={"ticks": 30})]
    (tmp_path / "job1").mkdir()
    (tmp_path / "job1" / "progress.jsonl").write_text('{"seed": 99, "reason": "old run"}\n')  # not this run's
    with tqdm(total=5, file=io.StringIO()) as progress:
        recordings = run_inprocess(jobs, progress)
        assert progress.n == 5
    assert recordings == [tmp_path / "job0" / "recording.mcap", tmp_path / "job1" / "recording.mcap"]
    for job in jobs:
        records = [json.loads(line) for line in (job.workdir / "progress.jsonl").read_text().splitlines()]
        # one record per ended episode of this run (the demo ticker numbers its episodes from 0: it has no seed)
        assert [r["seed"] for r in records] == list(range(job.episodes))
        assert all(r["reason"] for r in records)
    lines_at_update = []

    class Watched(tqdm):
        def update(self, n=1):
            lines_at_update.append(len((jobs[0].workdir / "progress.jsonl").read_text().splitlines()))
            return super().update(n)

    with Watched(total=3, file=io.StringIO()) as progress:  # one job runs in this process, counted all the same
        run_inprocess(jobs[:1], progress)
        assert progress.n == 3
    assert lines_at_update == [1, 2, 3]  # each episode counted as it ended, not all three once the job was done
