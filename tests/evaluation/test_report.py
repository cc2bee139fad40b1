"""The report directory from two small result sets: every file, and what is in it."""

from __future__ import annotations

import csv
import json

import pytest

from evaluation.metrics import episode_metrics
from evaluation.report import format_table, write_report
from evaluation.trace import DT_S, EpisodeTrace
from msgs import EgoState, Header, ObjectArray

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def episode(index: int, speed: float, crash: bool = False, ticks: int = 40) -> EpisodeTrace:
    egos = [EgoState(header=Header(episode=index, tick=k, stamp_ns=k * 1_000_000_000 // 15),
                     x=speed * k * DT_S, y=0.0, heading=0.0, speed=speed, vx=speed, vy=0.0, lane_index=0,
                     lateral_offset=0.1 * (k % 3), reward=0.5, crashed=crash and k == ticks - 1)
            for k in range(ticks)]
    return EpisodeTrace(episode=index, seed=100 + index, end_reason="collision" if crash else "time_limit",
                        ego=egos, objects_gt=[ObjectArray(header=e.header) for e in egos],
                        perception=[None] * ticks, target=[None] * ticks, plan=[None] * ticks,
                        cmd=[None] * ticks, ego_recv_ns=[None] * ticks, cmd_recv_ns=[None] * ticks)


@pytest.fixture
def results() -> dict[str, list[dict]]:
    return {
        "full_stack.yaml": [episode_metrics(episode(i, 20.0 + i), series=True) for i in range(3)],
        "baseline.yaml": [episode_metrics(episode(i, 15.0, crash=i == 0), series=True) for i in range(2)],
    }


def test_report_writes_every_file(tmp_path, results):
    out = tmp_path / "report"
    paths = write_report(out, results, {"seed": 100, "episodes": 3})
    names = {p.name for p in out.iterdir()}
    assert names == {"metrics.json", "episodes.csv", "summary.md", "speed_over_time.png",
                     "lateral_error_over_time.png", "distributions.png", "comparison.png"}
    assert sorted(paths) == sorted(out.iterdir())
    for name in names:
        if name.endswith(".png"):
            data = (out / name).read_bytes()
            assert data[:8] == PNG_MAGIC and len(data) > 5000, name

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"] == "full_stack.yaml"  # the first config's aggregates at the top level
    assert metrics["episodes"] == 3 and metrics["collision_rate"] == 0.0
    assert metrics["mean_speed_mps"] == pytest.approx(21.0)
    assert metrics["meta"] == {"seed": 100, "episodes": 3}
    base = metrics["configs"]["baseline.yaml"]
    assert base["episodes"] == 2 and base["collision_rate"] == 0.5 and base["collisions"] == 1
    assert base["end_reasons"] == {"collision": 1, "time_limit": 1}
    assert base["mean_speed_mps"] == pytest.approx(15.0)

    with open(out / "episodes.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["config"], r["episode"]) for r in rows] == [
        ("full_stack.yaml", "0"), ("full_stack.yaml", "1"), ("full_stack.yaml", "2"),
        ("baseline.yaml", "0"), ("baseline.yaml", "1")]
    assert "series" not in rows[0] and float(rows[1]["mean_speed_mps"]) == pytest.approx(21.0)
    assert rows[3]["collision"] == "True" and rows[3]["override_ratio"] == ""

    summary = (out / "summary.md").read_text()
    table = format_table(results)
    assert table in summary
    assert "![Speed over time](speed_over_time.png)" in summary


def test_table_has_one_row_per_config(results):
    lines = format_table(results).splitlines()
    assert len(lines) == 4  # header, rule, two configs
    assert "collision rate [95% CI]" in lines[0] and "perception P / R" in lines[0]
    full = [c.strip() for c in lines[2].strip("|").split("|")]
    base = [c.strip() for c in lines[3].strip("|").split("|")]
    assert full[:4] == ["full_stack.yaml", "3", "0.00 [0.00, 0.56]", "21.0 [18.5, 23.5]"]
    assert base[:3] == ["baseline.yaml", "2", "0.50 [0.09, 0.91]"]
    assert full[-1] == "-"  # no perception in these runs


def test_rows_without_series_skip_the_time_plots(tmp_path, results):
    bare = {name: [{k: v for k, v in row.items() if k != "series"} for row in rows]
            for name, rows in results.items()}
    paths = write_report(tmp_path, bare, {})
    assert len(paths) == 5 and not (tmp_path / "speed_over_time.png").exists()
    assert (tmp_path / "comparison.png").read_bytes()[:8] == PNG_MAGIC
    assert "no over-time plots" in (tmp_path / "summary.md").read_text()


def test_no_results_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no results"):
        write_report(tmp_path, {}, {})
    with pytest.raises(ValueError, match="no episodes"):
        write_report(tmp_path, {"a.yaml": []}, {})
