"""Score-level fusion of two or more matchers, fitted on validation and applied to test.

Scores are arranged as ``[N, M]``: N comparisons (pairs, or probe-identity pairs) by M
matchers, each a similarity (higher = more likely the same identity). Labels are 1 for
genuine and 0 for impostor.

Normalisations (Jain, Nandakumar & Ross 2005, "Score normalization in multimodal
biometric systems", Pattern Recognition 38(12)):
- ``"min_max"``: (s - min) / (max - min), min and max of the validation scores.
- ``"z_score"``: (s - mean) / std of the validation scores.
- ``"tanh"``: 0.5 (tanh(0.01 (s - mu_GH) / sigma_GH) + 1), mu_GH and sigma_GH the Hampel
  estimates of the location and spread of the *genuine* validation scores.
- ``"none"``: unchanged.

Rules (sum, max, min and product as in Jain et al. 2005 and Kittler et al. 1998, "On
combining classifiers", IEEE TPAMI 20(3)):
- ``"sum"``: mean of the normalised scores.
- ``"weighted_sum"``: sum with weights proportional to 1 / EER of each matcher on
  validation ("matcher weighting", Snelick et al. 2005, IEEE TPAMI 27(3)).
- ``"max"``, ``"min"``, ``"product"``.
- ``"likelihood_ratio"``: log f_genuine(s) - log f_impostor(s), both densities Gaussian
  mixtures over the M-dimensional normalised score vector, the number of components
  chosen by BIC (Nandakumar, Chen, Dass & Jain 2008, "Likelihood ratio-based biometric
  score fusion", IEEE TPAMI 30(2), use mixtures chosen by a related criterion).
- ``"logistic_regression"``: the log-odds of an L2-regularised logistic regression on the
  normalised scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.mixture import GaussianMixture

from jaxsim.evaluate import verification

NORMALIZATIONS = ("none", "min_max", "z_score", "tanh")
RULES = ("sum", "weighted_sum", "max", "min", "product", "likelihood_ratio", "logistic_regression")


def _check_matrix(scores, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
  s = np.asarray(scores, np.float64)
  if s.ndim == 1:
    s = s[:, None]
  if s.ndim != 2:
    raise ValueError(f"scores must be [N, M] (N comparisons, M matchers), got {s.shape}")
  if not np.all(np.isfinite(s)):
    raise ValueError("scores contain NaN or inf")
  if labels is None:
    return s, None
  y = np.asarray(labels).reshape(-1)
  if y.size != s.shape[0] or not np.all(np.isin(y, (0, 1))):
    raise ValueError(f"labels must be [{s.shape[0]}] values in {{0, 1}}, got shape {y.shape}")
  return s, y.astype(np.int64)


def hampel_location_scale(
  x: np.typing.ArrayLike,
  quantiles: tuple[float, float, float] = (0.7, 0.85, 0.95),
  max_iter: int = 100,
) -> tuple[float, float]:
  """Hampel M-estimates of location and scale.

  The three-part redescending psi has knees a < b < c set to the given quantiles of the
  absolute deviations from the median (70%, 85%, 95% as suggested by Jain et al. 2005).
  Location is solved by iteratively reweighted means with weights psi(u) / u; scale is
  the square root of the Hampel-weighted mean squared deviation at that location, so
  points beyond c (outliers) influence neither.

  Reference: Hampel, Ronchetti, Rousseeuw & Stahel 1986, Robust Statistics, sec. 2.6.

  Returns:
    (location, scale).
  """
  x = np.asarray(x, np.float64).reshape(-1)
  if x.size < 2:
    raise ValueError("need at least 2 scores for Hampel estimates")
  mu = np.median(x)
  a, b, c = np.quantile(np.abs(x - mu), quantiles)
  if not a > 0:
    return float(mu), float(x.std())
  c = max(c, b + 1e-12 * max(1.0, abs(b)))

  def weights(u):
    au = np.abs(u)
    with np.errstate(divide="ignore", invalid="ignore"):
      w = np.where(
        au < a, 1.0, np.where(au < b, a / au, np.where(au < c, a * (c - au) / ((c - b) * au), 0.0))
      )
    return w

  for _ in range(max_iter):
    w = weights(x - mu)
    new = np.sum(w * x) / np.sum(w)
    if abs(new - mu) <= 1e-12 * max(1.0, abs(mu)):
      mu = new
      break
    mu = new
  w = weights(x - mu)
  scale = np.sqrt(np.sum(w * (x - mu) ** 2) / np.sum(w))
  return float(mu), float(scale)


def fit_normalizer(
  scores: np.typing.ArrayLike, labels: np.typing.ArrayLike | None = None, method: str = "z_score"
) -> dict[str, float]:
  """Fit one matcher's normalisation on validation scores ([N]); tanh needs labels."""
  s = np.asarray(scores, np.float64).reshape(-1)
  if method == "none":
    return {"method": "none"}
  if method == "min_max":
    lo, hi = float(s.min()), float(s.max())
    return {"method": "min_max", "min": lo, "max": hi}
  if method == "z_score":
    return {"method": "z_score", "mean": float(s.mean()), "std": float(s.std())}
  if method == "tanh":
    if labels is None:
      raise ValueError("tanh normalisation is fitted on genuine scores: pass labels")
    genuine = s[np.asarray(labels).reshape(-1) == 1]
    mu, sigma = hampel_location_scale(genuine)
    return {"method": "tanh", "location": mu, "scale": sigma}
  raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {method!r}")


