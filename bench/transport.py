"""One-way latency of our typed publisher/subscriber against raw pyzmq, same machine, same run.

A sender process stamps each message with CLOCK_MONOTONIC (shared by all processes on Linux); the
receiver subtracts. Two payloads: a small command (64 B class) and a 600x150x3 camera frame. Raw pyzmq
sends the same bytes as multipart frames and receives them with `recv_multipart`; ours goes through
`Publisher.publish` (encode) and `Subscriber.recv` (decode, type and finiteness checks).

    python bench/transport.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time

import numpy as np
import zmq

from msgs import ControlCommand, Header, Image
from nodes.runtime.bus import Publisher, Subscriber

FRAME_SHAPE = (150, 600, 3)
GAP_S = 0.002  # [s] between messages: latency, not throughput


def _sender(endpoint: str, variant: str, payload: str, n: int, ready: mp.Event) -> None:
    ctx = zmq.Context()
    pixels = np.random.default_rng(0).integers(0, 255, FRAME_SHAPE, dtype=np.uint8)
    if variant == "ours":
        kind = Image if payload == "frame" else ControlCommand
        topic = "/sim/camera" if payload == "frame" else "/control/cmd"
        pub = Publisher(ctx, endpoint, topic, kind, lockstep=True)
        pub.wait_for_subscribers(1, 10)
        ready.set()
        data = pixels.tobytes()  # both paths send the same prepared bytes; the stamp is taken just before sending
        for i in range(n):
            header = Header(tick=i, stamp_ns=time.monotonic_ns())
            if payload == "frame":
                pub.publish(Image(header=header, width=600, height=150, data=data))
            else:
                pub.publish(ControlCommand(header=header, acceleration=0.1, steering=-0.05))
            time.sleep(GAP_S)
    else:
        sock = ctx.socket(zmq.XPUB)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.bind(endpoint)
        sock.recv()  # the subscription
        ready.set()
        data = pixels.tobytes()
        for _ in range(n):
            stamp = time.monotonic_ns().to_bytes(8, "little")
            if payload == "frame":
                sock.send_multipart([b"/sim/camera", stamp, data], copy=False)
            else:
                sock.send_multipart([b"/control/cmd", stamp + bytes(56)])
            time.sleep(GAP_S)
    time.sleep(0.5)
    ctx.destroy(linger=1000)


def measure(variant: str, payload: str, n: int) -> np.ndarray:
    endpoint = f"ipc://{tempfile.mkdtemp(prefix='dsbench')}/{variant}-{payload}"
    ctx = zmq.Context()
    ready = mp.Event()
    lat: list[float] = []
    if variant == "ours":
        sub = Subscriber(ctx, lockstep=True)
        frame = payload == "frame"
        sub.add("/sim/camera" if frame else "/control/cmd", Image if frame else ControlCommand, [endpoint])
        proc = mp.Process(target=_sender, args=(endpoint, variant, payload, n, ready))
        proc.start()
        while len(lat) < n:
            item = sub.recv(5000)
            if item is None:
                break
            now = time.monotonic_ns()
            msg = item[1]
            if payload == "frame":
                msg.array()  # a usable (150, 600, 3) view, as a node would take it
            lat.append((now - msg.header.stamp_ns) / 1e3)
    else:
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.setsockopt(zmq.SUBSCRIBE, b"/")
        sock.connect(endpoint)
        proc = mp.Process(target=_sender, args=(endpoint, variant, payload, n, ready))
        proc.start()
        while len(lat) < n:
            if not sock.poll(5000):
                break
            frames = sock.recv_multipart(copy=payload != "frame")
            now = time.monotonic_ns()
            stamp = bytes(frames[1])[:8] if payload == "frame" else frames[1][:8]
            if payload == "frame":
                np.frombuffer(frames[2].buffer, np.uint8).reshape(FRAME_SHAPE)
            lat.append((now - int.from_bytes(stamp, "little")) / 1e3)
    proc.join()
    ctx.destroy(linger=0)
    return np.asarray(lat[n // 10:])  # drop the warm-up tenth


def codec_cost_us(payload: str, n: int) -> dict[str, float]:
    """CPU cost of our layer alone, per message: encode + decode with all checks (no sockets)."""
    from msgs import decode, encode

    pixels = np.zeros(FRAME_SHAPE, np.uint8).tobytes()
    msg = (Image(header=Header(tick=1), width=600, height=150, data=pixels) if payload == "frame"
           else ControlCommand(header=Header(tick=1), acceleration=0.1, steering=-0.05))
    topic = "/sim/camera" if payload == "frame" else "/control/cmd"
    t0 = time.perf_counter()
    for _ in range(n):
        frames = encode(topic, msg)
    t1 = time.perf_counter()
    for _ in range(n):
        decode(frames)
    t2 = time.perf_counter()
    return {"encode_us": (t1 - t0) / n * 1e6, "decode_us": (t2 - t1) / n * 1e6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages (still every row)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    counts = {"small": 400 if args.quick else 3000, "frame": 150 if args.quick else 1000}
    results: dict[str, dict[str, float]] = {}
    for payload in ("small", "frame"):
        samples: dict[str, list[np.ndarray]] = {"raw": [], "ours": []}
        for _ in range(2):  # interleave: raw, ours, raw, ours
            for variant in ("raw", "ours"):
                samples[variant].append(measure(variant, payload, counts[payload] // 2))
        for variant, parts in samples.items():
            lat = np.concatenate(parts)
            results[f"{payload}_{variant}"] = {"p50_us": float(np.percentile(lat, 50)),
                                               "p99_us": float(np.percentile(lat, 99)), "n": int(lat.size)}
        results[f"{payload}_overhead"] = {
            "p50_ratio": results[f"{payload}_ours"]["p50_us"] / results[f"{payload}_raw"]["p50_us"],
            **codec_cost_us(payload, 2000 if args.quick else 20000)}
    print(f"transport one-way latency, ipc://, {os.cpu_count()} CPUs")
    print(f"{'payload':<22} {'path':<14} {'p50_us':>9} {'p99_us':>9} {'n':>6}")
    names = {"small": "ControlCommand (~80 B)", "frame": "Image 600x150x3"}
    for payload in ("small", "frame"):
        for variant, label in (("raw", "raw pyzmq"), ("ours", "typed (ours)")):
            r = results[f"{payload}_{variant}"]
            print(f"{names[payload]:<22} {label:<14} {r['p50_us']:>9.1f} {r['p99_us']:>9.1f} {r['n']:>6}")
        ratio = results[f"{payload}_overhead"]["p50_ratio"]
        print(f"{'':<22} {'ours/raw p50':<14} {ratio:>9.2f}   target <= 1.30: {'met' if ratio <= 1.3 else 'NOT met'}")
        cost = results[f"{payload}_overhead"]
        print(f"{'':<22} {'codec CPU':<14} encode {cost['encode_us']:.1f} us, decode+checks {cost['decode_us']:.1f} us")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
