"""Face <-> fingerprint: cross-modal metric learning, its null tests, fusion and a positive control.

    python -m experiments.run --config=face_fp            # built-in data, <= 15 min on 2 CPU cores
    python -m experiments.run --config=face_fp:runlocal   # the same pipeline in < 2 min
    python -m experiments.run --config=face_fp:seed       # source project 1's recipe

What one run does (all splits by identity, fixed by `config.seed`; manifest in
`split_manifest.json`):

1. Cross-modal two-tower model (face tower `a`, fingerprint tower `b`, separate weights,
   L2-normalised embeddings) trained on the train subjects at correlation
   `data.correlation` (0: a person's fingerprint is independent of their face). On fixed
   pair lists (drawn once per split, half genuine) it reports the test cross-modal AUC
   with a bootstrap interval, the train-pair minus test-pair AUC (memorisation), the
   overlap statistics of genuine and impostor distances (`evaluate.overlap`) and the test
   of both distance samples against the exact sqrt(2) null for random unit vectors.
2. Unimodal Siamese verifiers for faces and for fingerprints of the same subjects, with
   test metrics at a threshold chosen on validation, and their score-level fusion
   (`evaluate.fusion`: normalisation and rules fitted on validation, compared on test).
   The pair lists are over record pairs, and record i of both modalities belongs to the
   same subject, so each pair has a face score and a fingerprint score.
3. A correlation sweep: the same cross-modal recipe on data with rho in
   `sweep.correlations`, test AUC against rho (the positive control: the pipeline learns
   when a shared latent exists).

Files: `metrics.json`, `report.md`, `distances_test.png`, `sweep_auc.png`, one sub-workdir
per trained model (`cross_modal/`, `face/`, `fingerprint/`, `sweep/rho_*`) with its
JSONL log and checkpoints. Re-running the same workdir resumes each model.
"""

from __future__ import annotations

import json
import math
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging

from jaxsim import checkpoint, inference, models, objectives, report
from jaxsim import train as train_lib
from jaxsim.data import pipeline, sampling, splits
from jaxsim.data.sources import (
  ArrayImageSource,
  ArrayPairSource,
  FaceFingerprintSource,
  fvc2002_source,
  identity_folder_source,
  paired_identity_folder_source,
)
from jaxsim.evaluate import fusion, overlap, verification

# ---------------------------------------------------------------------------
# Data


class PairedArrays(ArrayPairSource):
  """Face (modality A) and fingerprint (modality B) images of the same subjects in memory.

  Record i: `{"image_a": face, "image_b": fingerprint, "identity": int32}`, the face and
  the fingerprint of subject `identities[i]`, whose name is `identity_names[...]`.
  """

  def __init__(self, faces: np.ndarray, fingerprints: np.ndarray, identities: np.ndarray, names):
    super().__init__(faces, fingerprints, identities, modalities=("face", "fingerprint"))
    self.identity_names = list(names)

  @property
  def faces(self) -> np.ndarray:
    return self.images_a

  @property
  def fingerprints(self) -> np.ndarray:
    return self.images_b

  def face_source(self) -> ArrayImageSource:
    return self.source_a()

  def fingerprint_source(self) -> ArrayImageSource:
    return self.source_b()


def _stack(source, n: int) -> np.ndarray:
  return np.stack([source[i]["image"] for i in range(n)])


def builtin_data(cfg: Any, correlation: float, faces: np.ndarray | None = None) -> PairedArrays:
  """Renders `FaceFingerprintSource` at `correlation` (faces do not depend on it: reusable)."""
  src = FaceFingerprintSource(
    cfg.num_subjects,
    cfg.images_per_subject,
    correlation=correlation,
    image_size=cfg.image_size,
    face_difficulty=cfg.face_difficulty,
    fingerprint_difficulty=cfg.fingerprint_difficulty,
    seed=cfg.get("seed", 0),
  )
  n = len(src)
  face_images = _stack(src.faces, n) if faces is None else faces
  fp = _stack(src.fingerprints, n)
  names = [f"subject_{s}" for s in range(cfg.num_subjects)]
  return PairedArrays(face_images, fp, src.identities, names)


