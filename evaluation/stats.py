"""Small statistics for evaluation: 95% confidence intervals of a mean (Student t) and of a rate (Wilson),
and Savitzky-Golay derivatives. Deterministic, numpy only."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_975 = 1.959963984540054  # standard normal 97.5% quantile

# Student t 97.5% quantiles for 1..30 degrees of freedom (standard tables, 7 significant digits).
_T_975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157,
          2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922,
          2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831,
          2.048407, 2.045230, 2.042272)


def t_975(df: int) -> float:
    """Student t 97.5% quantile for `df` >= 1 degrees of freedom (table to 30, Cornish-Fisher beyond:
    error below 1e-7 there)."""
    if df < 1:
        raise ValueError(f"t quantile needs at least 1 degree of freedom, got {df}")
    if df <= len(_T_975):
        return _T_975[df - 1]
    z, v = Z_975, float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4))


def mean_ci95(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """(mean, low, high): the mean and its two-sided 95% t interval; the interval is None below 2 values."""
    x = np.asarray(values, np.float64)
    if x.size == 0:
        return None, None, None
    mean = float(x.mean())
    if x.size < 2:
        return mean, None, None
    half = t_975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def wilson_ci95(successes: int, trials: int) -> tuple[float | None, float | None, float | None]:
    """(rate, low, high): a proportion and its Wilson score 95% interval (sound at 0 and n successes)."""
    if trials <= 0:
        return None, None, None
    if not 0 <= successes <= trials:
        raise ValueError(f"Wilson interval: successes must be in [0, {trials}], got {successes}")
    p, n, z2 = successes / trials, trials, Z_975**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_975 / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return p, max(0.0, centre - half), min(1.0, centre + half)


def savgol_derivative(y: np.ndarray, dt: float, window: int, order: int = 2) -> np.ndarray:
    """First derivative of evenly sampled `y` (step `dt` [s]) by Savitzky-Golay: a degree-`order` polynomial
    fitted by least squares to `window` samples around each one (shifted inwards at the ends), then
    differentiated. Exact for polynomials up to `order`. A window below order + 1 samples (or a shorter
    series) falls back to central finite differences (np.gradient)."""
    y = np.asarray(y, np.float64)
    n = y.size
    if n < 2:
        return np.zeros(n)
    w = min(window, n if n % 2 else n - 1)
    if w < order + 1:
        return np.gradient(y, dt)
    s = np.arange(w) * dt
    # Row j: weights that give the fitted slope at sample j of the window.
    coeffs = np.stack([np.linalg.pinv(np.vander(s - s[j], order + 1, increasing=True))[1] for j in range(w)])
    starts = np.clip(np.arange(n) - w // 2, 0, n - w)
    windows = np.lib.stride_tricks.sliding_window_view(y, w)[starts]
    return np.einsum("nw,nw->n", coeffs[np.arange(n) - starts], windows)
