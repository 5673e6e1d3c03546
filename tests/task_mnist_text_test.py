"""mnist_text task: splits, prototypes, the seed losses, runlocal end to end, MNIST IDX input."""

import gzip
import json
import struct

import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import mnist_text as config_lib
from jaxsim import objectives
from jaxsim.data import loaders, splits
from jaxsim.evaluate import retrieval
from jaxsim.tasks import mnist_text


def test_stratified_split_is_disjoint_and_balanced():
  labels = np.repeat(np.arange(10), 20)
  r = splits.stratified_split(labels, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
  all_records = np.concatenate(list(r.values()))
  assert len(all_records) == len(np.unique(all_records)) == 200
  for d in range(10):
    assert np.sum(labels[r["test"]] == d) == 3  # 15% of 20 in every class
  again = splits.stratified_split(labels, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=1)
  np.testing.assert_array_equal(r["test"], again["test"])
  capped = splits.stratified_split(labels, {"a": 0.5, "b": 0.5}, seed=0, max_per_split=7)
  assert len(capped["a"]) == len(capped["b"]) == 7


def test_zero_shot_uses_nearest_prototype():
  protos = np.eye(10)
  emb = np.eye(10)[[3, 3, 5, 1]]
  m = retrieval.nearest_prototype_metrics(emb, np.array([3, 4, 5, 1]), protos)
  assert m["accuracy"] == pytest.approx(0.75)
  assert m["accuracy_digit_4"] == 0.0 and m["accuracy_digit_3"] == 1.0


def test_seed_losses_have_negatives_unless_all_positive():
  # Two digits, embeddings collapsed to one point: with negatives the loss is positive,
  # with only positives (the source's training) the collapse is a perfect zero.
  a = jnp.ones((4, 8)) / jnp.sqrt(8.0)
  batch = {"identity": jnp.array([0, 1, 0, 1])}
  outputs = {"embeddings_a": a, "embeddings_b": a}
  with_neg, _ = objectives.rolled_pair_contrastive(0.5, all_positive=False)(outputs, batch)
  all_pos, _ = objectives.rolled_pair_contrastive(0.5, all_positive=True)(outputs, batch)
  assert float(with_neg) > 0.1
  assert float(all_pos) == pytest.approx(0.0, abs=1e-6)


def test_retrieval_intervals_cluster_text_queries_by_string():
  # Four text queries, two distinct strings: the bootstrap draws 2 units, not 4.
  q = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
  g = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, -0.1]])
  out = retrieval.retrieval_report(
    q,
    g,
    np.array([0, 0, 1, 1]),
    np.array([0, 1, 1]),
    (1,),
    np.array([0, 0, 1, 1]),
    num_resamples=50,
    seed=0,
  )
  # Label-0 queries: the first hit is relevant (R = 1); label-1 queries: item 1 first,
  # item 2 (label 1) last: R@1 = 1, AP@R (R = 2) = 1/2.
  assert out["recall_at_1"] == 1.0 and out["map_at_r"] == pytest.approx(0.75)
  assert out["ci_num_units"] == 2
  assert 0.5 <= out["map_at_r_ci_low"] <= out["map_at_r_ci_high"] <= 1.0


def test_config_variants():
  assert set(config_lib.get_config().train.variants) == {"contrastive", "clip"}
  assert set(config_lib.get_config("seed").train.variants) == {
    "seed_contrastive",
    "seed_all_positive",
  }
  cfg = config_lib.get_config("seed,runlocal")
  assert cfg.train.steps < config_lib.get_config().train.steps
  with pytest.raises(ValueError, match="unknown"):
    config_lib.get_config("bogus")


def _write_idx(path, array):
  dtype_code = {np.uint8: 0x08}[array.dtype.type]
  header = struct.pack(">BBBB", 0, 0, dtype_code, array.ndim) + struct.pack(
    f">{array.ndim}I", *array.shape
  )
  with gzip.open(path, "wb") as f:
    f.write(header + array.tobytes())


def test_mnist_source_from_idx_files(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
  labels = np.tile(np.arange(10, dtype=np.uint8), 3)
  _write_idx(tmp_path / "img.gz", images)
  _write_idx(tmp_path / "lab.gz", labels)
  cfg = config_lib.get_config("runlocal")
  cfg.data.source = "mnist"
  cfg.data.mnist_images, cfg.data.mnist_labels = str(tmp_path / "img.gz"), str(tmp_path / "lab.gz")
  source = loaders.load_digits(cfg.data)
  assert source.images.shape == (30, 28, 28, 1)
  np.testing.assert_allclose(source.images[4, ..., 0], images[4] / 255.0, rtol=1e-6)
  cfg.data.mnist_labels = ""
  with pytest.raises(ValueError, match="mnist_labels"):
    loaders.load_digits(cfg.data)


def test_runlocal_end_to_end(tmp_path):
  cfg = config_lib.get_config("runlocal")
  metrics = mnist_text.run(cfg, tmp_path)
  for name in ("metrics.json", "report.md", "split_manifest.json"):
    assert (tmp_path / name).exists()
  manifest = json.loads((tmp_path / "split_manifest.json").read_text())["records"]
  assert not set(manifest["train"]) & set(manifest["test"])
  assert not set(manifest["val"]) & set(manifest["test"])
  on_disk = json.loads((tmp_path / "metrics.json").read_text())
  assert set(on_disk["test"]) == {"contrastive", "clip"}
  for variant, test in metrics["test"].items():
    for group in ("zero_shot_seen", "zero_shot_heldout", "heldout_text"):
      assert 0.0 <= test[group]["accuracy"] <= 1.0
    for group in ("image_to_text_seen", "text_to_image_heldout"):
      m = test[group]
      assert 0 <= m["recall_at_1"] <= m["recall_at_5"] <= m["recall_at_10"] <= 1
    # Intervals over the independent units: test images, and distinct text strings for
    # text queries (fewer units than queries, since strings repeat).
    n = metrics["num_images"]["test"]
    for name in ("seen", "heldout"):
      z = test[f"zero_shot_{name}"]
      assert z["accuracy_ci_low"] <= z["accuracy"] <= z["accuracy_ci_high"]
      assert test[f"image_to_text_{name}"]["ci_num_units"] == n
      t2i = test[f"text_to_image_{name}"]
      assert 1 <= t2i["ci_num_units"] < n
      for k in ("recall_at_1", "map_at_r"):
        assert t2i[f"{k}_ci_low"] <= t2i[k] + 1e-12 and t2i[k] <= t2i[f"{k}_ci_high"] + 1e-12
    sel = metrics["selection"][variant]
    assert sel["best_val"] >= sel["first_val"]
  report = (tmp_path / "report.md").read_text()
  assert "t->i R@1 / MAP@R (held-out texts)" in report and "95% CIs by a bootstrap" in report
  # 60 InfoNCE steps already align the towers far beyond chance (0.1); the margin is
  # wide: runlocal reaches about 0.75 on a loaded CPU.
  assert metrics["test"]["clip"]["zero_shot_seen"]["accuracy"] > 0.3
