"""Summaries over repeated runs (seeds): each run is one draw of split and initialisation.

The spread over seeds is the run-to-run variability of a recipe; it is not an interval
for one model's test figure (`clustered` gives those, over identities).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def summary(per_seed: Sequence[Mapping[str, float]], keys: Sequence[str]) -> dict[str, float]:
  """Mean, sample std (ddof=1; 0 for one seed), min and max of each key over the seeds."""
  out = {}
  for key in keys:
    values = np.array([m[key] for m in per_seed], np.float64)
    out[f"{key}_mean"] = float(values.mean())
    out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    out[f"{key}_min"] = float(values.min())
    out[f"{key}_max"] = float(values.max())
  return out


def paired_difference(
  a: Sequence[Mapping[str, float]], b: Sequence[Mapping[str, float]], keys: Sequence[str]
) -> dict[str, float]:
  """Mean and sample std over seeds of a - b, seed by seed (the runs share their splits)."""
  out = {}
  for key in keys:
    d = np.array([x[key] - y[key] for x, y in zip(a, b, strict=True)])
    out[f"{key}_mean"] = float(d.mean())
    out[f"{key}_std"] = float(d.std(ddof=1)) if len(d) > 1 else 0.0
  return out
