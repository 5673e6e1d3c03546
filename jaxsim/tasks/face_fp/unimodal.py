"""face_fp's unimodal part: a face and a fingerprint verifier, their baselines and their fusion."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxsim import baselines, describe, inference
from jaxsim import train as train_lib
from jaxsim.data import pipeline
from jaxsim.data.sources import ArrayImageSource
from jaxsim.data.sources.face_fingerprint import PairedArrays
from jaxsim.evaluate import clustered, fusion, verification
from jaxsim.tasks.face_fp.cross_modal import pair_subjects, prepare


def _data_config(config: Any, section: Any) -> ml_collections.ConfigDict:
  """`config` with `data` overridden by `section.{num_subjects, images_per_subject,
  difficulty}` (0 / -1 = keep); built-in data only."""
  out = ml_collections.ConfigDict(config.to_dict())
  if config.data.source != "builtin":
    return out
  if section.num_subjects:
    out.data.num_subjects = section.num_subjects
  if section.images_per_subject:
    out.data.images_per_subject = section.images_per_subject
  if section.difficulty >= 0:
    out.data.face_difficulty = out.data.fingerprint_difficulty = section.difficulty
  return out


def train_unimodal(
  config: Any,
  source: ArrayImageSource,
  records: Mapping[str, np.ndarray],
  val_pairs: Mapping[str, np.ndarray],
  workdir: pathlib.Path,
) -> tuple[Any, dict]:
  """Trains a Siamese verifier on one modality with PxK batches (selected on validation)."""
  tcfg = config.train.unimodal
  sampler = tcfg.sampler
  ds = pipeline.pxk_batches(
    source,
    records["train"],
    p=sampler.p,
    k=sampler.k,
    seed=tcfg.seed,
    augment=sampler.augment,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )

  def val_auc(model, variables):
    s = _unimodal_scores(model, variables, source.images, val_pairs)
    return {"val_auc": verification.roc_auc(s, val_pairs["label"])}

  model, variables, _ = train_lib.fit_model(
    workdir.name,
    config.model.unimodal,
    config.loss.unimodal.to_dict(),
    tcfg,
    pipeline.make_iterator(ds, num_threads=1),
    train_lib.SINGLE_INPUTS,
    workdir.parent,
    eval_fn=val_auc,
  )
  return model, variables


def _unimodal_scores(model, variables, images: np.ndarray, pairs) -> np.ndarray:
  """Cosine similarity of the shared-encoder embeddings of images[a] and images[b]."""
  ea, eb = inference.embed_pairs(
    model, variables, images, images, pairs["a"], pairs["b"], ("a", "a")
  )
  return np.sum(ea * eb, axis=-1)


def unimodal_and_fusion(config: Any, workdir: pathlib.Path) -> tuple[dict, list[str]]:
  """Trains the face and fingerprint verifiers on the unimodal data; evaluates them and fusion."""
  ucfg = _data_config(config, config.data.unimodal)
  data, _, records, pairs = prepare(ucfg)
  scores = {}
  for name, source in (("face", data.face_source()), ("fingerprint", data.fingerprint_source())):
    um, uv = train_unimodal(ucfg, source, records, pairs["val"], workdir / name)
    scores[name] = {k: _unimodal_scores(um, uv, source.images, pairs[k]) for k in ("val", "test")}
  ev = ucfg.eval
  out = fusion.matchers_and_fusion(
    scores,
    {k: pairs[k]["label"] for k in ("val", "test")},
    pair_subjects(data, pairs),
    ev.threshold_method,
    tuple(ev.fusion_rules),
    tuple(ev.fusion_normalizations),
    ev.bootstrap_resamples,
    ucfg.seed,
  )
  sentences = describe.fusion_sentences(out)
  if config.eval.baselines:
    found = {m: {"val": {}, "test": {}} for m in scores}
    out["baselines"] = _baselines(ucfg, data, records, pairs, found)
    sentences.append(baselines.baseline_sentence(out["baselines"]))
    if config.eval.get("fuse_baseline"):
      out["learned_plus_baseline"] = _fuse_with_baselines(ucfg, data, pairs, scores, out, found)
      sentences.append(describe.learned_plus_baseline_sentence(out["learned_plus_baseline"]))
  d = ucfg.data
  out["data"] = {
    "num_subjects": float(len(data.identity_names)),
    "num_records": float(len(data)),
    "face_difficulty": float(d.face_difficulty),
    "fingerprint_difficulty": float(d.fingerprint_difficulty),
  }
  return out, sentences


def _baselines(config: Any, data: PairedArrays, records, pairs, found) -> dict:
  """Classical baselines of each modality on the verifiers' test pairs (`jaxsim.baselines`);
  their val and test scores go to `found[modality]`."""
  out = {}
  for modality, images, names in (
    ("face", data.faces, baselines.FACE_BASELINES),
    ("fingerprint", data.fingerprints, baselines.FINGERPRINT_BASELINES),
  ):
    out[modality] = baselines.baseline_report(
      names,
      images,
      data.identities,
      records["train"],
      pairs["val"],
      pairs["test"],
      config.eval.bootstrap_resamples,
      config.seed,
      test_scores=found[modality]["test"],
      val_scores=found[modality]["val"],
    )
  return out


def _fuse_with_baselines(config: Any, data: PairedArrays, pairs, scores, out, found) -> dict:
  """Each verifier fused with its modality's baseline best on validation, where a
  cross-fitted check on validation subjects says it helps (`baselines.fuse_with_best`);
  test AUC with a bootstrap over test subjects."""
  subjects, fused = pair_subjects(data, pairs)["test"], {}
  for modality, learned in scores.items():
    best, info = baselines.fuse_with_best(
      out["baselines"][modality],
      found[modality],
      learned,
      data.identities,
      pairs["val"],
      config.seed,
    )
    statistic = clustered.verification_statistic(info.pop("scores")["test"], pairs["test"]["label"])
    fused[modality] = {
      "baseline": best,
      **info,
      **clustered.subject_bootstrap(
        statistic, *subjects, num_resamples=config.eval.bootstrap_resamples, seed=config.seed
      ),
    }
  return fused
