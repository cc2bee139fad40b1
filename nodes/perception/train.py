"""Train the perception detector on rendered highway-env frames (CPU, one thread by default).

    python -m nodes.perception.train            # the shipped models/perception.pt (same as `drivestack
                                                # train perception`)
    python -m nodes.perception.train --help

Renders (or loads from the --data cache) a training set on TRAIN_SEEDS and a validation set on VAL_SEEDS,
trains the CenterNet-style detector with light photometric augmentation, picks the score threshold on the
validation set, scores detector and tracker there, and writes the weights plus a line in the README.md
next to them.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from nodes.perception import dataset as ds


@dataclass
class Args:
    out: str = "models/perception.pt"  # where the weights go; README.md beside it gets the line
    data: str = "runs/perception-data"  # cache folder for the rendered .npz datasets
    train_seqs: int = 80  # driven sequences in the training set
    train_steps: int = 120  # control steps per training sequence
    every: int = 3  # keep one training frame every this many steps
    val_seqs: int = 6  # validation sequences (consecutive frames, so tracking is scored too)
    val_steps: int = 90
    width: int = 16  # channels of the network
    epochs: int = 12
    batch: int = 16
    lr: float = 3e-3  # peak learning rate (one-cycle schedule)
    threads: int = 1  # torch threads
    seed: int = 0
    max_steps: int = 0  # stop after this many optimiser steps (0: no limit; for smoke tests)
    readme: bool = True  # write the README.md line


def parse(argv: list[str] | None) -> Args:
    p = argparse.ArgumentParser(prog="python -m nodes.perception.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = Args()
    p.add_argument("--out", default=d.out, help="weights file to write (default %(default)s)")
    p.add_argument("--data", default=d.data, help="cache folder for rendered datasets (default %(default)s)")
    p.add_argument("--train-seqs", type=int, default=d.train_seqs, help="training sequences (%(default)s)")
    p.add_argument("--train-steps", type=int, default=d.train_steps, help="steps per sequence (%(default)s)")
    p.add_argument("--every", type=int, default=d.every, help="keep one frame every N steps (%(default)s)")
    p.add_argument("--val-seqs", type=int, default=d.val_seqs, help="validation sequences (%(default)s)")
    p.add_argument("--val-steps", type=int, default=d.val_steps, help="steps per validation sequence")
    p.add_argument("--width", type=int, default=d.width, help="network channels (%(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training set (%(default)s)")
    p.add_argument("--batch", type=int, default=d.batch, help="frames per optimiser step (%(default)s)")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (%(default)s)")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (%(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the scenario draw and the training")
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="stop after N optimiser steps (0: off)")
    p.add_argument("--no-readme", dest="readme", action="store_false", help="do not write the README line")
    a = p.parse_args(argv)
    args = Args(**vars(a))
    if min(args.train_seqs, args.train_steps, args.every, args.val_seqs, args.val_steps, args.width,
           args.epochs, args.batch, args.threads) < 1:
        p.error("counts and sizes must be >= 1")
    return args


def dataset(path: Path, seeds: range, n: int, steps: int, every: int, seed: int) -> tuple[dict, bool]:
    """The cached dataset, or a freshly rendered (and cached) one; True when it was rendered."""
    if path.exists():
        print(f"using cached {path}")
        return ds.load(path), False
    rng = np.random.default_rng(seed)
    scs = ds.scenarios(seeds[:n], steps, every, rng)
    data = ds.build(scs)
    ds.save(data, path)
    return data, True


def augment(frames, gen):
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W): brightness, colour, blur and noise jitter."""
    import torch
    import torch.nn.functional as F

    from nodes.perception.net import PIXEL_SCALE, PIXEL_SHIFT

    b = frames.shape[0]
    x = frames.float().permute(0, 3, 1, 2)
    gain = torch.empty(b, 1, 1, 1).uniform_(0.8, 1.2, generator=gen)
    colour = torch.empty(b, 3, 1, 1).uniform_(0.93, 1.07, generator=gen)
    bias = torch.empty(b, 1, 1, 1).uniform_(-20.0, 20.0, generator=gen)
    x = x * gain * colour + bias
    blur = torch.rand(b, generator=gen) < 0.3
    if blur.any():
        sigma = float(torch.empty(1).uniform_(0.4, 1.0, generator=gen))
        k1 = torch.exp(-torch.arange(-1.0, 2.0) ** 2 / (2 * sigma**2))
        k = (k1[:, None] * k1[None, :]) / k1.sum() ** 2
        x[blur] = F.conv2d(F.pad(x[blur], (1, 1, 1, 1), mode="replicate"), k.expand(3, 1, 3, 3), groups=3)
    noise = torch.empty(b, 1, 1, 1).uniform_(0.0, 6.0, generator=gen)
    x = x + torch.randn(x.shape, generator=gen) * noise
    return (x.clamp_(0, 255) * PIXEL_SCALE - PIXEL_SHIFT).contiguous(memory_format=torch.channels_last)