def chimeric_data(cfg: Any, seed: int) -> PairedArrays:
  """Virtual subjects: face identity j paired at random with fingerprint identity j.

  The usual construction of multibiometric studies without a true multimodal set. Each
  virtual subject gets min(#faces, #impressions) records (the first ones in file order),
  and there are min(#face identities, #fingers) subjects (or `num_subjects`).
  """
  if not cfg.face_root or not cfg.fingerprint_root:
    raise ValueError(
      "data.source='chimeric' needs --config.data.face_root=DIR (root/<subject>/<image>, "
      "e.g. ORL faces) and --config.data.fingerprint_root=DIR (FVC2002 with DBn_B folders)"
    )
  size = cfg.image_size
  skip = cfg.get("skip_corrupt", False)
  faces = identity_folder_source(
    cfg.face_root, image_size=size, channels=cfg.face_channels, modality="face", skip_corrupt=skip
  )
  fps = fvc2002_source(
    cfg.fingerprint_root,
    tuple(cfg.fingerprint_databases),
    image_size=size,
    crop_fraction=cfg.fingerprint_crop,
    skip_corrupt=skip,
  )
  num_faces, num_fingers = len(faces.identity_names), len(fps.identity_names)
  n = min(num_faces, num_fingers)
  if cfg.num_subjects:
    if cfg.num_subjects > n:
      raise ValueError(
        f"data.num_subjects={cfg.num_subjects} but only {num_faces} face identities and "
        f"{num_fingers} fingers were found; use at most {n}"
      )
    n = cfg.num_subjects
  rng = np.random.default_rng([seed, 0xC41])
  face_ids = rng.permutation(num_faces)[:n]
  finger_ids = rng.permutation(num_fingers)[:n]
  per = min(
    min(int(np.sum(faces.identities == f)) for f in face_ids),
    min(int(np.sum(fps.identities == g)) for g in finger_ids),
  )
  face_images, fp_images, ids, names = [], [], [], []
  for subject, (f, g) in enumerate(zip(face_ids, finger_ids, strict=True)):
    fr = np.flatnonzero(faces.identities == f)[:per]
    gr = np.flatnonzero(fps.identities == g)[:per]
    face_images += [faces[int(r)]["image"] for r in fr]
    fp_images += [fps[int(r)]["image"] for r in gr]
    ids += [subject] * per
    names.append(f"{faces.identity_names[f]}+{fps.identity_names[g]}")
  return PairedArrays(np.stack(face_images), np.stack(fp_images), np.array(ids), names)


def paired_folder_data(cfg: Any) -> PairedArrays:
  """A real paired set, `root/face/<id>/*` and `root/fingerprint/<id>/*`."""
  if not cfg.root:
    raise ValueError("data.source='paired_folders' needs --config.data.root=DIR")
  src = paired_identity_folder_source(
    cfg.root,
    channels_a=cfg.face_channels,
    channels_b=1,
    image_size=cfg.image_size,
    skip_corrupt=cfg.get("skip_corrupt", False),
  )
  rows = [src[i] for i in range(len(src))]
  return PairedArrays(
    np.stack([r["image_a"] for r in rows]),
    np.stack([r["image_b"] for r in rows]),
    src.identities,
    src.identity_names,
  )


def load_data(config: Any, correlation: float | None = None, faces=None) -> PairedArrays:
  cfg = ml_collections.ConfigDict(config.data.to_dict())
  cfg.seed = config.seed
  if cfg.source == "builtin":
    rho = cfg.correlation if correlation is None else correlation
    return builtin_data(cfg, rho, faces)
  if cfg.source == "chimeric":
    return chimeric_data(cfg, config.seed)
  if cfg.source == "paired_folders":
    return paired_folder_data(cfg)
  raise ValueError(f"data.source must be builtin, chimeric or paired_folders, got {cfg.source!r}")


# ---------------------------------------------------------------------------
# Training


