"""Verification (1:1) metrics: ROC, AUC, AP, EER, TAR at FAR, DET, thresholds on validation.

Convention: ``scores`` are similarities, higher = more likely the same identity (negate
distances first); ``labels`` are 1 for a genuine (same-identity) pair and 0 for an
impostor pair. A pair is accepted as "same" when ``score >= threshold``.

The names follow biometrics usage (ISO/IEC 19795-1): FAR = false accept rate = false
positive rate over impostor pairs; TAR = true accept rate = true positive rate over
genuine pairs; FRR = FNR = 1 - TAR.

Thresholds are chosen on a validation split and applied unchanged to the test split
(`select_threshold` then `metrics_at_threshold`, or `verification_report`), never
tuned on test scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

DEFAULT_FARS = (1e-1, 1e-2, 1e-3, 1e-4)


def _check_scores_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
  scores = np.asarray(scores, np.float64).reshape(-1)
  labels = np.asarray(labels).reshape(-1)
  if scores.shape != labels.shape:
    raise ValueError(
      f"scores and labels must have the same length: {scores.shape} vs {labels.shape}"
    )
  if not np.all(np.isin(labels, (0, 1))):
    raise ValueError("labels must be 0 (impostor pair) or 1 (genuine pair)")
  if not np.all(np.isfinite(scores)):
    raise ValueError("scores contain NaN or inf; check the embeddings")
  labels = labels.astype(np.int64)
  if labels.sum() == 0 or labels.sum() == labels.size:
    raise ValueError("need at least one genuine (1) and one impostor (0) pair")
  return scores, labels


def far_key(far: float) -> str:
  """The metric-name form of a FAR: 1e-3 -> "1e-03"."""
  return f"{far:.0e}"


def roc_curve(
  scores: np.typing.ArrayLike, labels: np.typing.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """ROC curve with one point per distinct score (no points dropped).

  Args:
    scores: [N] similarity scores.
    labels: [N] 1 = genuine, 0 = impostor.

  Returns:
    (fpr, tpr, thresholds), each [T + 1] where T is the number of distinct scores;
    thresholds are decreasing, the first is +inf (accept nothing), and point i is the
    operating point of the rule ``score >= thresholds[i]``. Same as
    ``sklearn.metrics.roc_curve(labels, scores, drop_intermediate=False)``.

  Reference: Fawcett 2006, "An introduction to ROC analysis", Pattern Recognition Letters 27.
  """
  scores, labels = _check_scores_labels(scores, labels)
  fps, tps, thresholds = _cumulative_counts(scores, labels)
  return fps / fps[-1], tps / tps[-1], thresholds


def _cumulative_counts(scores: np.ndarray, labels: np.ndarray):
  order = np.argsort(-scores, kind="mergesort")
  s, y = scores[order], labels[order]
  last_of_value = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
  tps = np.cumsum(y)[last_of_value].astype(np.float64)
  fps = (last_of_value + 1) - tps
  return np.r_[0.0, fps], np.r_[0.0, tps], np.r_[np.inf, s[last_of_value]]


def roc_auc(
  scores: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  weights: np.typing.ArrayLike | None = None,
) -> float:
  """Area under the ROC curve (trapezoidal; equals P(genuine > impostor) + 0.5 P(tie)).

  With ``weights`` ([N], non-negative) each pair counts as often as its weight (the
  subject bootstrap of `evaluate.clustered` passes replicate counts): P_w(genuine >
  impostor) + 0.5 P_w(tie).

  Reference: Hanley & McNeil 1982, Radiology 143(1):29-36.
  """
  if weights is None:
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(np.trapezoid(tpr, fpr))
  scores, labels = _check_scores_labels(scores, labels)
  w = np.asarray(weights, np.float64).reshape(-1)
  if w.shape != scores.shape or np.any(w < 0):
    raise ValueError(f"weights must be {scores.shape} non-negative values, got {w.shape}")
  order = np.argsort(-scores, kind="mergesort")
  s, y, w = scores[order], labels[order], w[order]
  last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
  tp = np.r_[0.0, np.cumsum(w * y)[last]]
  fp = np.r_[0.0, np.cumsum(w * (1 - y))[last]]
  if tp[-1] <= 0 or fp[-1] <= 0:
    return float("nan")
  return float(np.trapezoid(tp / tp[-1], fp / fp[-1]))


def average_precision(scores: np.typing.ArrayLike, labels: np.typing.ArrayLike) -> float:
  """Average precision: sum_n (R_n - R_{n-1}) P_n over decreasing thresholds (no interpolation).

  Same definition as ``sklearn.metrics.average_precision_score``.
  """
  scores, labels = _check_scores_labels(scores, labels)
  fps, tps, _ = _cumulative_counts(scores, labels)
  precision = tps[1:] / (tps[1:] + fps[1:])
  recall = tps / tps[-1]
  return float(np.sum(np.diff(recall) * precision))


def det_curve(
  scores: np.typing.ArrayLike, labels: np.typing.ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Detection error trade-off: (fpr = FAR, fnr = FRR, thresholds), one point per distinct score.

  Plot on normal-deviate axes (`scipy.stats.norm.ppf`) as in Martin et al. 1997,
  "The DET curve in assessment of detection task performance", Eurospeech.
  """
  fpr, tpr, thresholds = roc_curve(scores, labels)
  return fpr, 1.0 - tpr, thresholds


