"""similarity_search task: runlocal end to end, the Totally Looks Like loader, chance levels."""

import json

import numpy as np
import pytest
from PIL import Image

from experiments.configs import similarity_search as config_lib
from jaxsim.data import loaders
from jaxsim.data.sources import SyntheticLookalikePairs
from jaxsim.evaluate import retrieval
from jaxsim.tasks import similarity_search


def test_chance_metrics():
  c = retrieval.partner_chance_metrics(4)
  assert c["recall_at_1"] == pytest.approx(0.25)
  assert c["recall_at_5"] == pytest.approx(1.0)
  assert c["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


def test_partner_ranks_and_subject_intervals():
  left = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  right = np.array([[1.0, 0.1], [1.0, 0.0], [0.0, 1.0]])
  labels = np.array([7, 8, 9])
  # Cosine scores. Query 7: partner .995, behind (1, 0) at 1.0 -> rank 2. Query 8: partner
  # (1, 0) scores 0, behind (0, 1) at 1 and (1, .1) at .0995 -> 3. Query 9: partner
  # (0, 1) scores .707, behind (1, .1) at .774 and tied with (1, 0): ties count against -> 3.
  ranks = retrieval.partner_ranks(left, right, labels)
  np.testing.assert_array_equal(ranks, [2, 3, 3])
  out = retrieval.partner_rank_intervals(ranks, labels, num_resamples=50, seed=0)
  assert out["recall_at_1"] == 0.0 and out["recall_at_10"] == 1.0
  assert out["mrr"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 3) / 3)
  assert out["mrr_ci_low"] >= 1 / 3 - 1e-12 and out["mrr_ci_high"] <= 1 / 2 + 1e-12
  assert out["num_subjects"] == 3
  with pytest.raises(ValueError, match="exactly one relevant"):
    retrieval.partner_ranks(left, right, np.array([7, 7, 9]))


def test_config_variants():
  seed = config_lib.get_config("seed")
  assert seed.model.encoder.dim == 256 and seed.model.encoder.head_batch_norm
  assert seed.loss.triplet.margin == 0.2 and seed.loss.contrastive.margin == 0.3
  default = config_lib.get_config()
  assert default.split.num_seeds >= 3
  # The contrastive margin is tuned per seed on its own validation split.
  assert 2 <= len(default.loss.contrastive.margin_grid) <= 3
  assert seed.loss.contrastive.margin_grid == ()
  assert default.train.checkpoint_every == default.train.eval_every
  with pytest.raises(ValueError, match="unknown"):
    config_lib.get_config("nonsense")


def _write_tll(root, num_pairs, size=20):
  source = SyntheticLookalikePairs(num_pairs, image_size=size, seed=3)
  for side in ("left", "right"):
    (root / side).mkdir(parents=True)
  for i in range(num_pairs):
    r = source[i]
    for side, key in (("left", "image_a"), ("right", "image_b")):
      Image.fromarray((r[key] * 255).astype(np.uint8)).save(root / side / f"{i:04d}.png")
  return source


def test_tll_loader_reads_generated_files(tmp_path):
  source = _write_tll(tmp_path / "tll", 6)
  cfg = config_lib.get_config("runlocal")
  cfg.data.source, cfg.data.root, cfg.data.image_size = "tll", str(tmp_path / "tll"), 20
  pairs = loaders.load_lookalike_pairs(cfg.data)
  assert len(pairs) == 6 and pairs.images_a.shape == (6, 20, 20, 3)
  # Stems sort as written, so pair i is file i; PNG keeps 8-bit precision.
  np.testing.assert_allclose(pairs.images_a[2], source[2]["image_a"], atol=1 / 255 + 1e-6)
  np.testing.assert_allclose(pairs.images_b[5], source[5]["image_b"], atol=1 / 255 + 1e-6)
  assert len(np.unique(pairs.identities)) == 6
  (tmp_path / "tll" / "right" / "0003.png").unlink()
  with pytest.raises(ValueError, match="0003"):
    loaders.load_lookalike_pairs(cfg.data)
  cfg.data.root = ""
  with pytest.raises(ValueError, match="data.root"):
    loaders.load_lookalike_pairs(cfg.data)