class CrossModalPairs:
  """Cross-modal pairs `{"image_a", "image_b", "label"}` from two-tower batches.

  The first `round(B * positive_fraction)` rows keep their own fingerprint (genuine
  pairs); the other rows take the fingerprint of the next row among them (impostor
  pairs, unless that row happens to hold the same subject: the label says which).
  This is the pair protocol of source project 1. The wrapped Grain iterator's state is
  passed through, so `fit` checkpoints and resumes it exactly.
  """

  def __init__(self, iterator, positive_fraction: float = 0.5):
    self._it = iterator
    self.positive_fraction = positive_fraction

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._it)
    ids, b = batch["identity"], batch["image_b"].copy()
    p = int(round(len(ids) * self.positive_fraction))
    perm = np.arange(len(ids))
    perm[p:] = np.roll(perm[p:], 1)
    b = b[perm]
    label = (ids == ids[perm]).astype(np.int32)
    return {"image_a": batch["image_a"], "image_b": b, "label": label}

  def get_state(self):
    return self._it.get_state()

  def set_state(self, state) -> None:
    self._it.set_state(state)


def _restore_best(result: train_lib.FitResult, workdir: pathlib.Path, cfg: Any) -> dict:
  """The train state of the best validation checkpoint (the last one without ranking)."""
  if not cfg.best_metric or result.best_step is None or result.best_step == cfg.steps:
    return result.state
  ckpt = checkpoint.Checkpointer(
    workdir / "checkpoints",
    save_every=max(cfg.checkpoint_every, 1),
    keep=cfg.keep_checkpoints,
    best_metric=cfg.best_metric,
    best_mode=cfg.best_mode,
  )
  try:
    return ckpt.restore(result.best_step, result.state)
  finally:
    ckpt.close()


def _cross_modal_scores(model, variables, data: PairedArrays, pairs) -> np.ndarray:
  """Euclidean distances between face[a] (tower a) and fingerprint[b] (tower b)."""
  used = np.unique(np.concatenate([pairs["a"], pairs["b"]]))
  pos = np.searchsorted(used, [pairs["a"], pairs["b"]])
  ea = inference.embed(model, variables, data.faces[used], "a")
  eb = inference.embed(model, variables, data.fingerprints[used], "b")
  return np.linalg.norm(ea[pos[0]] - eb[pos[1]], axis=-1)