def equal_error_rate(
  scores: np.typing.ArrayLike, labels: np.typing.ArrayLike
) -> tuple[float, float]:
  """Equal error rate, interpolated linearly between the ROC points where FNR - FPR changes sign.

  Returns:
    (eer, threshold): the interpolated rate where FAR = FRR and the threshold interpolated
    the same way between the two neighbouring distinct scores.
  """
  return eer_from_roc(*roc_curve(scores, labels))


def eer_from_roc(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float]:
  """`equal_error_rate` of a ROC given as arrays (as `roc_curve` returns them)."""
  fnr = 1.0 - tpr
  diff = fpr - fnr  # -1 at the first point (+inf threshold), +1 at the last.
  i = int(np.argmax(diff >= 0))
  if diff[i] == 0:
    thr = thresholds[i] if np.isfinite(thresholds[i]) else thresholds[i + 1]
    return float(fpr[i]), float(thr)
  w = diff[i - 1] / (diff[i - 1] - diff[i])
  eer = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
  lo = thresholds[i]
  hi = thresholds[i - 1] if np.isfinite(thresholds[i - 1]) else lo
  return float(eer), float(hi + w * (lo - hi))


def tar_at_far(
  scores: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  far: float,
  min_false_accepts: float = 1.0,
) -> dict[str, float]:
  """True accept rate at the strictest operating point whose empirical FAR is <= ``far``.

  With n impostor pairs the empirical FAR moves in steps of 1/n, so a target FAR is only
  resolvable when ``n * far >= min_false_accepts``. Below that the value is reported as
  NaN with ``supported = 0.0`` instead of a number the data cannot support.

  Args:
    scores: [N] similarity scores.
    labels: [N] 1 = genuine, 0 = impostor.
    far: target false accept rate in (0, 1).
    min_false_accepts: how many impostor pairs the target must correspond to.

  Returns:
    dict with ``tar``, ``far`` (achieved), ``threshold`` and ``supported`` (1.0 or 0.0).
  """
  scores, labels = _check_scores_labels(scores, labels)
  if not 0 < far < 1:
    raise ValueError(f"far must be in (0, 1), got {far}")
  num_neg = int((labels == 0).sum())
  if num_neg * far < min_false_accepts:
    return {"tar": float("nan"), "far": float("nan"), "threshold": float("nan"), "supported": 0.0}
  fpr, tpr, thresholds = roc_curve(scores, labels)
  i = int(np.flatnonzero(fpr <= far)[-1])
  return {
    "tar": float(tpr[i]),
    "far": float(fpr[i]),
    "threshold": float(_midpoint_threshold(thresholds, i)),
    "supported": 1.0,
  }


def _midpoint_threshold(thresholds: np.ndarray, i: int) -> float:
  """A threshold with the same decisions as ``thresholds[i]`` on these scores, halfway to the next.

  Halfway between two distinct scores transfers to new data more evenly than the score
  itself, which sits on the edge of the accepted set.
  """
  if i == 0:
    return float(np.inf) if thresholds.size == 1 else float(np.nextafter(thresholds[1], np.inf))
  if i == thresholds.size - 1:
    return float(thresholds[i])
  return float(0.5 * (thresholds[i] + thresholds[i + 1]))


