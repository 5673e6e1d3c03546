"""face_verify: its fixed pair lists and identity intervals, and the runlocal variant end to end."""

import json

import numpy as np
import pytest

from experiments.configs import face_verify as face_verify_config
from jaxsim.data import sampling, splits
from jaxsim.evaluate import clustered, verification
from jaxsim.tasks import face_verify


def _pair_keys(p):
  lo, hi = np.minimum(p["a"], p["b"]), np.maximum(p["a"], p["b"])
  return lo * 10_000 + hi


@pytest.mark.parametrize("num_pairs", [50, 400, 10_000])
def test_fixed_pairs_are_distinct_labelled_and_reproducible(num_pairs):
  identities = np.repeat(np.arange(12), 5)  # 60 records, 120 genuine, 1650 impostor pairs
  records = np.arange(10, 60)  # 10 identities of one split
  p = sampling.fixed_pairs(identities, records, num_pairs, 0.5, seed=3)
  q = sampling.fixed_pairs(identities, records, num_pairs, 0.5, seed=3)
  for k in p:
    np.testing.assert_array_equal(p[k], q[k])
  assert np.all(np.isin(p["a"], records)) and np.all(np.isin(p["b"], records))
  assert np.all(p["a"] != p["b"])  # never an image with itself
  assert len(np.unique(_pair_keys(p))) == len(p["a"])  # no pair twice, in either order
  np.testing.assert_array_equal(p["label"], identities[p["a"]] == identities[p["b"]])
  genuine_available, all_pairs = 10 * 10, 50 * 49 // 2
  assert len(p["a"]) == min(num_pairs, all_pairs)
  assert p["label"].sum() == min(round(0.5 * num_pairs), genuine_available)


