"""Score calibration: Platt scaling and isotonic regression (fit on validation), ECE, reliability.

A calibrator maps a similarity score to P(same identity | score). Fit it on validation
pairs (or probe-identity pairs), then apply it unchanged to test scores. The fitted
parameters are plain dicts of floats or arrays, so they go into metrics.json as they are.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special
from sklearn.isotonic import IsotonicRegression


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
  s = np.asarray(scores, np.float64).reshape(-1)
  y = np.asarray(labels).reshape(-1)
  if s.shape != y.shape:
    raise ValueError(f"scores and labels must have the same length: {s.shape} vs {y.shape}")
  if not np.all(np.isin(y, (0, 1))):
    raise ValueError("labels must be 0 or 1")
  if not np.all(np.isfinite(s)):
    raise ValueError("scores contain NaN or inf")
  return s, y.astype(np.float64)


def platt_fit(scores: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> dict[str, float]:
  """Fit P(y = 1 | s) = sigmoid(slope * s + intercept) with Platt's smoothed targets.

  Targets are (N+ + 1) / (N+ + 2) for positives and 1 / (N- + 2) for negatives instead of
  1 and 0, which keeps the fit finite on separable data and acts as a prior; the
  cross-entropy to these targets is convex and is minimised exactly (BFGS on the
  analytic gradient). Platt writes 1 / (1 + exp(A s + B)); here slope = -A, intercept = -B.

  Reference: Platt 1999, "Probabilistic outputs for support vector machines", sec. 2.2;
  Lin, Lin & Weng 2007, "A note on Platt's probabilistic outputs", Machine Learning 68.

  Returns:
    ``{"slope": ..., "intercept": ...}``.
  """
  s, y = _check(scores, labels)
  num_pos, num_neg = y.sum(), (1 - y).sum()
  if num_pos == 0 or num_neg == 0:
    raise ValueError("Platt scaling needs both positive and negative examples")
  t = np.where(y == 1, (num_pos + 1) / (num_pos + 2), 1 / (num_neg + 2))
  # Standardise for conditioning; the parameters are mapped back afterwards.
  mu, sd = s.mean(), s.std() or 1.0
  z = (s - mu) / sd

  def loss(w):
    logits = w[0] * z + w[1]
    # log(1 + exp(x)) - t x is the cross-entropy to soft target t, written stably.
    value = np.sum(np.logaddexp(0.0, logits) - t * logits)
    resid = special.expit(logits) - t
    return value, np.array([np.sum(resid * z), np.sum(resid)])

  prior = np.log((num_pos + 1) / (num_neg + 1))
  res = optimize.minimize(
    loss, np.array([0.0, prior]), jac=True, method="BFGS", options={"gtol": 1e-10}
  )
  a, b = res.x
  return {"slope": float(a / sd), "intercept": float(b - a * mu / sd)}


def platt_apply(params: dict[str, float], scores: np.typing.ArrayLike) -> np.ndarray:
  """P(same) = sigmoid(slope * s + intercept)."""
  s = np.asarray(scores, np.float64)
  return special.expit(params["slope"] * s + params["intercept"])


def isotonic_fit(scores: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> dict[str, np.ndarray]:
  """Fit a non-decreasing step map from score to probability (pool adjacent violators).

  Reference: Zadrozny & Elkan 2002, "Transforming classifier scores into accurate
  multiclass probability estimates", KDD.

  Returns:
    ``{"x": knots, "y": probabilities}``; `isotonic_apply` interpolates linearly between
    knots and clips outside them, as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``.
  """
  s, y = _check(scores, labels)
  iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(s, y)
  return {"x": np.asarray(iso.X_thresholds_), "y": np.asarray(iso.y_thresholds_)}


def isotonic_apply(params: dict[str, np.ndarray], scores: np.typing.ArrayLike) -> np.ndarray:
  """Probabilities from an `isotonic_fit` result."""
  return np.interp(np.asarray(scores, np.float64), params["x"], params["y"])


def fit_calibrator(scores, labels, method: str = "platt"):
  """`platt_fit` or `isotonic_fit`, returned as a function from scores to probabilities."""
  if method == "platt":
    params = platt_fit(scores, labels)
    return lambda s: platt_apply(params, s)
  if method == "isotonic":
    params = isotonic_fit(scores, labels)
    return lambda s: isotonic_apply(params, s)
  raise ValueError(f"method must be 'platt' or 'isotonic', got {method!r}")


def _bins(probs: np.ndarray, num_bins: int) -> np.ndarray:
  return np.minimum((probs * num_bins).astype(np.int64), num_bins - 1)


def _check_weights(weights, n: int) -> np.ndarray:
  if weights is None:
    return np.ones(n)
  w = np.asarray(weights, np.float64).reshape(-1)
  if w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w)):
    raise ValueError(f"weights must be [{n}] finite and non-negative, got shape {w.shape}")
  return w


def reliability_diagram(
  probs: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  num_bins: int = 15,
  weights: np.typing.ArrayLike | None = None,
) -> dict[str, np.ndarray]:
  """Data for a reliability diagram over equal-width bins of P(same) in [0, 1].

  Args:
    probs: [N] predicted probabilities.
    labels: [N] 0/1 outcomes.
    num_bins: equal-width bins of [0, 1].
    weights: optional [N] non-negative weights (e.g. bootstrap counts); None = all ones.

  Returns:
    dict of [num_bins] arrays: ``bin_lower``, ``bin_upper``, ``mean_predicted``,
    ``fraction_positive`` (NaN for empty bins) and ``count`` (the weight in each bin).
  """
  p, y = _check(probs, labels)
  w = _check_weights(weights, p.size)
  if p.min() < 0 or p.max() > 1:
    raise ValueError("probs must lie in [0, 1]")
  b = _bins(p, num_bins)
  count = np.bincount(b, w, minlength=num_bins).astype(np.float64)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean_pred = np.bincount(b, w * p, num_bins) / count
    frac_pos = np.bincount(b, w * y, num_bins) / count
  mean_pred[count == 0] = np.nan
  frac_pos[count == 0] = np.nan
  edges = np.linspace(0, 1, num_bins + 1)
  return {
    "bin_lower": edges[:-1],
    "bin_upper": edges[1:],
    "mean_predicted": mean_pred,
    "fraction_positive": frac_pos,
    "count": count,
  }


def expected_calibration_error(
  probs: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  num_bins: int = 15,
  weights: np.typing.ArrayLike | None = None,
) -> float:
  """ECE = sum_b (n_b / N) |fraction positive_b - mean P(same)_b| over equal-width bins.

  This is the binary (positive-class) ECE of P(same); Guo et al. 2017, "On calibration
  of modern neural networks" (ICML), define it for the top-label confidence, which for
  two classes bins max(p, 1 - p) instead. With ``weights``, n_b is the weight in bin b.
  """
  d = reliability_diagram(probs, labels, num_bins, weights)
  nz = d["count"] > 0
  share = d["count"][nz] / d["count"].sum()
  return float(np.sum(share * np.abs(d["fraction_positive"][nz] - d["mean_predicted"][nz])))


def calibration_metrics(
  probs: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  num_bins: int = 15,
  weights: np.typing.ArrayLike | None = None,
) -> dict[str, float]:
  """``ece``, ``brier`` (mean squared error of P(same)) and ``log_loss`` (natural log).

  With ``weights`` (e.g. the item counts of a bootstrap replicate) every mean is weighted.
  """
  p, y = _check(probs, labels)
  w = _check_weights(weights, p.size)
  if w.sum() <= 0:
    raise ValueError("weights must not all be zero")
  # Clip so a confident wrong 0 or 1 costs a large finite loss, not inf.
  pc = np.clip(p, 1e-12, 1 - 1e-12)
  return {
    "ece": expected_calibration_error(p, y, num_bins, w),
    "brier": float(np.average((p - y) ** 2, weights=w)),
    "log_loss": float(-np.average(y * np.log(pc) + (1 - y) * np.log(1 - pc), weights=w)),
  }


def base_rate_metrics(
  labels: np.typing.ArrayLike,
  rate: float,
  num_bins: int = 15,
  weights: np.typing.ArrayLike | None = None,
) -> dict[str, float]:
  """`calibration_metrics` of the predictor that outputs ``rate`` for every item.

  The reference any calibrated probability must beat: with ``rate`` the positive rate
  of validation, it knows nothing about the item. When positives are rare (0.16% of
  open-set probe-identity pairs), it scores a near-zero ECE and Brier score, so an ECE
  reported without it says little. Fit ``rate`` on validation, never on the labels it
  is scored on.

  Returns:
    ``ece``, ``brier`` and ``log_loss`` of the constant prediction, plus ``rate``.
  """
  if not 0 <= rate <= 1:
    raise ValueError(f"rate must be in [0, 1], got {rate}")
  y = np.asarray(labels).reshape(-1)
  out = calibration_metrics(np.full(y.size, float(rate)), y, num_bins, weights)
  out["rate"] = float(rate)
  return out
