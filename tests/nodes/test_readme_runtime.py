"""README claims about the runtime and its tools, each through the real `launch` / `drivestack` programs:
Ctrl-C kills a node that ignores it after the 3 s grace; a tcp endpoint in use is one launch error; the
multi-process runner calls `prepare()` after every publish; `launch --show-args` lists what the file takes;
`topic list` and `topic hz` on a running stack; replay's `--exclude`, `--start-offset` and `--loop`.

The toy nodes these tests need (one that ignores stop signals, one that notes its calls) are written beside a
launch file in the test's directory, the way a user adds their own node (the launcher finds them there)."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from msgs.registry import TOPICS
from nodes.runtime.mcap_io import read_records
from nodes.runtime.supervisor import GRACE_S
from tests.conftest import ROOT, _env, pid_alive, popen_launch, recorded_bodies, run_launch, wait_for

GOLDEN = ROOT / "tests" / "golden" / "golden_stack.mcap"
WAIT_S = 60.0  # [s] for a stack to come up or a run directory to appear: far beyond any start-up, even loaded

STUBBORN = '''
"""The demo's echo node, except that once running it ignores SIGINT and SIGTERM."""
import os
import signal

from nodes.demo.echo import EchoNode


class StubbornNode(EchoNode):
    def start(self):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"ignoring stop signals, pid {os.getpid()}", flush=True)
        return super().start()


NODE = StubbornNode
'''

JOURNAL = '''
"""The demo's echo node, printing each call the runtime makes (start, step, prepare) as it happens."""
from nodes.demo.echo import EchoNode


class JournalNode(EchoNode):
    def start(self):
        print("call start", flush=True)
        return super().start()

    def step(self, inputs):
        print(f"call step {inputs['ego'].header.episode} {inputs['ego'].header.tick}", flush=True)
        return super().step(inputs)

    def prepare(self):
        print("call prepare", flush=True)