def test_subject_intervals_are_wider_than_pair_intervals_for_clustered_pairs():
  # Each identity shifts all its pairs' scores: pairs are clustered, so the identity
  # bootstrap must give a wider AUC interval than resampling the 2,000 pairs would.
  rng = np.random.default_rng(0)
  n, num_ids = 2000, 20
  a, b = rng.integers(0, num_ids, n), rng.integers(0, num_ids, n)
  b[: n // 2] = a[: n // 2]
  labels = (a == b).astype(int)
  effect = rng.normal(0, 1.0, num_ids)
  scores = labels + effect[a] + effect[b] + rng.normal(0, 0.5, n)
  out = clustered.verification_intervals(
    scores, labels, a, b, threshold=1.0, fars=(1e-2,), num_resamples=200, seed=0
  )
  assert out["ci_num_identities"] == num_ids
  for k in ("auc", "eer", "tar_at_far_1e-02", "accuracy", "far", "frr"):
    assert out[f"{k}_ci_low"] <= out[f"{k}_ci_high"], k
  gen, imp = scores[labels == 1], scores[labels == 0]
  pair_lo, pair_hi = verification.bootstrap_ci(
    lambda g, i: verification.roc_auc(np.r_[g, i], np.r_[np.ones(len(g)), np.zeros(len(i))]),
    [gen, imp],
    num_resamples=200,
    seed=0,
  )
  assert out["auc_ci_high"] - out["auc_ci_low"] > 2 * (pair_hi - pair_lo)


def test_runlocal_end_to_end(tmp_path):
  config = face_verify_config.get_config("runlocal")
  metrics = face_verify.run(config, tmp_path)
  for name in ("metrics.json", "report.md", "roc.png", "det.png", "split_manifest.json"):
    assert (tmp_path / name).is_file(), name
  assert json.loads((tmp_path / "metrics.json").read_text()).keys() == metrics.keys()
  groups = splits.read_manifest(tmp_path / "split_manifest.json")
  splits.assert_disjoint(groups)
  identities = np.repeat(np.arange(config.data.num_identities), config.data.images_per_identity)
  test_pairs = dict(np.load(tmp_path / "pairs_test.npz"))
  assert np.all(np.isin(identities[test_pairs["a"]], groups["test"]))
  assert np.all(np.isin(identities[test_pairs["b"]], groups["test"]))
  n = len(test_pairs["label"])
  m = len(groups["test"]) * config.data.images_per_identity
  assert n == metrics["data"]["num_test_pairs"] == min(config.eval.test_pairs, m * (m - 1) // 2)
  report = (tmp_path / "report.md").read_text()
  for name in ("koch", "contrastive"):
    m = metrics[name]
    t = m["test"]
    assert 0.0 <= t["auc_ci_low"] <= t["auc"] <= t["auc_ci_high"] <= 1.0
    # The intervals are over test identities, with the validation threshold kept fixed.
    assert t["ci_num_identities"] == len(groups["test"])
    assert t["accuracy_ci_low"] <= t["accuracy"] <= t["accuracy_ci_high"]
    assert t["eer_ci_low"] <= t["eer_ci_high"]
    assert 0.0 <= t["eer"] <= 1.0
    assert t["tn"] + t["fp"] + t["fn"] + t["tp"] == n
    assert t["tp"] + t["fn"] == test_pairs["label"].sum()
    assert m["inference"]["num_pairs"] == n and m["inference"]["pairs_per_second"] > 0
    assert m["train"]["steps_this_run"] == config.train[name].steps
    assert np.isfinite(m["train"]["final_loss"])
    # Selected on validation AUC (every 6 of 12 steps), never on test.
    assert m["train"]["select_best_step"] in (6.0, 12.0)
    assert m["train"]["select_best_val"] == pytest.approx(
      max(m["train"]["select_first_val"], m["train"]["select_last_val"])
    )
    assert f"{name}: test AUC" in report
  assert f"95% CI over {len(groups['test'])} test identities" in report
  # The features-once evaluation of Koch's L1 head equals the full pair network.
  assert metrics["koch"]["inference"]["pair_logits_max_abs_diff"] < 1e-3
  assert metrics["koch"]["inference"]["pair_logits_pairs"] == config.eval.pair_logits_pairs
  # The classical baselines are scored on the same test pairs, with identity intervals.
  assert set(metrics["baselines"]) == {"raw_pixels", "eigenfaces", "fisherfaces", "lbp"}
  for row in metrics["baselines"].values():
    assert row["auc_ci_low"] <= row["auc"] <= row["auc_ci_high"]
    assert row["num_subjects"] == len(groups["test"])
  assert "Classical baselines on the same test pairs" in report


def test_folders_runlocal_on_real_orl_faces(shared_data, tmp_path):
  """The real-face recipe's path on ORL: proxies per training identity, flip TTA, the
  members' ensemble and the baselines on the same pairs (a smoke run: 12 steps)."""
  config = face_verify_config.get_config("folders,runlocal")
  config.data.root = str(shared_data / "orl_faces")
  metrics = face_verify.run(config, tmp_path)
  d = metrics["data"]
  assert (d["num_identities_train"], d["num_identities_val"], d["num_identities_test"]) == (
    20,
    10,
    10,
  )
  members = list(config.eval.ensemble)
  assert len(members) == 2 and set(members) <= set(metrics)
  for name in [*members, "ensemble"]:
    t = metrics[name]["test"]
    assert 0.5 < t["auc"] <= 1.0 and t["auc_ci_low"] <= t["auc"] <= t["auc_ci_high"]
    assert t["ci_num_identities"] == 10
  assert metrics["ensemble"]["num_members"] == len(members)
  assert np.isfinite(metrics["m0"]["train"]["final_cosface_loss"])
  assert set(metrics["baselines"]) == {"raw_pixels", "eigenfaces", "fisherfaces", "lbp"}
  # Paired comparison with the baseline chosen on validation, over test identities.
  vs = metrics["vs_baseline"]
  best = max(metrics["baselines"], key=lambda k: metrics["baselines"][k]["val_auc"])
  fused = f"ensemble+{best}"  # fused with the best baseline where cross-fitted val says so
  f = metrics[fused]["fusion"]
  assert f["fused"] == (f["weight"] < 1.0)
  if f["val_auc_cross_fitted"] <= f["learned_val_auc_cross_fitted"]:
    assert f["weight"] == 1.0  # no out-of-sample gain: the ensemble alone
  assert vs["baseline"] == best and set(vs["rows"]) == {*members, "ensemble", fused}
  for name, row in vs["rows"].items():
    assert row["auc_a"] == pytest.approx(metrics[name]["test"]["auc"])
    assert row["auc_b"] == pytest.approx(metrics["baselines"][best]["auc"])
    assert row["auc_difference_ci_low"] <= row["auc_difference"] <= row["auc_difference_ci_high"]
  report = (tmp_path / "report.md").read_text()
  assert "ensemble of m0, m1" in report and "trained for 12 steps" in report
  assert f"Test AUC minus that of {best}" in report and f"{fused}: " in report


def test_fvc2002_runlocal_on_real_fingers(shared_data, tmp_path):
  """The fingerprint recipe's path on FVC2002 DB1-3: 18 / 6 / 6 fingers, local contrast
  for the learned models only, FingerCode among the baselines (a smoke run: 12 steps)."""
  config = face_verify_config.get_config("fvc2002,runlocal")
  config.data.root = str(shared_data / "fvc2002_db_b")
  metrics = face_verify.run(config, tmp_path)
  d = metrics["data"]
  assert (d["num_identities_train"], d["num_identities_val"], d["num_identities_test"]) == (
    18,
    6,
    6,
  )
  assert metrics["ensemble"]["num_members"] == 2
  assert "fingercode" in metrics["baselines"]
  assert metrics["vs_baseline"]["baseline"] in metrics["baselines"]
  assert 0.5 < metrics["ensemble"]["test"]["auc"] <= 1.0


def test_fvc2002_without_a_root_says_how_to_pass_one(tmp_path):
  config = face_verify_config.get_config("fvc2002,runlocal")
  with pytest.raises(ValueError, match="data.root=/path/to/fvc2002_db_b"):
    face_verify.run(config, tmp_path)
