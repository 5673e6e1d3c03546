"""The exact sqrt(2) null against Monte Carlo; overlap statistics against known Gaussian values."""

import numpy as np
import pytest
from scipy import integrate, stats

from jaxsim.evaluate import overlap


def _random_unit_distances(rng, n, d):
  x = rng.standard_normal((2, n, d))
  x /= np.linalg.norm(x, axis=-1, keepdims=True)
  return np.linalg.norm(x[0] - x[1], axis=-1)


@pytest.mark.parametrize("dim", [3, 16, 256])
def test_null_moments_match_monte_carlo(dim):
  rng = np.random.default_rng(dim)
  n = 40_000
  d = _random_unit_distances(rng, n, dim)
  mean, std = overlap.null_distance_moments(dim)
  assert abs(d.mean() - mean) < 5 * std / np.sqrt(n)
  # SE of the sample variance ~ var * sqrt(2 / n) for near-normal data; 5 SE of slack.
  assert abs(d.var() - std**2) < 5 * std**2 * np.sqrt(2 / n) * (2 if dim == 3 else 1)
  assert overlap.null_distance_variance(dim) == pytest.approx(std**2)
  assert np.mean(d**2) == pytest.approx(2.0, abs=0.02)


def test_null_closed_forms():
  assert overlap.null_distance_moments(3) == pytest.approx((4 / 3, np.sqrt(2 - 16 / 9)))
  for dim in (2, 5, 256):
    assert integrate.quad(lambda x, dim=dim: overlap.null_distance_pdf(x, dim), 0, 2)[0] == (
      pytest.approx(1.0, abs=1e-6)
    )
    x = np.array([0.5, 1.2, 1.41, 1.6])
    h = 1e-5
    deriv = (overlap.null_distance_cdf(x + h, dim) - overlap.null_distance_cdf(x - h, dim)) / (
      2 * h
    )
    np.testing.assert_allclose(deriv, overlap.null_distance_pdf(x, dim), rtol=1e-4, atol=1e-8)
  assert np.sqrt(overlap.null_distance_variance(256)) == pytest.approx(np.sqrt(1 / 512), rel=0.01)


def test_null_test_accepts_random_and_rejects_spread():
  rng = np.random.default_rng(0)
  d = _random_unit_distances(rng, 5000, 64)
  r = overlap.null_distance_test(d, 64)
  assert (
    r["ks_pvalue"] > 1e-3 and abs(r["mean_z"]) < 5 and r["std_ratio"] == pytest.approx(1, abs=0.05)
  )
  # Mean near sqrt(2) but spread like the seed project's 0.27..1.92: not random.
  wide = np.clip(rng.normal(np.sqrt(2), 0.3, 5000), 0, 2)
  r = overlap.null_distance_test(wide, 256)
  assert r["ks_pvalue"] < 1e-10 and r["std_ratio"] > 5
  with pytest.raises(ValueError, match=r"\[0, 2\]"):
    overlap.null_distance_test([0.5, 3.0], 8)


def test_overlap_statistics_known_gaussian_values():
  rng = np.random.default_rng(0)
  g, i = rng.normal(1, 1, 20_000), rng.normal(0, 1, 20_000)
  out = overlap.overlap_metrics(g, i, num_resamples=50, seed=1)
  assert out["auc"] == pytest.approx(stats.norm.cdf(1 / np.sqrt(2)), abs=0.01)
  assert out["decidability"] == pytest.approx(1.0, abs=0.03)
  assert out["overlap_coefficient"] == pytest.approx(2 * stats.norm.cdf(-0.5), abs=0.02)
  assert out["bhattacharyya"] == pytest.approx(np.exp(-1 / 8), abs=0.02)
  assert out["ks_statistic"] == pytest.approx(2 * stats.norm.cdf(0.5) - 1, abs=0.02)
  for name in overlap.OVERLAP_STATISTICS:
    assert out[f"{name}_ci_low"] <= out[name] <= out[f"{name}_ci_high"]


def test_ks_and_auc_match_scipy_with_ties():
  rng = np.random.default_rng(1)
  g, i = np.round(rng.normal(1, 1, 300), 1), np.round(rng.normal(0, 1, 500), 1)
  assert overlap.ks_statistic(g, i) == pytest.approx(stats.ks_2samp(g, i).statistic)
  u = stats.mannwhitneyu(g, i).statistic
  assert overlap.auc(g, i) == pytest.approx(u / (g.size * i.size))


def test_auc_gap():
  rng = np.random.default_rng(2)
  tr_g, te_g = rng.normal(3, 1, 500), rng.normal(0.2, 1, 500)
  tr_i, te_i = rng.normal(0, 1, 500), rng.normal(0, 1, 500)
  out = overlap.auc_gap(tr_g, tr_i, te_g, te_i, num_resamples=50)
  assert out["auc_gap"] == pytest.approx(out["train_auc"] - out["test_auc"])
  assert 0.3 < out["auc_gap_ci_low"] <= out["auc_gap"] <= out["auc_gap_ci_high"]
