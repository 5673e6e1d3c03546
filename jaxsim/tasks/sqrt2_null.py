"""The sqrt(2) null: distances between independent uniform unit vectors.

For x, y independent and uniform on the unit sphere in R^d, the cosine
t = <x, y> has density proportional to (1 - t^2)^((d - 3) / 2), so
(1 + t) / 2 ~ Beta(a, a) with a = (d - 1) / 2, and the Euclidean distance
D = sqrt(2 - 2t) = 2 sqrt(B) with B ~ Beta(a, a). Hence E[D^2] = 2 and
Var[D] ~ 1 / (2d). This task samples such vectors with JAX and checks the
empirical distances against that exact law (Kolmogorov-Smirnov), which is
the reference every "the embeddings are random" claim must be tested against.
"""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special, stats


def null_distance_cdf(x: np.ndarray, dim: int) -> np.ndarray:
  """CDF of the distance between two independent uniform unit vectors in R^dim."""
  a = (dim - 1) / 2
  return special.betainc(a, a, np.clip(np.asarray(x, np.float64) ** 2 / 4, 0.0, 1.0))


def null_distance_moments(dim: int) -> tuple[float, float]:
  """Exact mean and standard deviation of that distance."""
  a = (dim - 1) / 2
  mean = 2 * np.exp(special.betaln(a + 0.5, a) - special.betaln(a, a))
  return float(mean), float(np.sqrt(2.0 - mean**2))


def _sample_distances(key: jax.Array, num_pairs: int, dim: int) -> np.ndarray:
  x = jax.random.normal(key, (2, num_pairs, dim))
  x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
  return np.asarray(jnp.linalg.norm(x[0] - x[1], axis=-1), np.float64)


def run(config, workdir: pathlib.Path) -> dict:
  key = jax.random.key(config.seed)
  metrics = {}
  for dim in config.dims:
    d = _sample_distances(jax.random.fold_in(key, dim), config.num_pairs, dim)
    mean, std = null_distance_moments(dim)
    ks = stats.kstest(d, lambda x, dim=dim: null_distance_cdf(x, dim))
    metrics[f"d{dim}"] = {
      "observed_mean": float(d.mean()),
      "observed_std": float(d.std(ddof=1)),
      "null_mean": mean,
      "null_std": std,
      "ks_statistic": float(ks.statistic),
      "ks_pvalue": float(ks.pvalue),
    }
  (workdir / "metrics.json").write_text(json.dumps(metrics, indent=2))
  return metrics
