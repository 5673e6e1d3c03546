"""Score normalisation and fusion on constructed data with known answers."""

import numpy as np
import pytest
from scipy import stats

from jaxsim.evaluate import fusion, verification


def _gaussian_pairs(seed, n=6000, mean=(1.0, 1.0)):
  """Genuine ~ N(mean, I), impostor ~ N(0, I): the true log-LR is <mean, s> - |mean|^2 / 2."""
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  return rng.normal(0, 1, (n, 2)) + y[:, None] * np.asarray(mean), y


def test_normalizers():
  s = np.array([2.0, 4.0, 6.0, 12.0])
  mm = fusion.fit_normalizer(s, method="min_max")
  np.testing.assert_allclose(fusion.apply_normalizer(mm, s), [0, 0.2, 0.4, 1])
  z = fusion.apply_normalizer(fusion.fit_normalizer(s, method="z_score"), s)
  assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
  th = fusion.fit_normalizer(s, np.ones(4), method="tanh")
  out = fusion.apply_normalizer(th, s)
  assert np.all((out > 0) & (out < 1)) and np.all(np.diff(out) > 0)


def test_hampel_estimates_ignore_gross_outliers():
  rng = np.random.default_rng(0)
  clean = rng.normal(3, 1, 1900)
  loc, scale = fusion.hampel_location_scale(np.r_[clean, np.full(100, 1000.0)])
  assert loc == pytest.approx(3, abs=0.1) and 0.5 < scale < 1.2
  loc_sym, _ = fusion.hampel_location_scale(clean)
  assert loc_sym == pytest.approx(clean.mean(), abs=0.05)


def test_logistic_regression_recovers_the_true_log_likelihood_ratio():
  s, y = _gaussian_pairs(0, 20_000)
  model = fusion.fit_fusion(s, y, "logistic_regression", "none")
  clf = model["classifier"]
  np.testing.assert_allclose(clf.coef_[0], [1, 1], atol=0.06)
  assert clf.intercept_[0] == pytest.approx(-1.0, abs=0.06)


def test_likelihood_ratio_fusion_ranks_like_the_true_ratio():
  s, y = _gaussian_pairs(1, mean=(1.5, 0.5))
  model = fusion.fit_fusion(s, y, "likelihood_ratio", "none")
  st, _ = _gaussian_pairs(2, mean=(1.5, 0.5))
  true_llr = st @ np.array([1.5, 0.5])
  assert stats.spearmanr(fusion.apply_fusion(model, st), true_llr).statistic > 0.97


def test_weighted_sum_prefers_the_better_matcher_and_fusion_helps():
  sv, yv = _gaussian_pairs(3, mean=(1.5, 0.0))  # matcher 1 carries no information
  model = fusion.fit_fusion(sv, yv, "weighted_sum", "z_score")
  assert model["weights"][0] > 0.55
  sv2, yv2 = _gaussian_pairs(4)
  st2, yt2 = _gaussian_pairs(5)
  out = fusion.fusion_comparison(sv2, yv2, st2, yt2, rules=("sum", "max", "min", "product"))
  best_single = max(out["matcher_0_auc"], out["matcher_1_auc"])
  assert out["sum_auc"] > best_single + 0.03  # two independent equal matchers: sum is optimal
  fused = fusion.apply_fusion(fusion.fit_fusion(sv2, yv2, "max", "z_score"), st2)
  assert verification.roc_auc(fused, yt2) == pytest.approx(out["max_auc"])


def test_bad_rule_raises():
  with pytest.raises(ValueError, match="rule"):
    fusion.fit_fusion(np.zeros((4, 2)), [0, 1, 0, 1], "median")


def test_z_score_ensemble_averages_members_normalised_on_validation():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 2, 200)
  a = {"val": rng.normal(size=200) + labels, "test": rng.normal(size=50)}
  b = {"val": 10 * a["val"] + 3, "test": 10 * a["test"] + 3}  # same matcher, other scale
  fused = fusion.z_score_ensemble({"a": a, "b": b}, labels)
  z = (a["test"] - a["val"].mean()) / a["val"].std()
  np.testing.assert_allclose(fused["test"], z, atol=1e-9)  # scale and offset removed
  assert set(fused) == {"val", "test"}
  np.testing.assert_allclose(fused["val"].mean(), 0.0, atol=1e-9)


def _subject_pairs(seed, mean, n=4000, subjects=40):
  """Gaussian pair scores (as `_gaussian_pairs`) with the two subjects of each pair."""
  s, y = _gaussian_pairs(seed, n, mean)
  rng = np.random.default_rng(seed + 100)
  a = rng.integers(0, subjects, n)
  b = np.where(y == 1, a, (a + rng.integers(1, subjects, n)) % subjects)
  return s, y, (a, b)


def test_learned_plus_baseline_fuses_two_informative_matchers():
  sv, yv, subjects = _subject_pairs(6, mean=(1.0, 1.0))
  st, yt = _gaussian_pairs(7)
  out = fusion.learned_plus_baseline(sv, yv, subjects, {"test": st})
  assert out["fused"] and out["val_auc_cross_fitted"] > out["learned_val_auc_cross_fitted"]
  assert 0.3 <= out["weight"] <= 0.7  # equal, independent matchers: equal weights are best
  assert verification.roc_auc(out["scores"]["test"], yt) > verification.roc_auc(st[:, 0], yt) + 0.03
  assert set(out["scores"]) == {"val", "test"} and out["selected_on"] == "val"


def test_learned_plus_baseline_keeps_the_learned_matcher_when_the_baseline_is_noise():
  sv, yv, subjects = _subject_pairs(8, mean=(1.5, 0.0))  # the baseline carries nothing
  st, _ = _gaussian_pairs(9, mean=(1.5, 0.0))
  out = fusion.learned_plus_baseline(sv, yv, subjects, {"test": st})
  assert not out["fused"] and out["weight"] == 1.0
  z = (st[:, 0] - sv[:, 0].mean()) / sv[:, 0].std()
  np.testing.assert_allclose(out["scores"]["test"], z, atol=1e-9)


def test_fit_weight_ties_go_to_the_learned_matcher():
  y = np.array([0, 0, 1, 1] * 25)
  s = np.stack([y + 0.1 * np.arange(100) / 100, np.zeros(100)], 1)  # matcher 0 is perfect
  assert fusion.fit_weight(s, y) == 1.0


def test_learned_plus_baseline_rejects_other_than_two_matchers():
  sv, yv, subjects = _subject_pairs(10, mean=(1.0, 1.0), n=200)
  with pytest.raises(ValueError, match="two matchers"):
    fusion.learned_plus_baseline(np.c_[sv, sv[:, :1]], yv, subjects, {})