def apply_normalizer(params: dict[str, Any], scores: np.typing.ArrayLike) -> np.ndarray:
  """Apply a `fit_normalizer` result."""
  s = np.asarray(scores, np.float64)
  m = params["method"]
  if m == "none":
    return s
  if m == "min_max":
    return (s - params["min"]) / max(params["max"] - params["min"], 1e-12)
  if m == "z_score":
    return (s - params["mean"]) / max(params["std"], 1e-12)
  if m == "tanh":
    return 0.5 * (np.tanh(0.01 * (s - params["location"]) / max(params["scale"], 1e-12)) + 1)
  raise ValueError(f"unknown normalization {m!r}")


def _fit_gmm(x: np.ndarray, max_components: int, seed: int) -> GaussianMixture:
  best, best_bic = None, np.inf
  for n in range(1, min(max_components, x.shape[0]) + 1):
    gmm = GaussianMixture(n, covariance_type="full", reg_covar=1e-6, random_state=seed).fit(x)
    bic = gmm.bic(x)
    if bic < best_bic:
      best, best_bic = gmm, bic
  return best


def fit_fusion(
  scores: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  rule: str = "sum",
  normalization: str = "z_score",
  max_components: int = 3,
  seed: int = 0,
) -> dict[str, Any]:
  """Fit normalisers and the fusion rule on validation scores.

  Args:
    scores: [N, M] validation scores of M matchers.
    labels: [N] 1 = genuine, 0 = impostor.
    rule: one of `RULES`.
    normalization: one of `NORMALIZATIONS`, fitted per matcher.
    max_components: largest mixture tried for ``likelihood_ratio``.
    seed: seed for the mixture fits.

  Returns:
    A model dict for `apply_fusion` (it holds fitted scikit-learn objects for the
    likelihood-ratio and logistic-regression rules).
  """
  s, y = _check_matrix(scores, labels)
  if rule not in RULES:
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
  if normalization not in NORMALIZATIONS:
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
  normalizers = [fit_normalizer(s[:, m], y, normalization) for m in range(s.shape[1])]
  model: dict[str, Any] = {"rule": rule, "normalizers": normalizers}
  z = _normalize_all(normalizers, s)
  if rule == "weighted_sum":
    eers = np.array([verification.equal_error_rate(z[:, m], y)[0] for m in range(s.shape[1])])
    inv = 1.0 / np.maximum(eers, 1e-6)
    model["weights"] = inv / inv.sum()
  elif rule == "likelihood_ratio":
    model["genuine_density"] = _fit_gmm(z[y == 1], max_components, seed)
    model["impostor_density"] = _fit_gmm(z[y == 0], max_components, seed)
  elif rule == "logistic_regression":
    model["classifier"] = LogisticRegression(C=1.0).fit(z, y)
  return model


