"""Calibration on constructed data where the right answer is known."""

import numpy as np
import pytest

from jaxsim.evaluate import calibration


def _logistic_data(seed, n=20_000, slope=2.0, intercept=-1.0):
  rng = np.random.default_rng(seed)
  s = rng.normal(0, 2, n)
  y = (rng.random(n) < 1 / (1 + np.exp(-(slope * s + intercept)))).astype(int)
  return s, y


def test_platt_recovers_the_true_logistic():
  s, y = _logistic_data(0)
  p = calibration.platt_fit(s, y)
  assert p["slope"] == pytest.approx(2.0, abs=0.1)
  assert p["intercept"] == pytest.approx(-1.0, abs=0.1)
  s_test, y_test = _logistic_data(1)
  assert calibration.calibration_metrics(calibration.platt_apply(p, s_test), y_test)["ece"] < 0.02


def test_platt_smoothed_targets_keep_separable_fit_finite():
  # Separable and symmetric about 1.5: the soft targets 3/4 and 1/4 bound the slope and
  # symmetry puts the 0.5 point at 1.5.
  p = calibration.platt_fit([0, 1, 2, 3], [0, 0, 1, 1])
  assert np.isfinite(p["slope"]) and 0 < p["slope"] < 5
  assert -p["intercept"] / p["slope"] == pytest.approx(1.5, abs=1e-6)
  probs = calibration.platt_apply(p, [0, 1, 2, 3])
  # Stationarity with soft targets: mean prediction equals mean target (1/2).
  assert probs.mean() == pytest.approx(0.5, abs=1e-6)


def test_isotonic_is_monotone_and_calibrated_in_sample():
  s, y = _logistic_data(2, 5000)
  iso = calibration.isotonic_fit(s, y)
  grid = np.linspace(-8, 8, 200)
  assert np.all(np.diff(calibration.isotonic_apply(iso, grid)) >= 0)
  assert calibration.expected_calibration_error(calibration.isotonic_apply(iso, s), y) < 1e-9
  prob = calibration.fit_calibrator(s, y, "isotonic")(np.array([-100.0, 100.0]))
  assert 0 <= prob[0] < 0.05 and prob[1] > 0.95


def test_ece_and_reliability_hand_worked():
  probs, labels = [0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1]
  # Bin [0, .5): predicted .1, observed .5; bin [.5, 1]: predicted .9, observed 1; equal weights.
  assert calibration.expected_calibration_error(probs, labels, num_bins=2) == pytest.approx(0.25)
  d = calibration.reliability_diagram(probs, labels, num_bins=4)
  np.testing.assert_allclose(d["count"], [2, 0, 0, 2])
  assert np.isnan(d["fraction_positive"][1])
  m = calibration.calibration_metrics(probs, labels)
  assert m["brier"] == pytest.approx((0.01 + 0.81 + 0.01 + 0.01) / 4)


def test_top1_calibration_and_base_rate_hand_worked():
  # Four probes: calibrated top-1 probabilities and whether the top-1 candidate is right.
  probs, correct = [0.2, 0.6, 0.7, 0.9], [0, 1, 0, 1]
  m = calibration.calibration_metrics(probs, correct, num_bins=2)
  # Bin [0, .5): one probe, predicted .2, observed 0 -> .2 * 1/4. Bin [.5, 1]: predicted
  # (.6 + .7 + .9) / 3 = 2.2 / 3, observed 2/3 -> (.2 / 3) * 3/4. ECE = .05 + .05.
  assert m["ece"] == pytest.approx(0.1)
  assert m["brier"] == pytest.approx((0.04 + 0.16 + 0.49 + 0.01) / 4)
  assert m["log_loss"] == pytest.approx(-np.log([0.8, 0.6, 0.3, 0.9]).mean())
  # The base-rate predictor (validation rate 1/4 for every probe): one bin, |1/2 - 1/4|.
  b = calibration.base_rate_metrics(correct, 0.25, num_bins=2)
  assert b["ece"] == pytest.approx(0.25)
  assert b["brier"] == pytest.approx((2 * 0.25**2 + 2 * 0.75**2) / 4)
  assert b["log_loss"] == pytest.approx(-(2 * np.log(0.75) + 2 * np.log(0.25)) / 4)
  assert b["rate"] == 0.25


def test_rare_positives_a_base_rate_predictor_has_near_zero_ece():
  # The trap of all-pairs ECE: 0.16% positives, an uninformative constant scores ~0 ECE
  # and a tiny Brier score, while a predictor that ranks perfectly can score worse.
  rng = np.random.default_rng(0)
  y = (rng.random(100_000) < 0.0016).astype(int)
  b = calibration.base_rate_metrics(y, 0.0016)
  assert b["ece"] < 0.001 and b["brier"] < 0.002
  overconfident = np.where(y == 1, 0.6, 0.01)
  assert calibration.calibration_metrics(overconfident, y)["ece"] > b["ece"]


def test_weights_equal_repeated_rows():
  rng = np.random.default_rng(1)
  p, y = rng.random(50), (rng.random(50) < 0.4).astype(int)
  w = rng.integers(0, 4, 50)
  weighted = calibration.calibration_metrics(p, y, num_bins=5, weights=w)
  repeated = calibration.calibration_metrics(np.repeat(p, w), np.repeat(y, w), num_bins=5)
  for k in weighted:
    assert weighted[k] == pytest.approx(repeated[k]), k
  with pytest.raises(ValueError, match="weights"):
    calibration.calibration_metrics(p, y, weights=-np.ones(50))
