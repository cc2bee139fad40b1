"""Regenerate docs/viewer.png: run a launch file in one process under a virtual display (Xvfb) with the
viewer, and save the viewer window as it is on the screen at a given tick.

    python docs/viewer_screenshot.py --tick 66 --seed 1000 perception:=gt

Needs Xvfb (`apt-get install -y xvfb`). Launch args are passed as name:=value; gui:=true and record:=false
are added where the file declares them, and the viewer is added if the file has none.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import yaml  # noqa: E402

from msgs import Message  # noqa: E402
from nodes.runtime.launchfile import load_plan, parse_overrides, resolve_path  # noqa: E402
from nodes.runtime.local import LocalNode, LocalStack  # noqa: E402
from nodes.runtime.node import make_params  # noqa: E402
from nodes.viewer.node import ViewerNode  # noqa: E402
from tests.viewer.viewer_xvfb import find_on_screen, xvfb  # noqa: E402

RATE_HZ = 15.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--launch", default="full_stack.yaml", help="launch file (default: full_stack.yaml)")
    p.add_argument("--tick", type=int, default=66, help="tick shown in the screenshot")
    p.add_argument("--seed", type=int, default=1000, help="episode seed")
    p.add_argument("-o", "--out", default=str(ROOT / "docs" / "viewer.png"), help="PNG to write")
    p.add_argument("overrides", nargs="*", metavar="name:=value", help="more launch args")
    args = p.parse_args(argv)
    declared = (yaml.safe_load(resolve_path(args.launch).read_text()) or {}).get("args") or {}
    wanted = {"gui": True, "record": False, "episodes": 1, "seed": args.seed,
              "duration": args.tick / RATE_HZ + 1.0}
    overrides = {k: v for k, v in wanted.items() if k in declared}
    overrides.update(parse_overrides(args.overrides))
    with xvfb(Path(tempfile.mkdtemp(prefix="viewer_screenshot_")), (1300, 500)) as screen:
        os.environ["DISPLAY"] = screen.name
        stack = LocalStack.from_plan(load_plan(args.launch, overrides))
        viewer = next((n for n in stack.nodes if isinstance(n.node, ViewerNode)), None)
        if viewer is None:
            node = ViewerNode(make_params(ViewerNode, {}))
            viewer = LocalNode("viewer", node, ViewerNode.input_ports(node.params), {})
            stack = LocalStack([*stack.nodes, viewer])
        shown: ViewerNode = viewer.node  # type: ignore[assignment]
        saved: list[str] = []

        def shoot(topic: str, msg: Message) -> None:
            if topic != "/sim/ego" or msg.header.tick != args.tick + 1 or saved:
                return
            assert shown.last_image is not None
            for _ in range(100):  # the X server draws asynchronously
                shot = screen.screenshot()
                (col, row), same = find_on_screen(shot, shown.last_image)
                if same > 0.999:
                    break
                shown.display.pump()
                time.sleep(0.05)
            h, w = shown.last_image.shape[:2]
            cv2.imwrite(args.out, shot[row:row + h, col:col + w, ::-1])
            saved.append(args.out)
            print(f"saved the window at tick {shown.last_key} to {args.out} ({same:.1%} of pixels as drawn)")

        stack.observers.append(shoot)
        stack.run()
    if not saved:
        print(f"the run ended before tick {args.tick}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