def verification_metrics(
  scores: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  fars: Sequence[float] = DEFAULT_FARS,
) -> dict[str, float]:
  """Threshold-free verification metrics.

  Returns:
    Flat dict: ``auc``, ``average_precision``, ``eer``, ``eer_threshold``, and for each
    FAR f (keys formatted ``f"{f:.0e}"``, e.g. ``1e-03``): ``tar_at_far_{f}``,
    ``threshold_at_far_{f}`` and ``tar_at_far_{f}_supported`` (1.0/0.0; NaN values when
    unsupported, see `tar_at_far`); ``num_genuine`` and ``num_impostor``.
  """
  scores, labels = _check_scores_labels(scores, labels)
  eer, eer_thr = equal_error_rate(scores, labels)
  out = {
    "auc": roc_auc(scores, labels),
    "average_precision": average_precision(scores, labels),
    "eer": eer,
    "eer_threshold": eer_thr,
  }
  for far in fars:
    r = tar_at_far(scores, labels, far)
    key = far_key(far)
    out[f"tar_at_far_{key}"] = r["tar"]
    out[f"threshold_at_far_{key}"] = r["threshold"]
    out[f"tar_at_far_{key}_supported"] = r["supported"]
  out["num_genuine"] = float(labels.sum())
  out["num_impostor"] = float((labels == 0).sum())
  return out


def select_threshold(
  scores: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  method: str = "max_accuracy",
  target_far: float | None = None,
) -> float:
  """Choose a decision threshold on validation scores.

  Args:
    scores: [N] validation similarity scores.
    labels: [N] validation labels.
    method: ``"max_accuracy"`` (highest accuracy; the strictest threshold among ties,
      placed halfway to the next distinct score), ``"eer"`` (the interpolated EER
      threshold) or ``"far"`` (the loosest threshold with validation FAR <= ``target_far``,
      halfway to the next distinct score).
    target_far: required for ``method="far"``.

  Returns:
    The threshold; apply it as ``score >= threshold``.
  """
  scores, labels = _check_scores_labels(scores, labels)
  if method == "max_accuracy":
    fps, tps, thresholds = _cumulative_counts(scores, labels)
    num_neg = fps[-1]
    accuracy = (tps + (num_neg - fps)) / labels.size
    return _midpoint_threshold(thresholds, int(np.argmax(accuracy)))
  if method == "eer":
    return equal_error_rate(scores, labels)[1]
  if method == "far":
    if target_far is None:
      raise ValueError("method='far' needs target_far")
    r = tar_at_far(scores, labels, target_far)
    if not r["supported"]:
      raise ValueError(
        f"target_far={target_far} needs at least {int(np.ceil(1 / target_far))} impostor "
        f"pairs in the validation split, got {int((labels == 0).sum())}"
      )
    return r["threshold"]
  raise ValueError(f"method must be 'max_accuracy', 'eer' or 'far', got {method!r}")


def metrics_at_threshold(
  scores: np.typing.ArrayLike, labels: np.typing.ArrayLike, threshold: float
) -> dict[str, float]:
  """Decision metrics for the rule ``score >= threshold``.

  Returns:
    Flat dict: ``threshold``, ``accuracy``, ``precision`` (NaN when nothing is accepted),
    ``recall`` (= TAR), ``f1``, ``far``, ``frr`` and the confusion matrix as counts
    ``tn``, ``fp``, ``fn``, ``tp`` (scikit-learn's [[tn, fp], [fn, tp]] layout).
  """
  scores, labels = _check_scores_labels(scores, labels)
  pred = scores >= threshold
  tp = float(np.sum(pred & (labels == 1)))
  fp = float(np.sum(pred & (labels == 0)))
  fn = float(np.sum(~pred & (labels == 1)))
  tn = float(np.sum(~pred & (labels == 0)))
  precision = tp / (tp + fp) if tp + fp else float("nan")
  recall = tp / (tp + fn)
  f1 = 2 * tp / (2 * tp + fp + fn)
  return {
    "threshold": float(threshold),
    "accuracy": (tp + tn) / labels.size,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "far": fp / (fp + tn),
    "frr": fn / (fn + tp),
    "tn": tn,
    "fp": fp,
    "fn": fn,
    "tp": tp,
  }