def fit(data: dict, args: Args):
    """Train a CenterNet on `data`; returns it in eval mode."""
    import torch
    from tqdm import tqdm

    from nodes.perception.net import CenterNet, NetConfig, encode, loss

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    n = len(data["frames"])
    targets = [encode(ds.frame_labels(data, i)) for i in range(n)]
    heat = torch.from_numpy(np.stack([t[0] for t in targets]))
    ignore = torch.from_numpy(np.stack([t[1] for t in targets]))
    reg = [torch.from_numpy(t[2]) for t in targets]
    frames = torch.from_numpy(data["frames"])
    net = CenterNet(NetConfig(width=args.width)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    per_epoch = max(n // args.batch, 1)
    total = per_epoch * args.epochs
    if args.max_steps:
        total = min(total, args.max_steps)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.15)
    net.train()
    bar = tqdm(total=total, desc="training", unit="step")
    step = 0
    while step < total:
        for idx in torch.randperm(n, generator=gen).split(args.batch):
            if step >= total or len(idx) < 2:
                break
            out = net(augment(frames[idx], gen))
            total_loss, parts = loss(out, heat[idx], ignore[idx], [reg[i] for i in idx.tolist()])
            opt.zero_grad(set_to_none=True)
            total_loss.backward()
            opt.step()
            sched.step()
            step += 1
            bar.update()
            if step % 10 == 0:
                bar.set_postfix(loss=f"{float(total_loss):.3f}", **{k: f"{v:.3f}" for k, v in parts.items()})
    bar.close()
    return net.eval()


def pick_threshold(dets: list[np.ndarray], data: dict, candidates=(0.3, 0.4, 0.5, 0.6, 0.7)) -> float:
    """The lowest threshold whose validation precision reaches 0.995 (else the best F1)."""
    from nodes.perception.evaluate import score_detections

    best, best_f1 = 0.5, -1.0
    for thr in candidates:
        s = score_detections([d[d[:, 5] >= thr] for d in dets], data)
        if s.precision >= 0.995:
            return thr
        f1 = 2 * s.precision * s.recall / max(s.precision + s.recall, 1e-9)
        if f1 > best_f1:
            best, best_f1 = thr, f1
    return best


def readme_line(out: Path, argv: list[str], minutes: dict[str, float], scores: dict, n_frames: int) -> str:
    cmd = "drivestack train perception" + ("" if not argv else " " + " ".join(argv))
    kb = out.stat().st_size / 1024
    render = f"{minutes['render']:.0f} min rendering" if minutes["render"] > 0 else "rendering cached"
    return (f"- `{out.name}`: vehicle detector (CenterNet-style CNN, {kb:.0f} KB). `{cmd}` "
            f"(= `python -m nodes.perception.train`): {n_frames} training frames; took "
            f"{minutes['total']:.0f} min on 1 CPU thread here ({render}, {minutes['train']:.0f} min "
            f"training). Validation (unseen seeds): precision "
            f"{scores['precision_ratio']:.4f}, recall {scores['recall_ratio']:.4f}, position error median "
            f"{scores['pos_err_median_m']:.3f} m / p95 {scores['pos_err_p95_m']:.3f} m, tracked velocity "
            f"error median {scores['vel_err_median_mps']:.2f} m/s, threshold {scores['threshold']:.2f}.")


README_HEADER = ("# Shipped models\n\n"
                 "One line per file: the command that makes it, how long it took, what it scored.\n\n")


def write_readme(readme: Path, name: str, line: str) -> None:
    """Replace this model's line in README.md (or add it), leaving the other lines alone."""
    text = readme.read_text() if readme.exists() else README_HEADER
    pattern = re.compile(rf"^- `{re.escape(name)}`.*$", re.M)
    if pattern.search(text):
        text = pattern.sub(line, text)
    else:
        text = (text if text.endswith("\n") else text + "\n") + line + "\n"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    import torch

    from nodes.perception.detector import Detector, save_weights
    from nodes.perception.evaluate import detect_all, score_detections, track_all

    torch.set_num_threads(args.threads)
    t0 = time.time()
    cache = Path(args.data)
    v = ds.DATA_VERSION
    name = f"train_v{v}_s{args.seed}_{args.train_seqs}x{args.train_steps}e{args.every}.npz"
    train, rendered_t = dataset(cache / name, ds.TRAIN_SEEDS, args.train_seqs, args.train_steps, args.every,
                                args.seed)
    val, rendered_v = dataset(cache / f"val_v{v}_{args.val_seqs}x{args.val_steps}.npz", ds.VAL_SEEDS,
                              args.val_seqs, args.val_steps, 1, 1)
    t_render = time.time() - t0 if rendered_t or rendered_v else 0.0
    print(f"training frames: {len(train['frames'])}, validation frames: {len(val['frames'])}")
    t1 = time.time()
    net = fit(train, args)
    t_train = time.time() - t1
    out = Path(args.out)
    save_weights(net, out, {})  # the unfused net, reloaded below exactly as the node will load it
    det = Detector(out, threshold=0.05)
    dets, _ = detect_all(det, val, progress=True)
    thr = pick_threshold(dets, val)
    dets = [d[d[:, 5] >= thr] for d in dets]
    scores = score_detections(dets, val).summary()
    vel, _, _ = track_all(dets, val)
    scores.update(vel.summary(), threshold=thr)
    minutes = {"total": (time.time() - t0) / 60, "render": t_render / 60, "train": t_train / 60}
    meta = {"threshold": thr, "scores": scores, "args": asdict(args), "minutes": minutes,
            "train_frames": int(len(train["frames"]))}
    save_weights(net, out, meta)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB) in {minutes['total']:.1f} min "
          f"({minutes['render']:.1f} rendering, {minutes['train']:.1f} training)")
    for k, v in scores.items():
        print(f"  {k:22s} {v:.4f}" if isinstance(v, float) and not math.isnan(v) else f"  {k:22s} {v}")
    if args.readme:
        write_readme(out.parent / "README.md", out.name,
                     readme_line(out, argv, minutes, scores, len(train["frames"])))
        print(f"updated {out.parent / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
