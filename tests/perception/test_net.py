"""Targets, decoding and BatchNorm folding of the detector network."""

import numpy as np
import torch

from nodes.perception.net import (
    HEAD,
    HEAT,
    LEN,
    OFF_X,
    OFF_Y,
    OUT_CHANNELS,
    WID,
    CenterNet,
    NetConfig,
    decode,
    encode,
    grid_shape,
    to_input,
)

# x, y, length, width, heading, vx, vy, id, in_view
LABELS = np.array([[10.3, -1.7, 5, 2, 0.1, 0, 0, 1, 1],
                   [-20.1, 4.2, 5, 2, -0.05, 0, 0, 2, 1],
                   [75.0, 0.0, 5, 2, 0, 0, 0, 3, 0]], np.float32)  # partly out of the frame


def test_encode_then_decode_recovers_the_boxes() -> None:
    heat, ignore, reg = encode(LABELS)
    assert heat.shape == ignore.shape == grid_shape()
    assert len(reg) == 2 and (heat >= 0.99).sum() == 2
    assert ignore[:, -3:].any() and not ignore[heat >= 0.99].any()
    out = torch.full((1, OUT_CHANNELS, *heat.shape), -10.0)
    for iy, ix, ox, oy, length, width, heading, _ in reg:
        iy, ix = int(iy), int(ix)
        out[0, HEAT, iy, ix] = 5.0
        out[0, [OFF_X, OFF_Y, LEN, WID, HEAD], iy, ix] = torch.tensor([ox, oy, length, width, heading])
    dets = decode(out, threshold=0.5)
    assert dets.shape == (2, 6)
    got = dets[np.argsort(dets[:, 0])]
    want = LABELS[:2][np.argsort(LABELS[:2, 0])]
    np.testing.assert_allclose(got[:, :5], want[:, :5], atol=1e-4)


def test_fused_net_computes_the_same_thing() -> None:
    torch.manual_seed(0)
    net = CenterNet(NetConfig(width=8))
    net.train()
    with torch.no_grad():  # give the BatchNorms non-trivial running statistics
        for _ in range(3):
            net(torch.randn(2, 3, 150, 600))
    net.eval()
    x = to_input(np.random.default_rng(0).integers(0, 255, (150, 600, 3), dtype=np.uint8))
    with torch.no_grad():
        ref = net(x)
        fused = net.fuse()(x)
    assert ref.shape == (1, OUT_CHANNELS, *grid_shape())
    torch.testing.assert_close(fused, ref, atol=1e-4, rtol=1e-4)
