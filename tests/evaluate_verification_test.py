"""Verification metrics against scikit-learn and hand-worked examples."""

import numpy as np
import pytest
from sklearn import metrics as skm

from jaxsim.evaluate import verification as v


def _tied_data(seed=0, n=600):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, 2, n)
  return np.round(rng.normal(y * 1.0, 1.0), 1), y  # rounding makes many ties


def test_roc_auc_ap_match_sklearn_with_ties():
  s, y = _tied_data()
  fpr, tpr, thr = v.roc_curve(s, y)
  f2, t2, th2 = skm.roc_curve(y, s, drop_intermediate=False)
  np.testing.assert_allclose(fpr, f2)
  np.testing.assert_allclose(tpr, t2)
  np.testing.assert_allclose(thr[1:], th2[1:])
  assert v.roc_auc(s, y) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
  assert v.average_precision(s, y) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
  fpr_d, fnr_d, _ = v.det_curve(s, y)
  np.testing.assert_allclose(fnr_d, 1 - tpr)


def test_equal_error_rate_interpolates():
  # Genuine 0.8, 0.6; impostor 0.7, 0.1. ROC points (fpr, fnr): (0,1) (0,.5) (.5,.5) (.5,0) (1,0).
  # fpr - fnr hits 0 exactly at the point with threshold 0.7.
  eer, thr = v.equal_error_rate([0.8, 0.7, 0.6, 0.1], [1, 0, 1, 0])
  assert eer == pytest.approx(0.5) and thr == pytest.approx(0.7)
  # Genuine 0.9, 0.8, 0.3; impostor 0.5, 0.2: (fpr, fnr) goes (0, 1/3) -> (1/2, 1/3) at 0.5.
  # Crossing between (0, 1/3) [thr .8] and (1/2, 1/3) [thr .5]: diff -1/3 -> 1/6, w = 2/3.
  eer, thr = v.equal_error_rate([0.9, 0.8, 0.5, 0.3, 0.2], [1, 1, 0, 1, 0])
  assert eer == pytest.approx(1 / 3)
  assert thr == pytest.approx(0.8 + 2 / 3 * (0.5 - 0.8))


def test_tar_at_far_and_support_flag():
  s = np.r_[np.linspace(0, 1, 100), np.linspace(0.5, 1.5, 50)]
  y = np.r_[np.zeros(100, int), np.ones(50, int)]
  r = v.tar_at_far(s, y, 0.1)
  assert r["supported"] == 1.0 and r["far"] <= 0.1
  assert r["tar"] == pytest.approx(np.mean(s[y == 1] >= r["threshold"]))
  assert np.mean(s[y == 0] >= r["threshold"]) == pytest.approx(0.1)
  out = v.verification_metrics(s, y)
  assert out["tar_at_far_1e-02_supported"] == 1.0
  assert out["tar_at_far_1e-03_supported"] == 0.0 and np.isnan(out["tar_at_far_1e-03"])


def test_thresholds_from_validation_applied_to_test():
  # Validation: perfectly separable at any threshold in (0.4, 0.6).
  val_s, val_y = [0.1, 0.4, 0.6, 0.9], [0, 0, 1, 1]
  assert v.select_threshold(val_s, val_y, "max_accuracy") == pytest.approx(0.5)
  test_s, test_y = np.array([0.2, 0.55, 0.45, 0.7, 0.3]), np.array([0, 0, 1, 1, 1])
  r = v.verification_report(val_s, val_y, test_s, test_y, "max_accuracy")
  pred = (test_s >= 0.5).astype(int)
  tn, fp, fn, tp = skm.confusion_matrix(test_y, pred).ravel()
  assert (r["tn"], r["fp"], r["fn"], r["tp"]) == (tn, fp, fn, tp)
  assert r["accuracy"] == pytest.approx(skm.accuracy_score(test_y, pred))
  assert r["precision"] == pytest.approx(skm.precision_score(test_y, pred))
  assert r["recall"] == pytest.approx(skm.recall_score(test_y, pred))
  assert r["f1"] == pytest.approx(skm.f1_score(test_y, pred))
  s, y = _tied_data(1, 4000)
  t = v.select_threshold(s, y, "far", target_far=0.05)
  assert np.mean(s[y == 0] >= t) <= 0.05
  with pytest.raises(ValueError, match="impostor"):
    v.select_threshold(s[:100], y[:100], "far", target_far=1e-4)


def test_k_fold_accuracy_protocol():
  rng = np.random.default_rng(0)
  y = np.tile([1, 0], 300)
  s = y + rng.uniform(-0.4, 0.4, y.size)  # separable: every fold is perfect
  r = v.k_fold_accuracy(s, y)
  assert r["accuracy_mean"] == 1.0 and r["num_folds"] == 10.0
  s2, y2 = _tied_data(2, 1000)
  r2 = v.k_fold_accuracy(s2, y2)
  assert 0.5 < r2["accuracy_mean"] < 0.8 and r2["accuracy_std"] > 0


def test_bootstrap_ci_is_seeded_and_covers():
  rng = np.random.default_rng(0)
  x = rng.normal(0, 1, 400)
  a = v.bootstrap_ci(np.mean, (x,), num_resamples=300, seed=3)
  assert a == v.bootstrap_ci(np.mean, (x,), num_resamples=300, seed=3)
  assert a[0] < x.mean() < a[1]
  assert a[1] - a[0] == pytest.approx(2 * 1.96 / np.sqrt(400), rel=0.25)


def test_bad_labels_raise():
  with pytest.raises(ValueError, match="genuine"):
    v.roc_auc([0.1, 0.2], [1, 1])
  with pytest.raises(ValueError, match="0 .impostor"):
    v.roc_auc([0.1, 0.2], [1, 2])
