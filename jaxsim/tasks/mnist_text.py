"""Image-text alignment of digits: an image tower and a character-level text tower.

Each digit image carries a random text naming its digit ("3", "three", "Three",
"tree", "trois", ...; `jaxsim.data.sources.digits_text`). The text tower reads
the characters (`char_text`); it never sees the class id. Both towers are
trained with real negatives, in one of these variants (`config.train.variants`):

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

import functools
import pathlib
import time

import numpy as np

from jaxsim import inference, models, objectives, report, train
from jaxsim.data import loaders, pipeline, splits
from jaxsim.data.sources import DigitsTextSource
from jaxsim.data.sources.digits_text import class_texts, encode_texts
from jaxsim.evaluate import clustered, retrieval

VARIANTS = ("contrastive", "clip", "seed_contrastive", "seed_all_positive")


def HEADLINE(metrics):  # noqa: N802 -- the tasks' summary-table hook; rows depend on the variants
  rows = {
    "{name} zero-shot accuracy (seen texts)": "test.{name}.zero_shot_seen.accuracy",
    "{name} zero-shot accuracy (held-out texts)": "test.{name}.zero_shot_heldout.accuracy",
    "{name} text->image MAP@R (seen)": "test.{name}.text_to_image_seen.map_at_r",
  }
  return report.headline_rows(metrics["test"], rows)


def prepare(config, workdir: pathlib.Path):
  """Digit images and a per-digit stratified split by image; writes the manifest."""
  unknown = set(config.train.variants) - set(VARIANTS)
  if unknown:
    raise ValueError(f"config.train.variants must be drawn from {VARIANTS}, got {sorted(unknown)}")
  d = config.data
  images = loaders.load_digits(d)
  fractions = {
    "train": config.split.train,
    "val": config.split.val,
    "test": 1.0 - config.split.train - config.split.val,
  }
  records = splits.stratified_split(
    images.identities, fractions, config.split.seed, config.split.max_per_split
  )
  manifest = {
    "split": "by image, stratified per digit (digits are shared; images are not)",
    "data": d.source,
    "split_seed": config.split.seed,
    "records": {k: v.tolist() for k, v in records.items()},
  }
  report.write_manifest(manifest, workdir)
  return images, records


def _loss_fn(loss_cfg):
  if loss_cfg.name in ("seed_pair_contrastive", "seed_all_positive"):
    return objectives.rolled_pair_contrastive(
      loss_cfg.margin, all_positive=loss_cfg.name == "seed_all_positive"
    )
  return objectives.objective_from_config(loss_cfg)


def _model(config, variant):
  cfg = config.model.copy_and_resolve_references()
  arch = cfg.seed if variant.startswith("seed_") else cfg
  model_cfg = {
    "kind": "two_tower",
    "encoder_a": dict(arch.encoder_a),
    "encoder_b": dict(arch.encoder_b),
    # Only the InfoNCE variant learns a temperature (logits = exp(log_t) * cosine).
    "log_temperature_init": cfg.log_temperature_init
    if config.loss[variant].name == "clip"
    else None,
  }
  return models.model_from_config(model_cfg)


def prototypes(model, variables, split: str, max_length: int, batch_size: int) -> np.ndarray:
  """[10, D] unit-norm mean text embedding of every `split` variant of each digit."""
  texts, digits = class_texts(split)
  return inference.class_prototypes(
    model, variables, encode_texts(texts, max_length), digits, "b", batch_size
  )


def train_variant(config, variant, images, records, workdir):
  """Trains one variant on the train images, selected by validation zero-shot accuracy."""
  model, cfg = _model(config, variant), config.train.copy_and_resolve_references()
  if variant.startswith("seed_"):
    cfg.learning_rate = config.train.seed_learning_rate
  source = DigitsTextSource(
    images, text_split="train", max_length=config.data.max_length, seed=config.data.text_seed
  )
  ds = pipeline.image_text_batches(
    source, records["train"], batch_size=cfg.batch_size, seed=cfg.seed, augment=config.data.augment
  )
  val_images, val_labels = images.images[records["val"]], images.identities[records["val"]]
  bs, max_length = config.eval.batch_size, config.data.max_length

  def eval_fn(state):
    variables = inference.variables_of(state)
    protos = prototypes(model, variables, "train", max_length, bs)
    emb = inference.embed(model, variables, val_images, "a", bs)
    return {
      "zero_shot_accuracy": retrieval.nearest_prototype_metrics(emb, val_labels, protos)["accuracy"]
    }

  variables, info = train.fit_selected(
    cfg,
    model=model,
    loss_fn=_loss_fn(config.loss[variant]),
    train_iter=pipeline.make_iterator(ds),
    workdir=workdir,
    inputs=train.IMAGE_TEXT_INPUTS,
    eval_fn=eval_fn,
  )
  return model, variables, info


def _heldout_text_accuracy(model, variables, image_emb, labels, max_length, batch_size):
  """Each held-out text assigned to the digit whose mean test-image embedding is nearest."""
  centroids = np.stack([image_emb[labels == d].mean(0) for d in range(10)])
  texts, digits = class_texts("heldout")
  emb = inference.embed(model, variables, encode_texts(texts, max_length), "b", batch_size)
  return float(np.mean(np.argmax(emb @ centroids.T, axis=1) == digits))


def _text_queries(config, model, variables, images, test_records, split):
  """One `split` text per test image, embedded; and the string of each (its unit)."""
  source = DigitsTextSource(
    images, text_split=split, max_length=config.data.max_length, seed=config.data.text_seed + 1
  )
  rows = [source[int(r)] for r in test_records]
  ids = np.stack([r["text_ids"] for r in rows])
  mask = np.stack([r["text_mask"] for r in rows])
  emb = inference.embed(model, variables, (ids, mask), "b", config.eval.batch_size)
  # Text queries are clustered by their string (the same string twice is the same query).
  return emb, np.unique([r["text"] for r in rows], return_inverse=True)[1]


def evaluate(config, model, variables, images, test_records) -> tuple[dict, np.ndarray]:
  """Zero-shot and retrieval metrics on the test images; also returns their embeddings."""
  bs, max_length, ks = config.eval.batch_size, config.data.max_length, tuple(config.eval.ks)
  boot = {"num_resamples": config.eval.bootstrap_resamples, "seed": config.seed}
  labels = images.identities[test_records].astype(np.int64)
  image_emb = inference.embed(model, variables, images.images[test_records], "a", bs)
  report_fn = functools.partial(retrieval.retrieval_report, ks=ks, **boot)
  out: dict = {}
  for split, name in (("train", "seen"), ("heldout", "heldout")):
    protos = prototypes(model, variables, split, max_length, bs)
    zs = retrieval.nearest_prototype_metrics(image_emb, labels, protos)
    correct = np.argmax(image_emb @ protos.T, axis=1) == labels
    out[f"zero_shot_{name}"] = {**zs, **clustered.proportion_interval(correct, **boot)}
    text_emb, strings = _text_queries(config, model, variables, images, test_records, split)
    out[f"image_to_text_{name}"] = report_fn(
      image_emb, text_emb, labels, labels, units=np.arange(len(labels))
    )
    out[f"text_to_image_{name}"] = report_fn(text_emb, image_emb, labels, labels, units=strings)
  out["heldout_text"] = {
    "accuracy": _heldout_text_accuracy(model, variables, image_emb, labels, max_length, bs)
  }
  return out, image_emb


def _units(metrics, key) -> str:
  """The unit counts of one retrieval direction over the variants, e.g. "63" or "63/61"."""
  counts = sorted({int(m[key]["ci_num_units"]) for m in metrics["test"].values()})
  return "/".join(str(c) for c in counts)


TABLE_HEADER = [
  "| variant | loss | zero-shot seen | zero-shot held-out | held-out text acc | "
  "i->t R@1 (seen / held-out texts) | t->i R@1 / MAP@R (seen texts) | "
  "t->i R@1 / MAP@R (held-out texts) |",
  "|---|---|---|---|---|---|---|---|",
]


def table_row(variant: str, loss: str, test: dict) -> str:
  """One variant's row of the report table (values with 95% intervals)."""
  ci = functools.partial(report.with_ci, digits=3)
  return (
    f"| {variant} | {loss} | "
    f"{ci(test['zero_shot_seen'], 'accuracy')} | {ci(test['zero_shot_heldout'], 'accuracy')} | "
    f"{test['heldout_text']['accuracy']:.3f} | "
    f"{test['image_to_text_seen']['recall_at_1']:.3f} / "
    f"{test['image_to_text_heldout']['recall_at_1']:.3f} | "
    f"{ci(test['text_to_image_seen'], 'recall_at_1')} / "
    f"{ci(test['text_to_image_seen'], 'map_at_r')} | "
    f"{ci(test['text_to_image_heldout'], 'recall_at_1')} / "
    f"{ci(test['text_to_image_heldout'], 'map_at_r')} |"
  )


def sentences(config, metrics, records, table: list[str]) -> list[str]:
  """The report's findings in words, then the table."""
  return [
    f"Data: {config.data.source} digits, split by image (stratified, seed "
    f"{config.split.seed}): {', '.join(f'{k} {len(v)}' for k, v in records.items())}. "
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
    "\n".join(TABLE_HEADER + table),
  ]


def run(config, workdir: pathlib.Path) -> dict:
  """Prepare -> train and evaluate every variant on unseen test images -> describe."""
  workdir = pathlib.Path(workdir)
  start = time.perf_counter()
  images, records = prepare(config, workdir)
  metrics: dict = {"test": {}, "selection": {}}
  figures, table = {}, []
  for variant in config.train.variants:
    model, variables, info = train_variant(config, variant, images, records, workdir / variant)
    test, image_emb = evaluate(config, model, variables, images, records["test"])
    metrics["test"][variant], metrics["selection"][variant] = test, info
    table.append(table_row(variant, config.loss[variant].name, test))
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
  report.write_metrics_json(metrics, workdir)
  report.write_report_md(
    metrics,
    workdir,
    "Digit image-text alignment",
    figures=figures,
    sentences=sentences(config, metrics, records, table),
  )
  return metrics
