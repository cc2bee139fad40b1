"""Golden per-node replays: every node reproduces its recorded outputs from its recorded inputs.

When a node's behaviour changes on purpose: `drivestack golden --refresh`, then commit the new recording.
"""

import json

import pytest

from nodes.recorder.golden import GOLDEN_FILE, GOLDEN_LAUNCH, replay_node, with_moved_modules
from nodes.runtime.mcap_io import read_metadata

META = read_metadata(GOLDEN_FILE)
NODES = {name: e for name, e in json.loads(META["launch"]["resolved"])["nodes"].items() if e["outputs"]}
# [m, m/s, Q-value] Floats may differ in the last bits across CPUs: the networks' kernels (torch picks them by CPU
# capability), and highway-env's numpy trigonometry (numpy's SIMD loops differ between AVX-512 and AVX2
# machines: 1e-12 m after a few ticks on the golden run). Everything discrete is compared exactly.
TOLERANCE = {"perception": 1e-4, "planning": 1e-4, "sim": 1e-9}


def test_golden_recording_matches_its_launch_file():
    # the recording names the node modules of its day (the sim node was sim.node); nothing else may differ
    assert with_moved_modules(META["launch"]["text"]) == GOLDEN_LAUNCH.read_text(), (
        "tests/golden/golden_stack.yaml changed: run `drivestack golden --refresh`")


@pytest.mark.parametrize("node", sorted(NODES))
def test_node_reproduces_its_recorded_outputs(node):
    replay = replay_node(GOLDEN_FILE, node)
    assert sum(len(v) for v in replay.recorded.values()) > 40  # a real stretch of driving to compare
    assert replay.mismatches(TOLERANCE.get(node, 0.0)) == []