def _normalize_all(normalizers, s: np.ndarray) -> np.ndarray:
  if len(normalizers) != s.shape[1]:
    raise ValueError(f"model fitted for {len(normalizers)} matchers, scores have {s.shape[1]}")
  return np.stack([apply_normalizer(p, s[:, m]) for m, p in enumerate(normalizers)], axis=1)


def apply_fusion(model: dict[str, Any], scores: np.typing.ArrayLike) -> np.ndarray:
  """Fused [N] scores (higher = more likely genuine) from a `fit_fusion` model."""
  s, _ = _check_matrix(scores)
  z = _normalize_all(model["normalizers"], s)
  rule = model["rule"]
  if rule == "sum":
    return z.mean(1)
  if rule == "weighted_sum":
    return z @ model["weights"]
  if rule == "max":
    return z.max(1)
  if rule == "min":
    return z.min(1)
  if rule == "product":
    return z.prod(1)
  if rule == "likelihood_ratio":
    return model["genuine_density"].score_samples(z) - model["impostor_density"].score_samples(z)
  if rule == "logistic_regression":
    return model["classifier"].decision_function(z)
  raise ValueError(f"unknown rule {rule!r}")


def z_score_ensemble(
  member_scores: Mapping[str, Mapping[str, np.typing.ArrayLike]],
  val_labels: np.typing.ArrayLike,
) -> dict[str, np.ndarray]:
  """An ensemble of matchers: each member's scores z-normalised on its validation scores,
  then averaged (the sum rule fitted on validation).

  Args:
    member_scores: ``{member: {split: [N_split] scores}}`` with a "val" split; every
      member has the same splits.
    val_labels: [N_val] labels of the validation pairs.

  Returns:
    ``{split: fused [N_split] scores}`` for every split of the members.
  """
  names = list(member_scores)
  splits = list(member_scores[names[0]])
  stacked = {s: np.stack([member_scores[n][s] for n in names], axis=1) for s in splits}
  model = fit_fusion(stacked["val"], val_labels, "sum", "z_score")
  return {s: apply_fusion(model, stacked[s]) for s in splits}


def fusion_comparison(
  val_scores: np.typing.ArrayLike,
  val_labels: np.typing.ArrayLike,
  test_scores: np.typing.ArrayLike,
  test_labels: np.typing.ArrayLike,
  rules: tuple[str, ...] = RULES,
  normalization: str = "z_score",
  seed: int = 0,
) -> dict[str, float]:
  """Test AUC and EER of each single matcher and each fusion rule (all fitted on validation).

  Returns:
    Flat dict: ``matcher_{m}_auc``, ``matcher_{m}_eer``, ``{rule}_auc``, ``{rule}_eer``.
  """
  sv, yv = _check_matrix(val_scores, val_labels)
  st, yt = _check_matrix(test_scores, test_labels)
  out = {}
  for m in range(st.shape[1]):
    out[f"matcher_{m}_auc"] = verification.roc_auc(st[:, m], yt)
    out[f"matcher_{m}_eer"] = verification.equal_error_rate(st[:, m], yt)[0]
  for rule in rules:
    fused = _fit_apply(sv, yv, st, rule, normalization, seed)
    out[f"{rule}_auc"] = verification.roc_auc(fused, yt)
    out[f"{rule}_eer"] = verification.equal_error_rate(fused, yt)[0]
  return out


def _fit_apply(val_scores, val_labels, test_scores, rule, normalization, seed) -> np.ndarray:
  # Products of signed z-scores are not monotone; the product rule gets min-max inputs.
  norm = "min_max" if rule == "product" and normalization == "z_score" else normalization
  return apply_fusion(fit_fusion(val_scores, val_labels, rule, norm, seed=seed), test_scores)


def _subject_folds(subjects_a, subjects_b, num_folds: int, seed) -> tuple[np.ndarray, np.ndarray]:
  """Each subject to one of `num_folds` folds at random (seeded); the fold of each pair's
  two sides."""
  sa, sb = np.asarray(subjects_a).reshape(-1), np.asarray(subjects_b).reshape(-1)
  ids = np.unique(np.concatenate([sa, sb]))
  folds = np.random.default_rng(seed).permutation(ids.size) % num_folds
  fold_of = dict(zip(ids, folds, strict=True))
  return np.array([fold_of[v] for v in sa]), np.array([fold_of[v] for v in sb])


