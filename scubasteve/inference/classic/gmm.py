"""Gaussian-mixture colour models (as in GrabCut) for the classic engine's graph cuts.

Histogram colour models need many pixels per bin; on large objects with smooth shading a mixture
of a few full-covariance Gaussians describes the object's colours better and generalises to the
shades a histogram has not seen. Fitting follows GrabCut: k-means to start, then each pixel is
given to its most likely component and the components are re-estimated from their pixels.
Everything is NumPy plus `cv2.kmeans`; a model of 5 components fits 20,000 pixels in a few ms.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Components per model (GrabCut's choice).
COMPONENTS = 5
#: Pixels sampled to fit a model (enough for 5 three-dimensional Gaussians; keeps fits cheap).
MAX_SAMPLES = 6000
#: Added to every covariance's diagonal (in squared Lab units): no component collapses.
REGULARISATION = 4.0


@dataclass(frozen=True)
class Gmm:
    """`weights` (K,), `means` (K, 3), `inv_chol` (K, 3, 3) inverse Cholesky factors and
    `log_norm` (K,) the log of weight / sqrt((2 pi)^3 det) of each component."""

    weights: np.ndarray
    means: np.ndarray
    inv_chol: np.ndarray
    log_norm: np.ndarray

    def component_logliks(self, x: np.ndarray) -> np.ndarray:
        """(N, K) log of weight x density of each component at each row of `x` (N, 3)."""
        out = np.empty((x.shape[0], self.means.shape[0]), np.float32)
        for k in range(self.means.shape[0]):
            d = (x - self.means[k]) @ self.inv_chol[k].T
            out[:, k] = self.log_norm[k] - 0.5 * np.einsum("ij,ij->i", d, d)
        return out

    def loglik(self, x: np.ndarray) -> np.ndarray:
        """(N,) float32 log-density of each row of `x` (N, 3) under the mixture."""
        c = self.component_logliks(x)
        top = c.max(axis=1)
        loglik: np.ndarray = top + np.log(np.exp(c - top[:, None]).sum(axis=1))
        return loglik


def _from_labels(x: np.ndarray, labels: np.ndarray, k: int, w: np.ndarray | None) -> Gmm:
    weights, means, inv_chol, log_norm = [], [], [], []
    total = float(w.sum()) if w is not None else float(len(x))
    for j in range(k):
        sel = labels == j
        if not sel.any():
            continue
        xs = x[sel]
        ws = w[sel] if w is not None else np.ones(len(xs), np.float32)
        wsum = float(ws.sum())
        if wsum <= 0:
            continue
        mu = (xs * ws[:, None]).sum(axis=0) / wsum
        d = xs - mu
        cov = (d * ws[:, None]).T @ d / wsum + REGULARISATION * np.eye(3)
        chol = np.linalg.cholesky(cov)
        inv = np.linalg.inv(chol)
        logdet = 2.0 * float(np.log(np.diag(chol)).sum())
        weight = wsum / total
        weights.append(weight)
        means.append(mu)
        inv_chol.append(inv)
        log_norm.append(np.log(weight) - 0.5 * (3 * np.log(2 * np.pi) + logdet))
    if not weights:  # no pixels at all: one broad component
        return fit(np.zeros((1, 3), np.float32) + 128.0)
    return Gmm(
        np.asarray(weights, np.float32),
        np.asarray(means, np.float32),
        np.asarray(inv_chol, np.float32),
        np.asarray(log_norm, np.float32),
    )


def fit(
    x: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    components: int = COMPONENTS,
    start: Gmm | None = None,
    seed: int = 0,
) -> Gmm:
    """A mixture for the colours `x` (N, 3) float32, optionally weighted (N,).

    With `start`, one GrabCut step: each sample goes to its most likely component of `start`,
    which are then re-estimated; else k-means starts the components.
    """
    x = np.asarray(x, np.float32)
    if len(x) > MAX_SAMPLES:
        idx = np.random.default_rng(seed).choice(len(x), MAX_SAMPLES, replace=False)
        x = x[idx]
        weights = weights[idx] if weights is not None else None
    k = max(1, min(components, len(x)))
    if start is not None:
        labels = start.component_logliks(x).argmax(axis=1)
    elif k == 1:
        labels = np.zeros(len(x), np.int32)
    else:
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0)
        cv2.setRNGSeed(seed)
        _, labels, _ = cv2.kmeans(x, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
        labels = labels.ravel()
    return _from_labels(x, labels, k, weights)
