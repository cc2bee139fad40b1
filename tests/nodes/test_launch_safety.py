"""A launch never writes, binds or imports what it should not: the private runtime directory is checked for owner
and mode, node names and modules are validated before anything is written or imported, YAML alias bombs are
refused. Every case runs the real `launch` / `drivestack` programs and checks the exit code, the one-line error and
that nothing was left behind."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import _env, run_launch

DEMO = """description: two toy nodes
args:
  ticks: {default: 5}
nodes:
  - name: ticker
    module: nodes.demo.ticker
    required: true
    params: {ticks: $(arg ticks)}
  - name: NAME
    module: MODULE
"""


def _private_tmp(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path / "t"
    tmp.mkdir()
    return tmp / f"drivestack-{os.getuid()}", {"TMPDIR": str(tmp)}


@pytest.mark.parametrize("planted", ["other_owner", "open_mode", "symlink"])
def test_a_planted_runtime_directory_is_refused(tmp_path, planted):
    root, env = _private_tmp(tmp_path)
    if planted == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        root.symlink_to(tmp_path / "elsewhere")
    else:
        root.mkdir()
        os.chmod(root, 0o777 if planted == "open_mode" else 0o700)
        if planted == "other_owner":
            if os.getuid() != 0:
                pytest.skip("making a directory owned by another user needs root")
            os.chown(root, 65534, 65534)
    before = sorted(p.name for p in (root.iterdir() if root.is_dir() else []))
    res = run_launch("demo.yaml", cwd=tmp_path, env=env, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert f"the private runtime directory {root}" in line and "Traceback" not in res.stdout + res.stderr
    expected = {"other_owner": "belongs to uid 65534", "open_mode": "has mode 0777", "symlink": "is not a directory"}
    assert expected[planted] in line
    assert not (tmp_path / "runs").exists()  # refused before any output
    assert sorted(p.name for p in (root.iterdir() if root.is_dir() else [])) == before  # nothing written in it
    listing = subprocess.run([sys.executable, "-m", "nodes.cli", "topic", "list"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, env=_env(env))
    assert listing.returncode != 0 and expected[planted] in listing.stderr and "Traceback" not in listing.stderr


def _launch_file(tmp_path: Path, name: str, module: str) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(DEMO.replace("NAME", name).replace("MODULE", module))
    return path


@pytest.mark.parametrize("name, expected", [
    ("../../../../TMP/x", "is not a valid node name"),
    ("a/b", "is not a valid node name"),
    ("n" * 120, "at most 32 characters"),
    (".hidden", "is not a valid node name"),
])
@pytest.mark.parametrize("check", [True, False])
def test_a_bad_node_name_is_refused_before_anything_is_written(tmp_path, name, expected, check):
    name = name.replace("TMP", str(tmp_path).strip("/"))
    path = _launch_file(tmp_path, f'"{name}"', "nodes.demo.echo")
    before = set(Path("/tmp").iterdir())
    res = run_launch(str(path), *(["--check"] if check else []), cwd=tmp_path, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert expected in line and "nodes[1].name" in line
    assert not (tmp_path / "runs").exists()
    assert not list(tmp_path.glob("x*"))  # no spec file or socket where the name pointed
    assert not {p for p in set(Path("/tmp").iterdir()) - before if p.name.startswith("x")}


@pytest.mark.parametrize("module, expected", [
    ("this", "does not assign NODE at its top level"),  # the Zen of Python would print if it were imported
    (".control", "is not an absolute module name"),
    ("nodes..control", "is not an absolute module name"),
    ("nodes.demo.nope", "no module named 'nodes.demo.nope'"),
    ("zmq.backend.cython._zmq", "cannot be a node module"),
])
def test_a_module_that_is_not_a_node_is_refused_unimported(tmp_path, module, expected):
    path = _launch_file(tmp_path, "victim", module)
    res = run_launch(str(path), "--check", cwd=tmp_path, timeout=60)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert expected in line and "node 'victim': module" in line
    assert "Beautiful is better than ugly" not in res.stdout + res.stderr
    assert "Traceback" not in res.stderr


def test_a_yaml_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("description: bomb\nargs:\n  " + "\n  ".join(lines).replace(": &", ": {default: &")
                    .replace("]", "]}") + "\n" + DEMO.split("\n", 3)[3].replace("NAME", "echo")
                    .replace("MODULE", "nodes.demo.echo"))
    res = run_launch(str(path), "--check", cwd=tmp_path, timeout=60)  # 10^9 values if expanded: hours, GBs
    assert res.returncode == 2, res.stdout + res.stderr
    assert "aliases (*name) are not allowed in launch files" in res.stderr


@pytest.mark.parametrize("delay_s", [1.0, 2.0, 3.0])
def test_ctrl_c_while_the_launcher_starts_is_one_line(tmp_path, delay_s):
    """SIGINT while the plan's modules import, the specs are written or the nodes start: no traceback, exit 130.
    The run is long (1000 episodes of up to 600 s) so that a machine fast enough to be driving already by
    `delay_s` is still interrupted, never finished: the scripted lane change collides at 11 s, and lockstep
    drives those 165 ticks in under a second, so one episode could end before a 3 s signal."""
    import signal
    import time

    from tests.conftest import popen_launch

    proc = popen_launch(str(Path(__file__).parents[1] / "data" / "lane_change.yaml"), "duration:=600", "episodes:=1000",
                        cwd=tmp_path)
    try:
        time.sleep(delay_s)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out


def test_an_unwritable_working_directory_is_one_line(tmp_path):
    readonly = tmp_path / "ro"
    readonly.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(readonly)], capture_output=True)
    if res.returncode != 0:  # as a normal user a mode-0555 directory does the same; root writes through it
        if os.getuid() == 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {res.stderr.decode().strip()}")
        os.chmod(readonly, 0o555)
    try:
        res = run_launch("demo.yaml", cwd=readonly, timeout=60)
    finally:
        subprocess.run(["umount", "-l", str(readonly)], capture_output=True)
    assert res.returncode == 2, res.stdout + res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert f"cannot create the run's output directory under {readonly}" in line and "start it from a directory" in line


def test_simultaneous_tcp_launches_on_the_same_ports_one_refused_in_one_line(tmp_path):
    from tests.conftest import popen_launch

    data = Path(__file__).parents[1] / "data" / "lane_change.yaml"
    procs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        procs.append(popen_launch(str(data), "base_port:=8120", "record:=false", cwd=tmp_path / name))
    outs = [p.communicate(timeout=240)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    refused = outs[[p.returncode for p in procs].index(2)]
    (line,) = refused.strip().splitlines()
    assert "launch: error:" in line and "base_port" in line
    assert "is taken by another launch of yours" in line or "is not available" in line


def test_latest_names_the_newest_running_stack_and_never_a_dead_one(tmp_path):
    import json
    import signal
    import tempfile
    import time

    from tests.conftest import popen_launch

    short = Path(tempfile.mkdtemp(prefix="ds", dir="/tmp"))  # ipc paths must stay short
    env = {"TMPDIR": str(short)}
    latest = short / f"drivestack-{os.getuid()}" / "latest"

    def start(name: str):
        (tmp_path / name).mkdir()
        proc = popen_launch("demo.yaml", "ticks:=100000000", cwd=tmp_path / name, env=env)
        deadline = time.monotonic() + 60
        while not list((tmp_path / name).glob("runs/*/launch.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        ns = json.loads(next((tmp_path / name).glob("runs/*/launch.json")).read_text())["namespace_dir"]
        while not (os.path.lexists(latest) and os.readlink(latest) == ns) and time.monotonic() < deadline:
            time.sleep(0.05)  # the launcher points `latest` at its stack once it runs
        return proc, ns

    first, ns_first = start("first")
    second, ns_second = start("second")
    try:
        assert os.readlink(latest) == ns_second
        second.send_signal(signal.SIGINT)
        second.communicate(timeout=30)
        assert os.readlink(latest) == ns_first  # back to the stack that still runs
        listing = subprocess.run([sys.executable, "-m", "nodes.cli", "topic", "list"], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=60, env=_env(env))
        assert listing.returncode == 0 and "/sim/ego" in listing.stdout
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
        assert not os.path.lexists(latest)  # no stack runs: no link to a dead one
        listing = subprocess.run([sys.executable, "-m", "nodes.cli", "topic", "list"], cwd=tmp_path,
                                 capture_output=True, text=True, timeout=60, env=_env(env))
        assert listing.returncode != 0 and "no running stack" in listing.stdout + listing.stderr
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.kill()


@pytest.mark.parametrize("host, code, expected", [
    ("0.0.0.0", 0, "binds its tcp endpoints on every interface (0.0.0.0)"),
    ("127.0.0.1/evil", 2, "is not a host name or IP address"),
    ("a b", 2, "is not a host name or IP address"),
])
def test_a_node_host_is_checked_and_all_interfaces_is_said(tmp_path, host, code, expected):
    path = tmp_path / "hosted.yaml"
    path.write_text((Path(__file__).parents[1] / "data" / "lane_change.yaml").read_text().replace(
        "module: nodes.control.node", f'module: nodes.control.node\n    host: "{host}"'))
    res = run_launch(str(path), "base_port:=8140", "--check", cwd=tmp_path, timeout=60)
    assert res.returncode == code, res.stdout + res.stderr
    assert expected in res.stdout + res.stderr