def train_cross_modal(
  config: Any,
  data: PairedArrays,
  records: Mapping[str, np.ndarray],
  pairs: Mapping[str, Mapping[str, np.ndarray]],
  workdir: pathlib.Path,
  steps: int | None = None,
) -> tuple[Any, dict, dict]:
  """Trains the two-tower model; returns (model, variables of the selected state, info)."""
  tcfg = ml_collections.ConfigDict(config.train.to_dict())
  if steps:
    tcfg.steps = steps
    tcfg.eval_every = min(tcfg.eval_every, steps) if tcfg.eval_every else 0
    tcfg.checkpoint_every = min(tcfg.checkpoint_every, steps)
  model = models.model_from_config(config.model)
  loss_cfg = config.loss.to_dict()
  loss_fn = objectives.objective_from_config(loss_cfg)
  ds = pipeline.two_tower_batches(
    data,
    records["train"],
    batch_size=tcfg.batch_size,
    seed=tcfg.seed,
    augment=config.data.augment,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  it = pipeline.make_iterator(ds, num_threads=1)
  if loss_cfg["name"] == "pair_contrastive":
    it = CrossModalPairs(it, config.loss.positive_fraction)

  def eval_fn(state):
    d = _cross_modal_scores(model, inference.variables_of(state), data, pairs["val"])
    return {"val_auc": verification.roc_auc(-d, pairs["val"]["label"])}

  result = train_lib.fit(
    tcfg,
    model=model,
    loss_fn=loss_fn,
    train_iter=it,
    workdir=workdir,
    inputs=train_lib.PAIR_INPUTS,
    eval_fn=eval_fn,
  )
  state = _restore_best(result, workdir, tcfg)
  info = {
    "steps": float(tcfg.steps),
    "selected_step": float(
      result.best_step if tcfg.best_metric and result.best_step else tcfg.steps
    ),
    "final_train_loss": result.last_metrics.get("loss", _last_logged_loss(workdir)),
  }
  return model, inference.variables_of(state), info


def _last_logged_loss(workdir: pathlib.Path) -> float:
  """The last training loss in the JSONL log (a resumed, finished run trains no step)."""
  log = workdir / "train_log.jsonl"
  losses = (
    [json.loads(line).get("loss") for line in log.read_text().splitlines()] if log.is_file() else []
  )
  losses = [x for x in losses if x is not None]
  return float(losses[-1]) if losses else math.nan


def train_unimodal(
  config: Any,
  source: ArrayImageSource,
  records: Mapping[str, np.ndarray],
  val_pairs: Mapping[str, np.ndarray],
  workdir: pathlib.Path,
) -> tuple[Any, dict]:
  """Trains a Siamese verifier on one modality with PxK batches."""
  u = config.unimodal
  tcfg = ml_collections.ConfigDict(config.train.to_dict())
  tcfg.steps = u.steps
  tcfg.batch_size = u.p * u.k
  tcfg.learning_rate = u.learning_rate
  tcfg.warmup_steps = min(tcfg.warmup_steps, u.steps // 10)
  tcfg.eval_every = min(tcfg.eval_every, u.steps) if tcfg.eval_every else 0
  tcfg.checkpoint_every = min(tcfg.checkpoint_every, u.steps)
  tcfg.best_metric = "val_auc"
  model = models.model_from_config({"kind": "siamese", "encoder": u.encoder.to_dict()})
  ds = pipeline.pxk_batches(
    source,
    records["train"],
    p=u.p,
    k=u.k,
    seed=tcfg.seed,
    augment=config.unimodal.augment,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
  )
  it = pipeline.make_iterator(ds, num_threads=1)

  def eval_fn(state):
    s = _unimodal_scores(model, inference.variables_of(state), source.images, val_pairs)
    return {"val_auc": verification.roc_auc(s, val_pairs["label"])}

  result = train_lib.fit(
    tcfg,
    model=model,
    loss_fn=objectives.objective_from_config(u.loss.to_dict()),
    train_iter=it,
    workdir=workdir,
    inputs=train_lib.SINGLE_INPUTS,
    eval_fn=eval_fn,
  )
  return model, inference.variables_of(_restore_best(result, workdir, tcfg))


def _unimodal_scores(model, variables, images: np.ndarray, pairs) -> np.ndarray:
  """Cosine similarity of the shared-encoder embeddings of images[a] and images[b]."""
  used = np.unique(np.concatenate([pairs["a"], pairs["b"]]))
  pos = np.searchsorted(used, [pairs["a"], pairs["b"]])
  e = inference.embed(model, variables, images[used], "a")
  return np.sum(e[pos[0]] * e[pos[1]], axis=-1)


# ---------------------------------------------------------------------------
# Evaluation


def weighted_auc(scores, labels, weights) -> float:
  """ROC-AUC with per-pair weights (ties count one half): P_w(genuine > impostor)."""
  s, y, w = (np.asarray(x, np.float64).reshape(-1) for x in (scores, labels, weights))
  _, group = np.unique(s, return_inverse=True)
  pos = np.bincount(group, w * (y == 1))
  neg = np.bincount(group, w * (y == 0))
  below = np.cumsum(neg) - neg
  total = pos.sum() * neg.sum()
  return float(np.sum(pos * (below + 0.5 * neg)) / total) if total > 0 else math.nan


def subject_bootstrap_auc(
  scores, labels, subjects_a, subjects_b, resamples: int, seed: int, confidence: float = 0.95
) -> dict[str, float]:
  """AUC of a fixed pair list with a bootstrap over subjects (the independent units).

  Pairs that share a subject are not independent, so a bootstrap over pairs is too
  narrow when there are few subjects. Here each replicate draws the subjects with
  replacement; a pair (s, t) then counts c_s c_t times (c = how often a subject was
  drawn), a genuine pair (s, s) c_s times. Reference: the cluster bootstrap, Davison and
  Hinkley 1997, Bootstrap Methods and their Application, sec. 3.8.

  Returns:
    `auc`, `auc_subject_ci_low`, `auc_subject_ci_high`, `num_subjects`.
  """
  sa, sb = np.asarray(subjects_a), np.asarray(subjects_b)
  y = np.asarray(labels)
  ids, inv = np.unique(np.concatenate([sa, sb]), return_inverse=True)
  ia, ib = inv[: len(sa)], inv[len(sa) :]
  rng = np.random.default_rng([seed, 0xB005])
  reps = np.empty(resamples)
  for r in range(resamples):
    c = np.bincount(rng.integers(0, len(ids), len(ids)), minlength=len(ids)).astype(np.float64)
    w = np.where(y == 1, c[ia], c[ia] * c[ib])
    reps[r] = weighted_auc(scores, y, w)
  alpha = (1 - confidence) / 2
  lo, hi = np.nanquantile(reps, [alpha, 1 - alpha])
  return {
    "auc": weighted_auc(scores, y, np.ones(len(y))),
    "auc_subject_ci_low": float(lo),
    "auc_subject_ci_high": float(hi),
    "num_subjects": float(len(ids)),
  }


def _auc_with_ci(scores, labels, resamples: int, seed: int, subjects=None) -> dict[str, float]:
  g, i = verification.split_by_label(scores, labels)
  lo, hi = verification.bootstrap_ci(overlap.auc, (g, i), resamples, 0.95, seed)
  out = {"auc": overlap.auc(g, i), "auc_ci_low": lo, "auc_ci_high": hi}
  if subjects is not None:
    sub = subject_bootstrap_auc(scores, labels, *subjects, resamples, seed)
    out["auc_subject_ci_low"] = sub["auc_subject_ci_low"]
    out["auc_subject_ci_high"] = sub["auc_subject_ci_high"]
  return out


def contrastive_diagnostics(distances, labels, margin: float) -> dict[str, float]:
  """Contrastive-loss bookkeeping that exposes an unreachable margin.

  `do_nothing_loss` is the loss of the best constant distance d* = (1 - p) margin
  (p = share of genuine pairs), p (1 - p) margin^2, reached without telling anyone apart;
  a loss near it means nothing was learned. On unit vectors d <= 2, so with margin >= 2
  every impostor pair stays active (`impostor_active_fraction` = 1).
  """
  d = np.asarray(distances, np.float64)
  y = np.asarray(labels)
  p = float(np.mean(y == 1))
  loss = np.where(y == 1, d**2, np.maximum(margin - d, 0.0) ** 2)
  return {
    "margin": float(margin),
    "loss": float(loss.mean()),
    "do_nothing_loss": p * (1 - p) * margin**2,
    "do_nothing_distance": (1 - p) * margin,
    "impostor_active_fraction": float(np.mean(d[y == 0] < margin)),
  }


def _distance_summary(distances, labels) -> dict[str, float]:
  g, i = distances[labels == 1], distances[labels == 0]
  return {
    "genuine_mean": float(g.mean()),
    "genuine_std": float(g.std(ddof=1)),
    "impostor_mean": float(i.mean()),
    "impostor_std": float(i.std(ddof=1)),
    "min": float(distances.min()),
    "max": float(distances.max()),
    "impostor_fraction_above_1.9": float(np.mean(i > 1.9)),
  }


def evaluate_cross_modal(
  config: Any, model, variables, data: PairedArrays, pairs, workdir: pathlib.Path
) -> tuple[dict, list[str], dict]:
  """The semantic-gap statistics of a trained cross-modal model."""
  ev = config.eval
  dim = int(config.model.encoder_a.dim)
  dist = {k: _cross_modal_scores(model, variables, data, pairs[k]) for k in ("train", "test")}
  lab = {k: np.asarray(pairs[k]["label"]) for k in ("train", "test")}
  tg, ti = dist["test"][lab["test"] == 1], dist["test"][lab["test"] == 0]
  out: dict[str, Any] = {}
  out["test_overlap"] = overlap.overlap_metrics(-tg, -ti, ev.bootstrap_resamples, seed=config.seed)
  out["memorisation"] = overlap.auc_gap(
    -dist["train"][lab["train"] == 1],
    -dist["train"][lab["train"] == 0],
    -tg,
    -ti,
    ev.bootstrap_resamples,
    seed=config.seed,
  )
  out["test_subject_bootstrap"] = subject_bootstrap_auc(
    -dist["test"],
    lab["test"],
    data.identities[pairs["test"]["a"]],
    data.identities[pairs["test"]["b"]],
    ev.bootstrap_resamples,
    config.seed,
  )
  out["null_test_genuine"] = overlap.null_distance_test(tg, dim)
  out["null_test_impostor"] = overlap.null_distance_test(ti, dim)
  out["test_distances"] = _distance_summary(dist["test"], lab["test"])
  out["train_distances"] = _distance_summary(dist["train"], lab["train"])
  if config.loss.name == "pair_contrastive":
    out["contrastive_train"] = contrastive_diagnostics(
      dist["train"], lab["train"], config.loss.margin
    )
    out["contrastive_test"] = contrastive_diagnostics(dist["test"], lab["test"], config.loss.margin)
  o, m, sb = out["test_overlap"], out["memorisation"], out["test_subject_bootstrap"]
  sentences = [
    f"Cross-modal (face -> fingerprint) test AUC {o['auc']:.3f}: 95% CI "
    f"{sb['auc_subject_ci_low']:.3f}-{sb['auc_subject_ci_high']:.3f} by a bootstrap over the "
    f"{int(sb['num_subjects'])} test subjects ({o['auc_ci_low']:.3f}-{o['auc_ci_high']:.3f} "
    f"over the {int(o['num_genuine'])} genuine / {int(o['num_impostor'])} impostor pairs, "
    f"too narrow since pairs share subjects); on training subjects' pairs "
    f"{m['train_auc']:.3f}, a memorisation gap of "
    f"{m['auc_gap']:.3f} (CI {m['auc_gap_ci_low']:.3f}-{m['auc_gap_ci_high']:.3f}). "
    f"Decidability d' = {o['decidability']:.3f}, Bhattacharyya {o['bhattacharyya']:.3f}, "
    f"overlap coefficient {o['overlap_coefficient']:.3f}, KS {o['ks_statistic']:.3f}.",
    report.null_test_sentence(out["null_test_genuine"], "genuine test distances"),
    report.null_test_sentence(out["null_test_impostor"], "impostor test distances"),
  ]
  if "contrastive_train" in out:
    c0, c1 = out["contrastive_train"], out["contrastive_test"]
    sentences.append(
      f"Contrastive margin {c0['margin']:g} on unit vectors (distance <= 2): "
      f"{100 * c0['impostor_active_fraction']:.0f}% of impostor pairs stay active; "
      f"the do-nothing loss (every pair at distance {c0['do_nothing_distance']:.2f}) is "
      f"{c0['do_nothing_loss']:.3f}; the trained model's loss is {c0['loss']:.3f} on "
      f"training pairs and {c1['loss']:.3f} on test pairs."
    )
  figure = report.plot_distance_histograms(
    tg,
    ti,
    dim,
    workdir / "distances_test.png",
    title=f"Cross-modal test distances (rho = {data_correlation(config):g})",
  )
  return out, sentences, {"Cross-modal test distances vs the sqrt(2) null": figure}


def data_correlation(config: Any) -> float:
  return float(config.data.correlation) if config.data.source == "builtin" else math.nan


def evaluate_unimodal_and_fusion(
  config: Any,
  scores: Mapping[str, Mapping[str, np.ndarray]],
  pairs,
) -> tuple[dict, list[str]]:
  """Verification reports of each modality and the fusion comparison."""
  ev = config.eval
  yv, yt = pairs["val"]["label"], pairs["test"]["label"]
  out: dict[str, Any] = {}
  for name in ("face", "fingerprint"):
    out[name] = verification.verification_report(
      scores[name]["val"], yv, scores[name]["test"], yt, method=ev.threshold_method
    )
    out[name].update(
      {
        f"auc_ci_{k}": v
        for k, v in zip(
          ("low", "high"),
          verification.bootstrap_ci(
            overlap.auc,
            verification.split_by_label(scores[name]["test"], yt),
            ev.bootstrap_resamples,
            0.95,
            config.seed,
          ),
          strict=True,
        )
      }
    )
  sv = np.stack([scores["face"]["val"], scores["fingerprint"]["val"]], 1)
  st = np.stack([scores["face"]["test"], scores["fingerprint"]["test"]], 1)
  comp = fusion.fusion_comparison(
    sv, yv, st, yt, tuple(ev.fusion_rules), ev.fusion_normalization, seed=config.seed
  )
  comp = {
    k.replace("matcher_0", "face").replace("matcher_1", "fingerprint"): v for k, v in comp.items()
  }
  out["fusion"] = comp
  best_rule = max(ev.fusion_rules, key=lambda r: comp[f"{r}_auc"])
  out["fusion_best"] = {"auc": comp[f"{best_rule}_auc"], "eer": comp[f"{best_rule}_eer"]}
  f, p = out["face"], out["fingerprint"]
  sentences = [
    f"Unimodal verifiers on test subjects (threshold from validation): face AUC {f['auc']:.3f} "
    f"(CI {f['auc_ci_low']:.3f}-{f['auc_ci_high']:.3f}), EER {f['eer']:.3f}, accuracy "
    f"{f['accuracy']:.3f}; fingerprint AUC {p['auc']:.3f} (CI {p['auc_ci_low']:.3f}-"
    f"{p['auc_ci_high']:.3f}), EER {p['eer']:.3f}, accuracy {p['accuracy']:.3f}.",
    f"Score-level fusion ({ev.fusion_normalization} normalisation, fitted on validation): best "
    f"rule on test is {best_rule} with AUC {comp[f'{best_rule}_auc']:.3f} and EER "
    f"{comp[f'{best_rule}_eer']:.3f}; sum rule AUC {comp.get('sum_auc', math.nan):.3f}.",
  ]
  return out, sentences


# ---------------------------------------------------------------------------
# The task


def _sweep_config(config: Any) -> ml_collections.ConfigDict:
  """The config of the sweep's data: `data` with the `sweep.*` overrides (-1 / 0 = keep)."""
  out = ml_collections.ConfigDict(config.to_dict())
  sw = config.sweep
  if sw.num_subjects:
    out.data.num_subjects = sw.num_subjects
  if sw.images_per_subject:
    out.data.images_per_subject = sw.images_per_subject
  if sw.difficulty >= 0:
    out.data.face_difficulty = out.data.fingerprint_difficulty = sw.difficulty
  return out


def _pair_lists(data: PairedArrays, records, num_pairs: int, seed: int) -> dict[str, dict]:
  return {
    name: sampling.sample_pairs(data.identities, num_pairs, records=records[name], seed=seed + k)
    for k, name in enumerate(("train", "val", "test"))
  }


def run(config: Any, workdir: pathlib.Path) -> dict:
  workdir = pathlib.Path(workdir)
  data = load_data(config)
  logging.info("face_fp: %d records, %d subjects", len(data), len(data.identity_names))
  groups, records = splits.split_records(
    data.identities, config.data.split.to_dict(), seed=config.seed
  )
  if report.is_writer():
    splits.write_manifest(
      workdir / "split_manifest.json",
      groups,
      identity_names=data.identity_names,
      records=records,
      extra={"source": config.data.source, "correlation": data_correlation(config)},
    )
  pairs = _pair_lists(data, records, config.eval.num_pairs, config.seed)

  metrics: dict[str, Any] = {
    "data": {
      "num_subjects": float(len(data.identity_names)),
      "num_records": float(len(data)),
      "correlation": data_correlation(config),
      **{f"{k}_subjects": float(len(v)) for k, v in groups.items()},
    }
  }
  sentences: list[str] = []
  figures: dict[str, Any] = {}

  # 1. The cross-modal model.
  model, variables, info = train_cross_modal(config, data, records, pairs, workdir / "cross_modal")
  cm, cm_sentences, cm_figures = evaluate_cross_modal(
    config, model, variables, data, pairs, workdir
  )
  metrics["cross_modal"] = {"training": info, **cm}
  sentences += cm_sentences
  figures.update(cm_figures)

  # 2. Unimodal verifiers and fusion, on the same record pairs.
  if config.unimodal.enabled:
    scores = {}
    for name, source in (("face", data.face_source()), ("fingerprint", data.fingerprint_source())):
      um, uv = train_unimodal(config, source, records, pairs["val"], workdir / name)
      scores[name] = {k: _unimodal_scores(um, uv, source.images, pairs[k]) for k in ("val", "test")}
    uni, uni_sentences = evaluate_unimodal_and_fusion(config, scores, pairs)
    metrics["unimodal"] = {"face": uni["face"], "fingerprint": uni["fingerprint"]}
    metrics["fusion"] = uni["fusion"]
    metrics["fusion_best"] = uni["fusion_best"]
    sentences += uni_sentences

  # 3. The correlation sweep (built-in data only: it needs the correlation knob).
  correlations = tuple(config.sweep.correlations)
  if correlations and config.data.source != "builtin":
    logging.warning("face_fp: the correlation sweep needs data.source='builtin'; skipped")
    correlations = ()
  if correlations:
    sweep_config = _sweep_config(config)
    sd = sweep_config.data
    same_data = all(
      sd[k] == config.data[k]
      for k in ("num_subjects", "images_per_subject", "face_difficulty", "fingerprint_difficulty")
    )
    rows, faces = [], None
    steps = config.sweep.steps or config.train.steps
    for rho in correlations:
      if same_data and math.isclose(rho, config.data.correlation) and steps == config.train.steps:
        m_rho, v_rho, d_rho, p_rho = model, variables, data, pairs
      else:
        d_rho = load_data(sweep_config, correlation=rho, faces=faces)
        faces = d_rho.faces  # faces do not depend on rho: render them once
        _, r_rho = splits.split_records(
          d_rho.identities, config.data.split.to_dict(), seed=config.seed
        )
        p_rho = _pair_lists(d_rho, r_rho, config.eval.num_pairs, config.seed)
        m_rho, v_rho, _ = train_cross_modal(
          sweep_config, d_rho, r_rho, p_rho, workdir / "sweep" / f"rho_{rho:.2f}", steps=steps
        )
      dt = _cross_modal_scores(m_rho, v_rho, d_rho, p_rho["test"])
      row = {
        "correlation": float(rho),
        **_auc_with_ci(
          -dt,
          p_rho["test"]["label"],
          config.eval.bootstrap_resamples,
          config.seed,
          (d_rho.identities[p_rho["test"]["a"]], d_rho.identities[p_rho["test"]["b"]]),
        ),
      }
      rows.append(row)
      logging.info("face_fp sweep: rho=%.2f test AUC %.3f", rho, row["auc"])
    metrics["sweep"] = {f"rho_{r['correlation']:.2f}": r for r in rows}
    table = [
      "| rho | cross-modal test AUC | 95% CI (subjects) | 95% CI (pairs) |",
      "|---|---|---|---|",
    ]
    table += [
      f"| {r['correlation']:.2f} | {r['auc']:.3f} | {r['auc_subject_ci_low']:.3f}-"
      f"{r['auc_subject_ci_high']:.3f} | {r['auc_ci_low']:.3f}-{r['auc_ci_high']:.3f} |"
      for r in rows
    ]
    sentences.append(
      f"Correlation sweep (positive control; same recipe, {steps} steps per model, "
      f"{sd.num_subjects} subjects x {sd.images_per_subject} images, nuisance difficulty "
      f"face {sd.face_difficulty:g} / fingerprint {sd.fingerprint_difficulty:g}):\n\n"
      + "\n".join(table)
    )
    figures["Cross-modal test AUC against the face-fingerprint correlation"] = (
      report.plot_metric_vs_parameter(
        [r["correlation"] for r in rows],
        [r["auc"] for r in rows],
        workdir / "sweep_auc.png",
        ci_low=[r["auc_subject_ci_low"] for r in rows],
        ci_high=[r["auc_subject_ci_high"] for r in rows],
        reference=0.5,
        xlabel="face-fingerprint latent correlation rho",
        ylabel="cross-modal ROC-AUC",
        title="Positive control: cross-modal AUC vs correlation",
        label="test AUC (95% CI, bootstrap over subjects)",
        ylim=(0.4, 1.0),
      )
    )

  report.write_metrics_json(metrics, workdir)
  report.write_report_md(
    metrics,
    workdir,
    "Face <-> fingerprint: the semantic gap, fusion and a positive control",
    {k: v for k, v in figures.items() if v is not None},
    sentences,
  )
  if report.is_writer():
    print("\n".join(["", "face_fp results:", *sentences, f"report: {workdir / 'report.md'}"]))
  return json.loads(json.dumps(metrics, default=float))