def select_fusion(
  scores: np.typing.ArrayLike,
  labels: np.typing.ArrayLike,
  subjects_a: np.typing.ArrayLike,
  subjects_b: np.typing.ArrayLike,
  rules: tuple[str, ...] = RULES,
  normalizations: tuple[str, ...] = ("z_score",),
  num_folds: int = 5,
  seed: int = 0,
) -> dict[str, Any]:
  """Choose a fusion rule and normalisation on validation pairs alone, by cross-fitting.

  Rules that are fitted (weights, densities, a classifier) look better on the scores
  they were fitted on, so each candidate is scored out of sample: the validation
  subjects are split into ``num_folds`` folds, the candidate is fitted on the pairs of
  the other folds' subjects and scored on the pairs whose first subject is in the held-out
  fold; the pooled held-out scores give its cross-fitted AUC. The best candidate (ties:
  the earlier in ``rules`` x ``normalizations``) is the selection; fit it on all the
  validation pairs before applying it to test. Test scores play no part.

  Returns:
    ``rule``, ``normalization``, ``val_auc`` (cross-fitted AUC of the choice),
    ``selected_on`` ("val"), and ``candidates``: ``{f"{rule}/{normalization}": val_auc}``.
  """
  s, y = _check_matrix(scores, labels)
  fa, fb = _subject_folds(subjects_a, subjects_b, num_folds, [seed, 0xF01])
  candidates: dict[str, float] = {}
  for rule in rules:
    for norm in normalizations:
      out = np.full(y.size, np.nan)
      for k in range(num_folds):
        held, fit = fa == k, (fa != k) & (fb != k)
        if held.any() and 0 < y[fit].sum() < fit.sum():
          out[held] = _fit_apply(s[fit], y[fit], s[held], rule, norm, seed)
      ok = np.isfinite(out)
      candidates[f"{rule}/{norm}"] = (
        verification.roc_auc(out[ok], y[ok]) if 0 < y[ok].sum() < ok.sum() else float("nan")
      )
  best = max(candidates, key=lambda c: -np.inf if np.isnan(candidates[c]) else candidates[c])
  rule, norm = best.split("/")
  return {
    "rule": rule,
    "normalization": norm,
    "val_auc": candidates[best],
    "selected_on": "val",
    "candidates": candidates,
  }


def fusion_report(
  val_scores: np.typing.ArrayLike,
  val_labels: np.typing.ArrayLike,
  val_subjects: tuple[np.ndarray, np.ndarray],
  test_scores: np.typing.ArrayLike,
  test_labels: np.typing.ArrayLike,
  test_subjects: tuple[np.ndarray, np.ndarray],
  rules: tuple[str, ...] = RULES,
  normalizations: tuple[str, ...] = ("z_score",),
  num_resamples: int = 1000,
  seed: int = 0,
) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
  """The fusion protocol: choose on validation (`select_fusion`), report every candidate on test.

  Each candidate is fitted on all the validation pairs and scored on test with 95%
  intervals by a bootstrap over test subjects (`clustered.subject_bootstrap`). The best
  single matcher is also chosen on validation (by AUC), and the chosen fusion's AUC gain
  over it gets a subject interval too.

  Returns:
    (candidates, best): ``candidates[f"{rule}/{norm}"]`` holds ``val_auc_crossfit`` and
    the test ``auc``, ``eer`` with ``_ci_low`` / ``_ci_high``; ``best`` holds ``rule``,
    ``normalization``, ``selected_on`` ("val"), ``val_auc``, the test figures of the
    choice, ``best_single_on_val`` (a matcher column index) and
    ``auc_gain_over_best_single`` with its interval.
  """
  from jaxsim.evaluate import clustered  # noqa: PLC0415 -- clustered imports this package

  sv, yv = _check_matrix(val_scores, val_labels)
  st, yt = _check_matrix(test_scores, test_labels)
  choice = select_fusion(sv, yv, *val_subjects, rules, normalizations, seed=seed)

  def interval(statistic):
    return clustered.subject_bootstrap(
      statistic, *test_subjects, num_resamples=num_resamples, seed=seed
    )

  candidates, fused = {}, {}
  for rule in rules:
    for norm in normalizations:
      key = f"{rule}/{norm}"
      fused[key] = apply_fusion(fit_fusion(sv, yv, rule, norm, seed=seed), st)
      candidates[key] = {
        "val_auc_crossfit": choice["candidates"][key],
        **interval(clustered.verification_statistic(fused[key], yt)),
      }
  chosen = f"{choice['rule']}/{choice['normalization']}"
  single = int(np.argmax([verification.roc_auc(sv[:, m], yv) for m in range(sv.shape[1])]))
  fa = clustered.verification_statistic(fused[chosen], yt)
  fs = clustered.verification_statistic(st[:, single], yt)
  gain = interval(lambda w: fa(w)["auc"] - fs(w)["auc"])
  best = {
    **{k: choice[k] for k in ("rule", "normalization", "selected_on", "val_auc")},
    **{k: v for k, v in candidates[chosen].items() if k != "val_auc_crossfit"},
    "best_single_on_val": single,
    "auc_gain_over_best_single": gain["value"],
    "auc_gain_ci_low": gain["value_ci_low"],
    "auc_gain_ci_high": gain["value_ci_high"],
  }
  return candidates, best


