"""The networks' golden replays hold under each of torch's CPU capabilities this machine can run.

torch picks its kernels by CPU capability; `ATEN_CPU_CAPABILITY` forces one, which is how another machine's
arithmetic is approximated here. Each capability runs in its own process (it is read once, at import). torch
does not check the request against the CPU: asked for avx512 on a CPU without AVX-512 it selects those kernels
and dies on an illegal instruction, so a capability the CPU lacks is skipped, saying so.
"""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, _env

CAPABILITIES = {"default": None, "avx2": "avx2", "avx512": "avx512f"}  # name -> /proc/cpuinfo flag it needs
CHECK = """
import torch
from nodes.recorder.golden import GOLDEN_FILE, replay_node
from tests.nodes.test_golden import TOLERANCE
print("capability", torch.backends.cpu.get_cpu_capability())
for node in ("perception", "planning"):
    replay = replay_node(GOLDEN_FILE, node)
    assert sum(len(v) for v in replay.recorded.values()) > 40
    problems = replay.mismatches(TOLERANCE[node])
    print(node, "mismatches", len(problems), *problems[:3])
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
def test_network_golden_replays_under_a_cpu_capability(capability):
    flag = CAPABILITIES[capability]
    if flag and flag not in _cpu_flags():
        pytest.skip(f"this CPU has no {flag}: torch would run {capability} kernels anyway and die (SIGILL)")
    res = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env=_env({"ATEN_CPU_CAPABILITY": capability}))
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"capability {capability.upper()}" in res.stdout
    assert "perception mismatches 0" in res.stdout and "planning mismatches 0" in res.stdout, res.stdout
