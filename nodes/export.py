"""`drivestack export perception|planner`: write a network's deployment files (nodes/deploy.py).

    drivestack export perception                       # models/perception.onnx, models/perception.int8.onnx
    drivestack export planner                          # models/planner_dqn.onnx, models/planner_dqn.int8.onnx
    drivestack export planner --model models/planner_dqn_off.zip --out-dir /tmp/x

Each file is stamped with the sha256 of the weights it came from; the nodes refuse a stale one. The int8 file
is calibrated on frames or observations from training seeds (rendered or driven here, ~10-30 s), and written
only if it keeps within nodes/deploy.py's BOUNDS on them (otherwise a line says by how much it missed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_SOURCES = {"perception": "perception.pt", "planner": "models/planner_dqn.zip"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="drivestack export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=sorted(DEFAULT_SOURCES), help="which network")
    parser.add_argument("--model", help="the weights to export (default: the shipped ones: "
                        + ", ".join(f"{k} {v}" for k, v in DEFAULT_SOURCES.items()) + ")")
    parser.add_argument("--out-dir", type=Path, help="where the files go (default: beside the weights)")
    parser.add_argument("--no-int8", action="store_true", help="only the float32 ONNX file")
    args = parser.parse_args(argv)
    try:
        import onnx  # noqa: F401  (only writing the files needs it; running them needs onnxruntime)
    except ImportError:
        parser.exit(2, 'drivestack export: error: the onnx package is missing: pip install "drivestack[export]"\n')
    start = time.perf_counter()
    model = args.model or DEFAULT_SOURCES[args.what]
    if args.what == "perception":
        from nodes.perception.export import export
    else:
        from nodes.planning.export import export  # type: ignore[assignment]
    try:
        done = export(model, args.out_dir, int8=not args.no_int8)
    except (ValueError, FileNotFoundError) as exc:
        parser.exit(2, f"drivestack export: error: {exc}\n")
    for backend, path in done.paths.items():
        print(f"{backend:<10} {path}  ({path.stat().st_size / 1024:.0f} KB)")
    for note in done.notes:
        print(note)
    print(f"exported {model} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
