"""open_set: runlocal end to end (plus resume); the enrolment split is in data_splits_test."""

import json

import pytest

from experiments.configs import open_set as open_set_config
from jaxsim.data import splits
from jaxsim.tasks import open_set


def test_runlocal_end_to_end_and_resume(tmp_path):
  config = open_set_config.get_config("runlocal")
  metrics = open_set.run(config, tmp_path)
  for name in (
    "metrics.json",
    "report.md",
    "top5_test.json",
    "openset_det.png",
    "cmc.png",
    "reliability.png",
    "tsne.png",
    "top5_examples.png",
  ):
    assert (tmp_path / name).is_file(), name
  groups = splits.read_manifest(tmp_path / "split_manifest.json")
  splits.assert_disjoint(groups)
  sp = config.split
  assert [len(groups[k]) for k in ("train", "enrolled", "outsider_val", "outsider_test")] == [
    sp.train,
    sp.enrolled,
    sp.outsider_val,
    sp.outsider_test,
  ]
  # Model selection on validation: the evaluated encoder is a validated checkpoint.
  assert metrics["train"]["select_best_step"] in (6.0, 12.0)
  assert metrics["train"]["select_num_evals"] == 2.0
  t = metrics["test"]
  d = t["at_val_threshold"]
  ipi = config.data.images_per_identity
  assert d["num_nonmated"] == sp.outsider_test * ipi
  assert d["num_mated"] == sp.enrolled * (
    ipi - sp.gallery_per_identity - sp.val_probes_per_identity
  )
  assert abs(d["dir"] + d["fnir"] - 1) < 1e-9 and 0 <= d["fpir"] <= 1
  assert d["val_fpir"] <= config.eval.target_fpir
  cmc = t["cmc"]
  assert 0 <= cmc["rank_1"] <= cmc["rank_5"] <= cmc["rank_10"] == 1.0  # 8 enrolled: rank 10 = all
  assert 0 <= t["secondary_calibration_all_pairs_platt"]["ece"] <= 1
  # Identification-level calibration: one outcome per test probe, beside the base rate.
  c1 = t["calibration_top1"]
  assert c1["num_probes"] == d["num_mated"] + d["num_nonmated"]
  assert c1["correct_rate"] == pytest.approx(cmc["rank_1"] * d["num_mated"] / c1["num_probes"])
  assert c1["base_rate"]["ece"] == pytest.approx(
    abs(c1["correct_rate"] - metrics["val"]["top1_correct_rate"])
  )
  for name in ("platt_all_pairs", "base_rate"):
    assert set(c1[name]) == {"ece", "brier", "log_loss"}
  # Intervals over test probe identities (enrolled and outsiders), threshold fixed.
  iv = t["intervals"]
  assert iv["num_subjects"] == sp.enrolled + sp.outsider_test
  for k in ("dir", "fpir", "cmc_rank_1", "top1_ece_base_rate"):
    assert iv[f"{k}_ci_low"] <= iv[f"{k}_ci_high"], k
  assert iv["dir"] == pytest.approx(d["dir"]) and iv["fpir"] == pytest.approx(d["fpir"])
  assert iv["cmc_rank_1"] == pytest.approx(cmc["rank_1"])
  top5 = json.loads((tmp_path / "top5_test.json").read_text())
  names = {f"synthetic_{i:04d}" for i in groups["enrolled"]}
  assert len(top5["probes"]) == d["num_mated"] + d["num_nonmated"]
  for probe in top5["probes"]:
    cands = probe["top"]
    assert len(cands) == config.eval.top_k
    assert {c["identity"] for c in cands} <= names  # candidates are enrolled people only
    s = [c["score"] for c in cands]
    p = [c["probability"] for c in cands]
    assert s == sorted(s, reverse=True) and p == sorted(p, reverse=True)
    assert all(0 <= x <= 1 for x in p)
    assert probe["mated"] == (probe["true_identity"] in names)
    assert probe["decision"] == ("unknown" if s[0] < top5["threshold"] else cands[0]["identity"])
  report = (tmp_path / "report.md").read_text()
  assert "outsider, never enrolled or trained on" in report
  assert f"95% CI over {sp.enrolled + sp.outsider_test} test probe identities" in report
  assert "base-rate predictor" in report  # the unknown example is an outsider
  # The classical baselines identify the same probes, with identity-level intervals.
  assert set(metrics["baselines"]) == {"raw_pixels", "eigenfaces", "fisherfaces", "lbp"}
  for row in metrics["baselines"].values():
    assert row["dir_ci_low"] <= row["dir"] <= row["dir_ci_high"]
    assert 0 <= row["fpir"] <= 1
  assert "Classical baselines as open-set identifiers" in report

  # Re-running the same workdir restores the trained encoder instead of training again.
  again = open_set.run(config, tmp_path)
  assert again["train"]["steps_this_run"] == 0
  assert again["test"]["at_val_threshold"] == d