NODE = JournalNode
'''


def _stack(tmp_path: Path, module_text: str, module: str, ticks: int, episodes: int = 1) -> Path:
    """A launch file of the demo's ticker and the given node in place of its echo, with the node beside it."""
    (tmp_path / f"{module}.py").write_text(module_text)
    path = tmp_path / "stack.yaml"
    path.write_text(textwrap.dedent(f"""\
        description: the demo ticker and a node of this test
        nodes:
          - name: ticker
            module: nodes.demo.ticker
            required: true
            params: {{ticks: {ticks}, episodes: {episodes}}}
          - name: {module}
            module: {module}
        """))
    return path


def _wait_for(what: str, check, timeout: float = WAIT_S):
    return wait_for(check, timeout, what)


def _log(workdir: Path, node: str) -> str:
    logs = list(workdir.glob(f"runs/*/logs/{node}.log"))
    return logs[0].read_text() if logs else ""


@pytest.mark.slow
def test_ctrl_c_kills_a_node_that_ignores_it_after_the_grace_period(tmp_path):
    """README: "Ctrl-C stops every node (SIGTERM, then SIGKILL after 3 s)"."""
    path = _stack(tmp_path, STUBBORN, "stubborn", ticks=100_000_000)
    proc = popen_launch(str(path), cwd=tmp_path)
    try:
        line = _wait_for("the stubborn node to run", lambda: re.search(r"ignoring stop signals, pid (\d+)",
                                                                        _log(tmp_path, "stubborn")))
        pid = int(line.group(1))
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        # the launcher's own limit is GRACE_S; 120 s only bounds a launcher that never kills (a hang)
        out, _ = proc.communicate(timeout=120)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert f"node 'stubborn' did not stop in {GRACE_S:.0f} s: killing it" in out, out
    assert "node 'ticker' did not stop" not in out  # the ticker stopped on the signal, within its grace
    assert not pid_alive(pid)
    # a lower bound holds on any machine: the launcher waits GRACE_S on its own clock after our Ctrl-C reached it
    assert elapsed >= GRACE_S, f"killed {elapsed:.2f} s after Ctrl-C"


def _free_block(n: int) -> int:
    """A base port with n free tcp ports from it (found by binding them, then let go)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + n >= 65536:
            continue
        held = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise AssertionError("no block of free tcp ports")


def test_an_endpoint_in_use_is_one_launch_error_and_nothing_starts(tmp_path):
    """README: launch-file mistakes, "an endpoint in use" among them, "are one error naming file, node and
    field, and nothing starts". The port held is the fourth of the stack's, so not only the first is probed."""
    launch_file = tmp_path / "tcp.yaml"
    launch_file.write_text("description: the demo over tcp\nbase_port: $(arg base_port)\nargs:\n"
                           "  base_port: {default: 0}\nnodes:\n"
                           "  - {name: ticker, module: nodes.demo.ticker, required: true}\n"
                           "  - {name: echo, module: nodes.demo.echo}\n")
    offset = 3
    base = _free_block(8)
    with socket.socket() as squatter:  # another program holding one of the stack's ports
        squatter.bind(("127.0.0.1", base + offset))
        squatter.listen()
        res = run_launch(str(launch_file), f"base_port:={base}", cwd=tmp_path, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert str(launch_file) in line and "base_port" in line and "change base_port" in line, line
    assert re.search(rf"node '\w+': base_port: endpoint tcp://127\.0\.0\.1:{base + offset} for /\S+ is not "
                     r"available: Address already in use", line), line
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written


def test_the_multi_process_runner_prepares_after_every_start_and_step(tmp_path):
    """README: "The runtime calls Node.prepare() after every publish" (the in-process stack's order is
    tests/nodes/test_prepare.py); here through the launcher and a node process of its own."""
    path = _stack(tmp_path, JOURNAL, "journal", ticks=20, episodes=2)
    res = run_launch(str(path), cwd=tmp_path, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    calls = [line.split()[1:] for line in _log(tmp_path, "journal").splitlines() if line.startswith("call ")]
    kinds = [c[0] for c in calls]
    steps = [(int(c[1]), int(c[2])) for c in calls if c[0] == "step"]
    assert steps == [(e, t) for e in range(2) for t in range(20)]  # every tick of both episodes, once, in order
    assert kinds[:2] == ["start", "prepare"]
    # each start or step is followed by exactly one prepare, before the next step
    assert all(nxt == "prepare" for kind, nxt in zip(kinds, kinds[1:], strict=False) if kind != "prepare")
    assert all(kind != "prepare" for kind, nxt in zip(kinds, kinds[1:], strict=False) if nxt == "prepare")
    assert kinds.count("prepare") == len(steps) + 1


def _shown_args(text: str) -> list[tuple[str, str, str]]:
    return [(m.group(1), m.group(2), m.group(3)) for m in re.finditer(r"^  (\w+):=(\S*) +(.*)$", text, re.M)]


@pytest.mark.parametrize("name", ["full_stack.yaml"])
def test_show_args_lists_every_arg_with_its_default_and_the_pairs_are_accepted_back(name):
    """README: `launch full_stack.yaml --show-args  # what the file takes`: every arg the file declares, in its
    order, with its default, doc and choices, and the printed pairs given back as args pass `--check`."""
    declared = yaml.safe_load((ROOT / "launch" / name).read_text())["args"]
    res = run_launch(name, "--show-args", cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    shown = _shown_args(res.stdout)
    assert [n for n, _, _ in shown] == list(declared)
    for arg, value, doc in shown:
        spec = declared[arg]
        default = spec["default"]
        assert value == (str(default).lower() if isinstance(default, bool) else str(default)), (arg, value)
        assert doc.startswith(spec["doc"]), (arg, doc)
        if "choices" in spec:
            assert doc.endswith(f"(one of: {', '.join(spec['choices'])})"), (arg, doc)
    again = run_launch(name, *(f"{n}:={v}" for n, v, _ in shown), "--check", cwd=ROOT, timeout=60)
    assert again.returncode == 0 and "OK," in again.stdout, again.stdout + again.stderr


def _cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodes.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=_env(env))


@pytest.fixture
def private_tmp():
    """A TMPDIR of this test's own, so that its `latest` stack is the one it launched whatever else runs (short:
    ipc socket paths under it are limited to ~100 bytes)."""
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp(prefix="ds-")
    yield {"TMPDIR": tmp}
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_topic_list_names_the_latest_stack_s_topics_types_publishers_and_subscribers(tmp_path, private_tmp):
    env = private_tmp
    proc = popen_launch("demo.yaml", "ticks:=100000000", cwd=tmp_path, env=env)
    try:
        # no --run: the latest launched stack (the launcher points `latest` at it as it starts running)
        listing = _wait_for("the stack as `latest`",
                            lambda: (r := _cli("topic", "list", env=env)).returncode == 0 and r)
        rows = {line.split()[0]: line for line in listing.stdout.splitlines()}
        assert set(rows) == {"/sim/ego", "/sim/episode", "/control/cmd", "/diagnostics"}, listing.stdout
        assert re.fullmatch(r"/sim/ego +EgoState +pub: ticker +sub: echo", rows["/sim/ego"]), rows
        assert re.fullmatch(r"/control/cmd +ControlCommand +pub: echo +sub: ticker", rows["/control/cmd"]), rows
        assert re.fullmatch(r"/sim/episode +EpisodeEvent +pub: ticker +sub: ", rows["/sim/episode"]), rows
        assert re.fullmatch(r"/diagnostics +Diagnostics +pub: echo, ticker +sub: ", rows["/diagnostics"]), rows
        assert listing.stderr == ""  # the stack runs: no "no longer running" note
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    after = _cli("topic", "list", env=env)  # `latest` names a stack that runs, or nothing
    assert after.returncode != 0 and "no running stack found" in after.stderr, after.stdout + after.stderr


def _hz_lines(topic: str, duration: float, env: dict[str, str]) -> tuple[int, list[str]]:
    res = _cli("topic", "hz", topic, "--duration", str(duration), env=env, timeout=120)
    return res.returncode, res.stdout.splitlines()


@pytest.mark.slow
def test_topic_hz_measures_a_paced_topic_and_says_when_none_came(tmp_path, private_tmp):
    """README: `topic hz /control/cmd  # rate (says so when no message came, ...)`; its stop at the stack's end is
    tested in test_cli_tools.py. The demo's ticker in real-time mode publishes /sim/ego at 15 Hz of wall time."""
    env = private_tmp
    proc = popen_launch("demo.yaml", "mode:=realtime", "ticks:=100000000", cwd=tmp_path, env=env)
    try:
        first = _wait_for("a first /sim/ego", lambda: (r := _cli("topic", "echo", "/sim/ego", "-n", "1", "--timeout",
                                                                 "5", env=env)).returncode == 0 and r)
        assert json.loads(first.stdout)["header"]["tick"] >= 0  # the ticker publishes: measure now
        code, lines = _hz_lines("/sim/ego", 3.5, env)
        assert code == 0 and lines, lines
        rates = [float(m.group(1)) for line in lines if (m := re.fullmatch(r"/sim/ego: ([0-9.]+) Hz over \d+ "
                                                                            r"messages", line))]
        assert len(rates) >= 2, lines
        # 15 Hz at the source. A loaded machine delays deliveries, which can bunch them at either end of the
        # window, so a factor of 3 either way; a tool that got its units or its count wrong is off by far more.
        assert 5.0 <= sorted(rates)[len(rates) // 2] <= 45.0, lines
        # /sim/episode has its one start event behind it: nothing comes, and the tool says so each second
        code, lines = _hz_lines("/sim/episode", 1.5, env)
        assert code == 1 and lines and all(line == "/sim/episode: no new messages" for line in lines), lines
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)


# -- replay's options, on the golden recording (two episodes of the whole stack) ------------------------------
def _replay(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nodes.cli", "replay", str(GOLDEN), "--rate", "max", "--record",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_env(None))


def _played(cwd: Path) -> dict[str, list[bytes]]:
    (copy,) = list(cwd.glob("runs/*/recording.mcap"))
    return {t: b for t, b in recorded_bodies(copy).items() if t in TOPICS}


def _golden(since_ns: int = 0) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for rec in read_records(GOLDEN):
        if rec.topic in TOPICS and rec.topic != "/diagnostics" and rec.log_time_ns >= since_ns:
            out.setdefault(rec.topic, []).append(rec.data)
    return out


@pytest.mark.slow
def test_replay_exclude_and_start_offset_play_the_rest_byte_identical(tmp_path):
    """--exclude leaves those topics out, --start-offset S skips the recording's first S seconds (of its wall-clock
    receive times, as rosbag2's play does); every other message goes out with its recorded bytes."""
    times = [r.log_time_ns for r in read_records(GOLDEN) if r.topic in TOPICS and r.topic != "/diagnostics"]
    # half the recording's wall-clock span: how long the golden run took depends on the machine that recorded it
    # (2-6 s), so a fixed offset could skip all of it
    offset_ns = (max(times) - min(times)) // 2
    res = _replay(tmp_path, "--exclude", "/sim/camera", "/sim/objects_gt", "--start-offset", f"{offset_ns / 1e9:.9f}")
    assert res.returncode == 0, res.stdout + res.stderr
    played, rest, whole = _played(tmp_path), _golden(min(times) + offset_ns), _golden()
    assert set(played) == set(whole) - {"/sim/camera", "/sim/objects_gt"} and "/sim/ego" in played
    for topic in played:
        assert played[topic] == rest[topic], topic
    assert 0 < len(played["/sim/ego"]) < len(whole["/sim/ego"])  # a real cut


@pytest.mark.slow
def test_replay_loop_starts_again_at_the_end(tmp_path):
    one_pass = _golden()["/sim/ego"]
    proc = subprocess.Popen([sys.executable, "-m", "nodes.cli", "replay", str(GOLDEN), "--rate", "max", "--record",
                             "--topics", "/sim/ego", "--loop"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env(None))
    try:
        graph = json.loads(_wait_for("the replay's graph",
                                     lambda: list(tmp_path.glob("runs/*/launch.json")))[0].read_text())

        def played() -> int:  # the replay node's own count, from its heartbeats
            echo = _cli("topic", "echo", "/diagnostics", "-n", "4", "--timeout", "10", "--run",
                        graph["namespace_dir"], env={})
            beats = [json.loads(line) for line in echo.stdout.splitlines()]
            return max([b["counters"].get("played", 0) for b in beats if b["node"] == "replay"], default=0)

        _wait_for("two and a half passes", lambda: played() > 2.5 * len(one_pass), timeout=120)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    got = _played(tmp_path)["/sim/ego"]
    assert len(got) > 2 * len(one_pass)  # recorded without loss (lockstep queues hold the replay back)
    assert got == (one_pass * (len(got) // len(one_pass) + 1))[: len(got)]  # the recording again and again

