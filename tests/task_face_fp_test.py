"""face_fp task: the runlocal pipeline end to end, its helpers, and the chimeric real set."""

import json
import math

import numpy as np
import pytest

from experiments.configs import face_fp as face_fp_config
from jaxsim.data import pipeline, splits
from jaxsim.data.sources.face_fingerprint import load_paired_data
from jaxsim.evaluate import fusion, overlap
from jaxsim.tasks import face_fp


def test_runlocal_end_to_end(tmp_path):
  # One test (not a fixture shared by several) so that pytest-xdist runs the pipeline once.
  workdir = tmp_path
  config = face_fp_config.get_config("runlocal")
  metrics = face_fp.run(config, workdir)
  runlocal = (config, workdir, metrics)
  _check_files(runlocal)
  _check_splits(runlocal)
  _check_values(runlocal)
  _check_sweep(runlocal)


def _check_files(runlocal):
  _, workdir, metrics = runlocal
  for name in ("metrics.json", "report.md", "distances_test.png", "sweep_auc.png"):
    assert (workdir / name).is_file(), name
  for sub in ("cross_modal", "face", "fingerprint"):
    assert (workdir / sub / "train_log.jsonl").is_file(), sub
  on_disk = json.loads((workdir / "metrics.json").read_text())
  assert on_disk["cross_modal"]["test_overlap"]["auc"] == pytest.approx(
    metrics["cross_modal"]["test_overlap"]["auc"]
  )
  text = (workdir / "report.md").read_text()
  assert "Cross-modal (face -> fingerprint) test AUC" in text
  assert "sqrt(2)" in text or "random vectors" in text


def _check_splits(runlocal):
  _, workdir, metrics = runlocal
  groups = splits.read_manifest(workdir / "split_manifest.json")
  assert set(groups) == {"train", "val", "test"}
  splits.assert_disjoint(groups)
  total = sum(len(v) for v in groups.values())
  assert total == metrics["data"]["num_subjects"]


def _check_values(runlocal):
  config, _, metrics = runlocal
  cm = metrics["cross_modal"]
  o = cm["test_overlap"]
  # Subject-level intervals are the intervals.
  assert 0.0 <= o["auc_ci_low"] <= o["auc"] <= o["auc_ci_high"] <= 1.0
  # The test pair list covers (nearly) every test subject; the bootstrap draws those.
  assert 0.9 * metrics["data"]["test_subjects"] <= o["num_subjects"]
  assert o["num_subjects"] <= metrics["data"]["test_subjects"]
  assert o["num_genuine"] > 0 and o["num_impostor"] > 0
  gap = cm["memorisation"]
  assert gap["auc_gap"] == pytest.approx(gap["train_auc"] - gap["test_auc"])
  assert gap["num_subjects"] <= metrics["data"]["train_subjects"] + metrics["data"]["test_subjects"]
  assert gap["test_auc"] == pytest.approx(o["auc"])
  perm = cm["permutation_test"]
  assert 0.0 < perm["p_value"] <= 1.0 and perm["num_permutations"] == config.eval.permutations
  for key in ("isotropy_genuine", "isotropy_impostor"):
    t = cm[key]
    assert t["dim"] == config.model.cross_modal.encoder_a.dim
    assert 0.0 <= t["observed_mean"] <= 2.0 and 0.0 <= t["ks_pvalue"] <= 1.0
  # One distance per test subject (genuine) and one fewer (impostor): independent pairs.
  assert cm["isotropy_genuine"]["n"] == metrics["data"]["test_subjects"]
  assert cm["isotropy_impostor"]["n"] == metrics["data"]["test_subjects"] - 1
  d = cm["test_distances"]
  assert 0.0 <= d["min"] <= d["max"] <= 2.0 + 1e-5  # unit-norm embeddings
  for name in ("face", "fingerprint"):
    u = metrics["unimodal"][name]
    assert 0.0 <= u["auc_ci_low"] <= u["auc"] <= u["auc_ci_high"] <= 1.0
    assert 0.0 <= u["eer"] <= 1.0
    assert u["tn"] + u["fp"] + u["fn"] + u["tp"] == config.eval.num_pairs
  best = metrics["fusion_best"]
  assert best["selected_on"] == "val"
  assert f"{best['rule']}/{best['normalization']}" in metrics["fusion"]
  for rule in config.eval.fusion_rules:
    for norm in config.eval.fusion_normalizations:
      assert math.isfinite(metrics["fusion"][f"{rule}/{norm}"]["auc"]), rule


def _check_sweep(runlocal):
  config, workdir, metrics = runlocal
  sweep = metrics["sweep"]
  rows = sweep["rows"]
  # The positive control at the headline's setting: with a shared latent (rho = 1) the
  # same recipe learns the cross-modal link, so the rho = 0 result is about the data.
  assert rows["rho_1.00"]["auc"] > 0.7
  assert rows["rho_1.00"]["auc_ci_low"] > rows["rho_0.00"]["auc_ci_high"]
  assert sweep["control_passed"] == 1.0
  assert sweep["smallest_detected_correlation"] == 1.0
  # rho = 0 is the main model, not a second one.
  assert rows["rho_0.00"]["auc"] == pytest.approx(metrics["cross_modal"]["test_overlap"]["auc"])
  assert sorted(rows) == [f"rho_{r:.2f}" for r in config.eval.sweep_correlations]
  for row in rows.values():
    assert 0.0 <= row["auc_ci_low"] <= row["auc"] <= row["auc_ci_high"] <= 1.0
  assert (workdir / "sweep" / "rho_1.00" / "train_log.jsonl").is_file()
  assert "| rho | cross-modal test AUC |" in (workdir / "report.md").read_text()


