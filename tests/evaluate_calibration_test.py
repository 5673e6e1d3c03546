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
