"""face_fp's cross-modal part: data and pairs, the two-tower model, its semantic-gap statistics."""

from __future__ import annotations

import math
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxsim import describe, inference, report
from jaxsim import train as train_lib
from jaxsim.data import pipeline, sampling, splits
from jaxsim.data.sources.face_fingerprint import PairedArrays, load_paired_data
from jaxsim.evaluate import cross_modal, overlap, verification


def prepare(config: Any, correlation: float | None = None, faces=None):
  """Data, identity split and fixed pair lists (train / val / test) of one data config."""
  data = load_paired_data(config.data, config.seed, correlation=correlation, faces=faces)
  groups, records = splits.split_records(data.identities, config.split.to_dict(), seed=config.seed)
  pairs = {
    name: sampling.sample_pairs(
      data.identities, config.eval.num_pairs, records=records[name], seed=config.seed + k
    )
    for k, name in enumerate(("train", "val", "test"))
  }
  return data, groups, records, pairs


def pair_subjects(data: PairedArrays, pairs) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  return {k: (data.identities[p["a"]], data.identities[p["b"]]) for k, p in pairs.items()}


def data_correlation(config: Any) -> float:
  return float(config.data.correlation) if config.data.source == "builtin" else math.nan


def cross_modal_distances(model, variables, data: PairedArrays, pairs) -> np.ndarray:
  """Euclidean distances between face[a] (tower a) and fingerprint[b] (tower b)."""
  ea, eb = inference.embed_pairs(
    model, variables, data.faces, data.fingerprints, pairs["a"], pairs["b"]
  )
  return np.linalg.norm(ea - eb, axis=-1)


def train_cross_modal(
  config: Any,
  data: PairedArrays,
  records: Mapping[str, np.ndarray],
  pairs: Mapping[str, Mapping[str, np.ndarray]],
  workdir: pathlib.Path,
) -> tuple[Any, dict, dict]:
  """Trains the two-tower model; returns (model, variables of the selected state, info)."""
  ds = pipeline.two_tower_batches(
    data,
    records["train"],
    batch_size=config.train.cross_modal.batch_size,
    seed=config.train.cross_modal.seed,
    augment=config.data.augment,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  it = pipeline.make_iterator(ds, num_threads=1)
  if config.loss.cross_modal.name == "pair_contrastive":
    it = pipeline.CrossModalPairs(it, config.loss.cross_modal.positive_fraction)

  def val_auc(model, variables):
    d = cross_modal_distances(model, variables, data, pairs["val"])
    return {"val_auc": verification.roc_auc(-d, pairs["val"]["label"])}

  return train_lib.fit_model(
    workdir.name,
    config.model.cross_modal,
    config.loss.cross_modal.to_dict(),
    config.train.cross_modal,
    it,
    train_lib.PAIR_INPUTS,
    workdir.parent,
    eval_fn=val_auc,
  )


def test_records_distances(model, variables, data: PairedArrays, records: np.ndarray):
  """Every test face (tower a) against every test fingerprint (tower b): distances, subjects."""
  ea = inference.embed(model, variables, data.faces[records], "a")
  eb = inference.embed(model, variables, data.fingerprints[records], "b")
  dist = np.linalg.norm(ea[:, None, :] - eb[None, :, :], axis=-1)
  return dist, data.identities[records], ea.shape[1]


def evaluate_cross_modal(
  config: Any, model, variables, data: PairedArrays, records, pairs, workdir: pathlib.Path
) -> tuple[dict, list[str], dict]:
  """The semantic-gap statistics of a trained cross-modal model, at the subject level.

  - AUC and overlap statistics of the fixed test pair list, 95% CIs by a bootstrap over
    test subjects; the identity permutation test of "no cross-modal information" on every
    test face against every test fingerprint.
  - The memorisation gap (train-pair AUC minus test-pair AUC), train and test subjects
    resampled within their own split.
  - The isotropy test against the sqrt(2) null on one distance per distinct record pair.
  """
  ev, seed = config.eval, config.seed
  dist = {k: cross_modal_distances(model, variables, data, pairs[k]) for k in ("train", "test")}
  lab = {k: np.asarray(pairs[k]["label"]) for k in ("train", "test")}
  full, ids, dim = test_records_distances(model, variables, data, records["test"])
  out = cross_modal.semantic_gap_report(
    dist,
    lab,
    pair_subjects(data, pairs),
    full,
    (ids, ids),
    dim,
    ev.bootstrap_resamples,
    ev.permutations,
    seed,
  )
  loss = config.loss.cross_modal
  if loss.name == "pair_contrastive":
    for k in ("train", "test"):
      out[f"contrastive_{k}"] = overlap.contrastive_diagnostics(dist[k], lab[k], loss.margin)
  figure = report.plot_distance_histograms(
    dist["test"][lab["test"] == 1],
    dist["test"][lab["test"] == 0],
    dim,
    workdir / "distances_test.png",
    title=f"Cross-modal test distances (rho = {data_correlation(config):g})",
  )
  return (
    out,
    describe.semantic_gap_sentences(out),
    {"Cross-modal test distances vs the sqrt(2) null": figure},
  )