def test_fusion_choice_ignores_test_labels():
  # Two matchers of unequal quality on pairs over subjects; scrambling the test labels
  # must leave the chosen rule and normalisation (and its validation AUC) unchanged.
  config = face_fp_config.get_config("runlocal")
  config.eval.bootstrap_resamples = 20
  # A few rules with fitted parameters and two normalisations keep the test quick.
  config.eval.fusion_rules = ("sum", "weighted_sum", "max", "logistic_regression")
  config.eval.fusion_normalizations = ("z_score", "min_max")
  rng = np.random.default_rng(0)

  def split(n, offset):
    sa = rng.integers(0, 30, n) + offset
    same = rng.uniform(size=n) < 0.5
    sb = np.where(same, sa, sa + 1 + rng.integers(0, 29, n))
    y = (sa == sb).astype(np.int32)
    s = {"face": y * 1.5 + rng.normal(size=n), "fingerprint": y * 0.7 + rng.normal(size=n)}
    return s, y, (sa, sb)

  sv, yv, subj_v = split(600, 0)
  st, yt, subj_t = split(600, 100)
  scores = {m: {"val": sv[m], "test": st[m]} for m in sv}
  subjects = {"val": subj_v, "test": subj_t}
  ev = config.eval
  settings = (
    ev.threshold_method,
    tuple(ev.fusion_rules),
    tuple(ev.fusion_normalizations),
    ev.bootstrap_resamples,
    config.seed,
  )
  out = fusion.matchers_and_fusion(scores, {"val": yv, "test": yt}, subjects, *settings)
  scrambled = fusion.matchers_and_fusion(
    scores, {"val": yv, "test": rng.permutation(yt)}, subjects, *settings
  )
  for key in ("rule", "normalization", "val_auc", "selected_on", "best_single_on_val"):
    assert out["fusion_best"][key] == scrambled["fusion_best"][key], key
  assert out["fusion_best"]["selected_on"] == "val"
  assert out["fusion_best"]["auc"] > 0.8 and abs(scrambled["fusion_best"]["auc"] - 0.5) < 0.1


def test_cross_modal_pairs_relabel_rolled_rows():
  class FakeIterator:
    def __init__(self):
      self.state = {"n": 0}

    def __next__(self):
      ids = np.array([0, 1, 2, 3, 4, 4], np.int32)
      b = ids.astype(np.float32)[:, None, None, None]
      return {"image_a": b.copy(), "image_b": b, "identity": ids}

    def get_state(self):
      return self.state

    def set_state(self, state):
      self.state = state

  it = pipeline.CrossModalPairs(FakeIterator(), positive_fraction=0.5)
  batch = next(it)
  # Rows 0-2 keep their own fingerprint; rows 3-5 take the previous row's among them.
  np.testing.assert_array_equal(batch["image_b"].reshape(-1), [0, 1, 2, 4, 3, 4])
  np.testing.assert_array_equal(batch["label"], [1, 1, 1, 0, 0, 1])
  assert it.get_state() == {"n": 0}


def test_contrastive_diagnostics_margin_two_keeps_every_impostor_active():
  d = np.array([1.0, 1.0, 1.9, 1.99])
  y = np.array([1, 1, 0, 0])
  out = overlap.contrastive_diagnostics(d, y, margin=2.0)
  # p = 1/2: best constant distance (1 - p) * 2 = 1, loss p (1 - p) * 4 = 1.
  assert out["do_nothing_distance"] == pytest.approx(1.0)
  assert out["do_nothing_loss"] == pytest.approx(1.0)
  assert out["impostor_active_fraction"] == 1.0
  assert out["loss"] == pytest.approx((1 + 1 + 0.1**2 + 0.01**2) / 4)


def test_chimeric_virtual_subjects(shared_data):
  config = face_fp_config.get_config("chimeric")
  config.data.face_root = str(shared_data / "orl_faces")
  config.data.fingerprint_root = str(shared_data / "fvc2002_db_b")
  config.data.image_size = 16
  config.data.num_subjects = 5
  data = load_paired_data(config.data, config.seed)
  assert len(data.identity_names) == 5
  assert len(data) == 5 * 8  # FVC2002 B has 8 impressions per finger
  assert data.faces.shape == (40, 16, 16, 1) and data.fingerprints.shape == (40, 16, 16, 1)
  names = [n.split("+") for n in data.identity_names]
  assert len({f for f, _ in names}) == 5 and len({g for _, g in names}) == 5


def test_chimeric_needs_paths():
  config = face_fp_config.get_config("chimeric")
  with pytest.raises(ValueError, match="face_root"):
    load_paired_data(config.data, config.seed)