def _check_run(workdir, metrics, losses, num_seeds):
  for name in ("metrics.json", "report.md"):
    assert (workdir / name).exists()
  for name in losses:
    assert (workdir / f"retrieval_{name}.png").stat().st_size > 0
  on_disk = json.loads((workdir / "metrics.json").read_text())
  assert set(on_disk["test"]) == set(losses)
  # The classical baselines retrieve from the same test gallery, summarised over seeds.
  assert set(on_disk["baselines"]) == {"raw_pixels", "eigenfaces", "fisherfaces", "lbp"}
  for row in on_disk["baselines"].values():
    assert 0 <= row["recall_at_1_min"] <= row["recall_at_1_mean"] <= row["recall_at_1_max"] <= 1
  assert "Classical baselines on the same test queries" in (workdir / "report.md").read_text()
  for s in range(num_seeds):
    manifest = json.loads((workdir / f"seed{s}" / "split_manifest.json").read_text())
    ids = {k: set(v["identities"]) for k, v in manifest["splits"].items()}
    assert not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    assert not (ids["train"] & ids["val"])
  for name in losses:
    for s in range(num_seeds):
      m = metrics["per_seed"][f"{name}_seed{s}"]
      assert 0 <= m["recall_at_1"] <= m["recall_at_5"] <= m["recall_at_10"] <= 1
      assert m["map_at_r"] == pytest.approx(m["recall_at_1"])  # one relevant item
      assert m["recall_at_1"] <= m["mrr"] <= 1
      assert m["recall_at_1_ci_low"] <= m["recall_at_1"] <= m["recall_at_1_ci_high"]
      assert m["mrr_ci_low"] <= m["mrr"] <= m["mrr_ci_high"]
      assert m["ci_num_identities"] == m["gallery_size"]
      sel = metrics["selection"][f"{name}_seed{s}"]
      assert sel["num_evals"] >= 2
      if name == "contrastive":
        # Chosen on this seed's validation: the winner has the best validation R@1.
        tried = {k: v for k, v in sel.items() if "_margin_" in k}
        assert len(tried) == 2 and sel["margin"] in (0.8, 1.2)
        assert sel["best_val"] == max(tried.values())
      assert sel["best_val"] >= sel["first_val"]  # selection never keeps a worse model
    t = metrics["test"][name]
    assert t["recall_at_1_min"] <= t["recall_at_1_mean"] <= t["recall_at_1_max"]
  report = (workdir / "report.md").read_text()
  assert "Chance: R@1 = 1/N" in report
  assert "chosen on this seed's validation" in report and "95% CI over" in report


def test_synthetic_pairs_load():
  cfg = config_lib.get_config("runlocal")
  cfg.data.num_pairs = 5
  pairs = loaders.load_lookalike_pairs(cfg.data)
  assert pairs.images_a.shape == (5, cfg.data.image_size, cfg.data.image_size, 3)
  np.testing.assert_array_equal(pairs.identities, np.arange(5))


def test_runlocal_end_to_end_on_generated_tll_files(tmp_path):
  # The runlocal pipeline, fed through the real-data (Totally Looks Like) loader.
  _write_tll(tmp_path / "tll", 100)
  cfg = config_lib.get_config("runlocal")
  cfg.data.source, cfg.data.root, cfg.data.image_size = "tll", str(tmp_path / "tll"), 20
  metrics = similarity_search.run(cfg, tmp_path / "run")
  _check_run(tmp_path / "run", metrics, ("contrastive", "triplet"), cfg.split.num_seeds)
  n = metrics["per_seed"]["triplet_seed0"]["gallery_size"]
  assert n == 15  # 15% of 100 pairs
  assert metrics["chance"]["recall_at_1"] == pytest.approx(1 / n)
  assert "triplet_minus_contrastive" in metrics