def matchers_and_fusion(
  scores: dict[str, dict[str, np.ndarray]],
  labels: dict[str, np.ndarray],
  subjects: dict[str, tuple[np.ndarray, np.ndarray]],
  threshold_method: str = "eer",
  rules: tuple[str, ...] = RULES,
  normalizations: tuple[str, ...] = ("z_score",),
  num_resamples: int = 1000,
  seed: int = 0,
) -> dict[str, Any]:
  """Each matcher at its validation threshold, then their fusion (`fusion_report`), on test.

  Thresholds, the fusion normalisation and the rule are fitted and chosen on the
  validation pairs (the rule cross-fitted over validation subjects); test labels enter
  nothing but the test figures, which carry 95% intervals by a bootstrap over test
  subjects.

  Args:
    scores: ``{matcher: {"val": [Nv], "test": [Nt]}}`` scores of the same pairs.
    labels: ``{"val": [Nv], "test": [Nt]}``.
    subjects: ``{"val": (subjects_a, subjects_b), "test": (...)}`` of each pair.

  Returns:
    ``{matcher: test metrics at its threshold, with intervals and ``val_auc``}``, plus
    ``fusion`` (every candidate) and ``fusion_best`` (the choice; ``best_single_on_val``
    names a matcher).
  """
  from jaxsim.evaluate import clustered  # noqa: PLC0415 -- clustered imports this package

  yv, yt = labels["val"], labels["test"]
  names = tuple(scores)
  out: dict[str, Any] = {}
  for name in names:
    thr = verification.select_threshold(scores[name]["val"], yv, threshold_method)
    out[name] = verification.metrics_at_threshold(scores[name]["test"], yt, thr)
    out[name].update(
      clustered.subject_bootstrap(
        clustered.verification_statistic(scores[name]["test"], yt, threshold=thr),
        *subjects["test"],
        num_resamples=num_resamples,
        seed=seed,
      )
    )
    out[name]["val_auc"] = verification.roc_auc(scores[name]["val"], yv)
  out["fusion"], best = fusion_report(
    np.stack([scores[n]["val"] for n in names], 1),
    yv,
    subjects["val"],
    np.stack([scores[n]["test"] for n in names], 1),
    yt,
    subjects["test"],
    rules,
    normalizations,
    num_resamples,
    seed,
  )
  out["fusion_best"] = {**best, "best_single_on_val": names[best["best_single_on_val"]]}
  return out


# Weights of the learned matcher (column 0) tried by `learned_plus_baseline`; the baseline
# (column 1) gets 1 - w.
WEIGHT_GRID = tuple(float(w) for w in np.round(np.linspace(0.0, 1.0, 21), 2))


def _weighted(val: np.ndarray, other: np.ndarray, weight: float) -> np.ndarray:
  """weight x z(column 0) + (1 - weight) x z(column 1), z fitted on `val`."""
  z = [apply_normalizer(fit_normalizer(val[:, m]), other[:, m]) for m in (0, 1)]
  return weight * z[0] + (1.0 - weight) * z[1]