def verification_report(
  val_scores: np.typing.ArrayLike,
  val_labels: np.typing.ArrayLike,
  test_scores: np.typing.ArrayLike,
  test_labels: np.typing.ArrayLike,
  method: str = "max_accuracy",
  target_far: float | None = None,
  fars: Sequence[float] = DEFAULT_FARS,
) -> dict[str, float]:
  """Threshold-free metrics on test plus decision metrics at a threshold chosen on validation.

  Returns:
    `verification_metrics` of the test scores merged with `metrics_at_threshold` of the
    test scores at ``select_threshold(val_scores, val_labels, method, target_far)``.
  """
  threshold = select_threshold(val_scores, val_labels, method, target_far)
  return {
    **verification_metrics(test_scores, test_labels, fars),
    **metrics_at_threshold(test_scores, test_labels, threshold),
  }


def k_fold_accuracy(
  scores: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  num_folds: int = 10,
  fold_ids: np.typing.ArrayLike | None = None,
) -> dict[str, float]:
  """k-fold verification accuracy as in the insightface LFW protocol.

  For each fold the max-accuracy threshold is chosen on the other folds and accuracy is
  measured on the held-out fold. Folds are contiguous blocks of the pair list by default
  (insightface uses ``KFold(n_splits=10, shuffle=False)``, matching the LFW pairs file,
  which lists its 10 folds one after another); pass ``fold_ids`` to set them.
  Difference from insightface: the threshold search is exact over all distinct scores
  rather than over a fixed grid of distances ``np.arange(0, 4, 0.01)``.

  Returns:
    ``accuracy_mean``, ``accuracy_std`` (population std over folds, as insightface's
    ``np.std``), ``threshold_mean`` and ``num_folds``.
  """
  scores, labels = _check_scores_labels(scores, labels)
  if fold_ids is None:
    fold_ids = np.arange(scores.size) * num_folds // scores.size
  fold_ids = np.asarray(fold_ids).reshape(-1)
  if fold_ids.shape != scores.shape:
    raise ValueError(f"fold_ids must have shape {scores.shape}, got {fold_ids.shape}")
  accs, thrs = [], []
  for f in np.unique(fold_ids):
    test = fold_ids == f
    thr = select_threshold(scores[~test], labels[~test], "max_accuracy")
    pred = scores[test] >= thr
    accs.append(float(np.mean(pred == (labels[test] == 1))))
    thrs.append(thr)
  return {
    "accuracy_mean": float(np.mean(accs)),
    "accuracy_std": float(np.std(accs)),
    "threshold_mean": float(np.mean(thrs)),
    "num_folds": float(len(accs)),
  }


def bootstrap_ci(
  statistic: Callable[..., float],
  samples: Sequence[np.typing.ArrayLike],
  num_resamples: int = 1000,
  confidence: float = 0.95,
  seed: int = 0,
) -> tuple[float, float]:
  """Percentile bootstrap interval of ``statistic(*samples)``.

  Each array in ``samples`` is treated as an independent sample and resampled with
  replacement on its own (so passing genuine and impostor scores separately keeps both
  counts fixed: a stratified bootstrap). Arrays are resampled along axis 0.

  Reference: Efron & Tibshirani 1993, An Introduction to the Bootstrap, ch. 13.

  Args:
    statistic: function of the arrays returning a float.
    samples: the arrays.
    num_resamples: bootstrap replicates.
    confidence: central coverage of the interval.
    seed: seed for `numpy.random.default_rng`.

  Returns:
    (lower, upper) percentiles of the replicates (NaN replicates are ignored).
  """
  rng = np.random.default_rng(seed)
  arrays = [np.asarray(s) for s in samples]
  reps = np.empty(num_resamples)
  for r in range(num_resamples):
    resampled = [a[rng.integers(0, a.shape[0], a.shape[0])] for a in arrays]
    reps[r] = statistic(*resampled)
  alpha = (1 - confidence) / 2
  lo, hi = np.nanquantile(reps, [alpha, 1 - alpha])
  return float(lo), float(hi)


def split_by_label(
  scores: np.typing.ArrayLike, labels: np.typing.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
  """(genuine scores, impostor scores) from scores and 0/1 labels."""
  scores, labels = _check_scores_labels(scores, labels)
  return scores[labels == 1], scores[labels == 0]
