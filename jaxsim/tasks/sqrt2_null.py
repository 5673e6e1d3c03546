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

import pathlib

import jax
import jax.numpy as jnp
import numpy as np

from jaxsim import report
from jaxsim.evaluate import overlap


def HEADLINE(metrics):  # noqa: N802 -- the tasks' summary-table hook, here a function
  return {f"KS p-value, d = {k[1:]}": f"{k}.ks_pvalue" for k in metrics}


def _sample_distances(key: jax.Array, num_pairs: int, dim: int) -> np.ndarray:
  x = jax.random.normal(key, (2, num_pairs, dim))
  x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
  return np.asarray(jnp.linalg.norm(x[0] - x[1], axis=-1), np.float64)


def run(config, workdir: pathlib.Path) -> dict:
  key = jax.random.key(config.seed)
  metrics = {}
  for dim in config.data.dims:
    d = _sample_distances(jax.random.fold_in(key, dim), config.data.num_pairs, dim)
    metrics[f"d{dim}"] = overlap.null_distance_test(d, dim)
  report.write_metrics_json(metrics, workdir)
  return metrics
