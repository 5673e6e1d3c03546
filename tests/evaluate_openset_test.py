"""Open-set identification on hand-worked score matrices."""

import numpy as np
import pytest

from jaxsim.evaluate import calibration, openset

# Probes x enrolled identities 10, 20, 30. Probes 0-2 are mated (10, 20, 20), 3-4 are not.
SCORES = np.array(
  [
    [0.9, 0.1, 0.5],  # mated 10, rank 1
    [0.2, 0.3, 0.8],  # mated 20, rank 2
    [0.7, 0.7, 0.1],  # mated 20, tied with 10 listed first: rank 2
    [0.6, 0.2, 0.3],  # non-mated, top score 0.6
    [0.4, 0.95, 0.1],  # non-mated, top score 0.95
  ]
)
IDS = np.array([10, 20, 30])
PROBES = np.array([10, 20, 20, 99, 98])


def test_cmc_counts_ties_against_the_probe():
  np.testing.assert_allclose(openset.cmc_curve(SCORES, IDS, PROBES, 3), [1 / 3, 1, 1])
  out = openset.cmc_metrics(SCORES, IDS, PROBES, ranks=(1, 2))
  assert out == pytest.approx({"rank_1": 1 / 3, "rank_2": 1.0, "num_mated": 3.0})


def test_fpir_fnir_at_threshold_frvt_definitions():
  r = openset.open_set_at_threshold(SCORES, IDS, PROBES, 0.65)
  assert r["fpir"] == 0.5  # 0.95 >= 0.65, 0.6 < 0.65
  assert r["fnir"] == pytest.approx(2 / 3)  # only probe 0 is found at rank 1 above 0.65
  assert r["dir"] == pytest.approx(1 / 3)
  r2 = openset.open_set_at_threshold(SCORES, IDS, PROBES, 0.65, rank=2)
  assert r2["fnir"] == pytest.approx(1 / 3)  # probe 1 is rank 2 but scores 0.3 < 0.65
  fpir, fnir, thr = openset.open_set_curve(SCORES, IDS, PROBES)
  np.testing.assert_allclose(fpir, [0, 0.5, 1])
  np.testing.assert_allclose(fnir, [1, 1, 2 / 3])


def test_reject_threshold_chosen_on_validation():
  rng = np.random.default_rng(0)
  nonmated = rng.normal(0, 1, 1000)
  t = openset.fpir_threshold(nonmated, 0.01)
  assert np.mean(nonmated >= t) == pytest.approx(0.01)
  assert openset.fpir_threshold([0.6, 0.95], 0.5) == pytest.approx(0.775)

  # Validation and test built the same way; the validation threshold gives ~1% FPIR on test.
  def split(seed):
    r = np.random.default_rng(seed)
    s = r.normal(0, 1, (2000, 20))
    probes = np.r_[np.arange(1000) % 20, np.full(1000, 99)]
    s[np.arange(1000), probes[:1000]] += 4
    return s, np.arange(20), probes

  out = openset.open_set_report(*split(1), *split(2), target_fpir=0.01)
  assert out["val_fpir"] <= 0.01 and out["fpir"] < 0.03 and out["num_nonmated"] == 1000
  with pytest.raises(ValueError, match="non-mated"):
    openset.open_set_report(SCORES, IDS, PROBES, SCORES, IDS, PROBES, target_fpir=0.01)
  f = openset.fnir_at_fpir(SCORES, IDS, PROBES, fpirs=(0.5, 0.01))
  assert f["fnir_at_fpir_5e-01_supported"] == 1.0 and f["fnir_at_fpir_1e-02_supported"] == 0.0


def test_templates_and_identity_scores():
  emb = np.array([[1, 0], [1, 0.2], [0, 1], [0, 2]], np.float32)
  t, tid = openset.identity_templates(emb, [5, 5, 7, 7])
  np.testing.assert_array_equal(tid, [5, 7])
  np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1, rtol=1e-6)
  np.testing.assert_allclose(t[1], [0, 1], atol=1e-7)
  ta, tida = openset.identity_templates(emb, [5, 5, 7, 7], mode="all")
  s, ids = openset.identity_scores(np.array([[1.0, 0.2]]), ta, tida, "cosine")
  np.testing.assert_array_equal(ids, [5, 7])
  assert s[0, 0] == pytest.approx(1.0, abs=1e-6)  # the best template of identity 5


def test_top_candidates_with_calibrated_probabilities():
  flat, labels = openset.probe_identity_pairs(SCORES, IDS, PROBES)
  assert labels.sum() == 3 and flat.size == 15
  cal = calibration.fit_calibrator(flat, labels, "platt")
  out = openset.top_candidates(SCORES, IDS, k=2, calibrator=cal)
  np.testing.assert_array_equal(out["identities"][:, 0], [10, 30, 10, 10, 20])
  np.testing.assert_array_equal(out["identities"][2], [10, 20])  # tie: listed order
  p = out["probabilities"]
  assert np.all((p > 0) & (p < 1)) and np.all(p[:, 0] >= p[:, 1])


def test_top1_correct_and_weighted_open_set_statistic():
  # Top-1 right only for probe 0 (probe 2 ties with 10 listed first); outsiders never.
  np.testing.assert_array_equal(openset.top1_correct(SCORES, IDS, PROBES), [1, 0, 0, 0, 0])
  stat = openset.open_set_statistic(SCORES, IDS, PROBES, threshold=0.65)
  ref = openset.open_set_at_threshold(SCORES, IDS, PROBES, 0.65)
  out = stat(np.ones(5))
  for k in ("fpir", "fnir", "dir"):
    assert out[k] == pytest.approx(ref[k]), k
  assert out["cmc_rank_1"] == pytest.approx(1 / 3)
  # Weights count probes: probe 0 twice, probe 1 dropped, outsider 4 (accepted) dropped.
  w = np.array([2, 0, 1, 1, 0])
  out = stat(w)
  assert out["dir"] == pytest.approx(2 / 3)  # probes 0, 0 hit; probe 2 is rank 2
  assert out["cmc_rank_1"] == pytest.approx(2 / 3)
  assert out["fpir"] == 0.0  # only outsider 3 (0.6 < 0.65) left
  assert np.isnan(stat(np.array([0, 0, 0, 1, 1]))["dir"])


def test_candidate_lists_decide_at_the_threshold():
  scores = np.array([[0.9, 0.1], [0.2, 0.3], [0.6, 0.4]])
  top = openset.top_candidates(scores, np.array([0, 1]), k=2)
  rows = openset.candidate_lists(top, np.array([0, 1, 2]), ["ann", "bob", "cy"], [0, 1], 0.5)
  assert [r["decision"] for r in rows] == ["ann", "unknown", "ann"]
  assert [r["correct"] for r in rows] == [True, False, False]
  assert rows[2]["true_identity"] == "cy (outsider)" and not rows[2]["mated"]
  assert [c["identity"] for c in rows[1]["top"]] == ["bob", "ann"]