def fit_weight(val_scores: np.ndarray, val_labels: np.ndarray, grid=WEIGHT_GRID) -> float:
  """The weight of matcher 0 in a z-normalised weighted sum of two matchers that gives
  the highest validation AUC; ties go to the largest weight (the least fusion)."""
  s, y = _check_matrix(val_scores, val_labels)
  aucs = [verification.roc_auc(_weighted(s, s, w), y) for w in grid]
  best = max(aucs)
  return max(w for w, a in zip(grid, aucs, strict=True) if a >= best - 1e-12)


def learned_plus_baseline(
  val_scores: np.typing.ArrayLike,
  val_labels: np.typing.ArrayLike,
  val_subjects: tuple[np.ndarray, np.ndarray],
  other_scores: Mapping[str, np.typing.ArrayLike],
  num_folds: int = 5,
  seed: int = 0,
) -> dict[str, Any]:
  """A learned matcher fused with a classical one, if validation says the fusion helps.

  Scores are ``[N, 2]``: the learned matcher, then the baseline. The fusion is
  ``w z(learned) + (1 - w) z(baseline)`` with z-scores fitted on validation pairs and
  ``w`` from `WEIGHT_GRID` (1 = the learned matcher alone) chosen by validation AUC.
  A weight chosen on the pairs it is scored on always looks at least as good as the
  learned matcher alone, so the decision is made out of sample, as in `select_fusion`:
  over ``num_folds`` folds of the validation subjects, ``w`` is fitted on the pairs of
  the other folds' subjects and scored on the pairs whose first subject is held out.
  The fusion is used when its pooled cross-fitted AUC beats the learned matcher's on the
  same pairs; its weight is then refitted on all validation pairs (and may come out as 1,
  the learned matcher alone). Test plays no part.

  Args:
    val_scores: [N_val, 2]; val_labels: [N_val].
    val_subjects: the subjects of each validation pair's two sides.
    other_scores: ``{split: [N_split, 2]}`` to fuse with the chosen weight.

  Returns:
    ``weight`` (1.0 when not fused), ``fused`` (weight < 1), ``val_auc_cross_fitted`` and
    ``learned_val_auc_cross_fitted`` (the two sides of the decision, on the same pairs),
    ``fold_weights``, and ``scores``: ``{split: fused [N_split]}`` (z-scores, also for
    "val").
  """
  s, y = _check_matrix(val_scores, val_labels)
  if s.shape[1] != 2:
    raise ValueError(f"learned_plus_baseline fuses two matchers, got {s.shape[1]} columns")
  fa, fb = _subject_folds(*val_subjects, num_folds, [seed, 0xF02])
  fused, alone, fold_weights = np.full(y.size, np.nan), np.full(y.size, np.nan), []
  for k in range(num_folds):
    held, fit = fa == k, (fa != k) & (fb != k)
    if not held.any() or not 0 < y[fit].sum() < fit.sum():
      continue
    w = fit_weight(s[fit], y[fit])
    fold_weights.append(w)
    fused[held] = _weighted(s[fit], s[held], w)
    alone[held] = _weighted(s[fit], s[held], 1.0)
  ok = np.isfinite(fused)
  if not 0 < y[ok].sum() < ok.sum():
    raise ValueError(
      "learned_plus_baseline: the validation folds hold no genuine or no impostor pairs; "
      "use more validation subjects or fewer folds"
    )
  # Scored fold by fold with each fold's own z-scores, then pooled (as `select_fusion`).
  auc_fused, auc_alone = (
    verification.roc_auc(fused[ok], y[ok]),
    verification.roc_auc(alone[ok], y[ok]),
  )
  weight = fit_weight(s, y) if auc_fused > auc_alone else 1.0
  return {
    "weight": weight,
    "fused": weight < 1.0,  # the refitted weight can still be 1: the learned matcher alone
    "val_auc_cross_fitted": auc_fused,
    "learned_val_auc_cross_fitted": auc_alone,
    "fold_weights": fold_weights,
    "selected_on": "val",
    "scores": {
      split: _weighted(s, _check_matrix(v)[0], weight)
      for split, v in {"val": s, **other_scores}.items()
    },
  }
