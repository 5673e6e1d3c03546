"""The shipped configs: variants compose, every key has a rule, bad values are rejected.

The cases are generated from the configs themselves and the rule table in
`experiments/configs/common.py`, not written per key.
"""

import importlib
import itertools
import subprocess
import sys

import pytest

from experiments import run
from experiments.configs import common

CONFIGS = run.available_configs()


def _module(name):
  return importlib.import_module(f"experiments.configs.{name}")


def _exclusive(name, a, b):
  return any({a, b} <= set(g) for g in getattr(_module(name), "EXCLUSIVE", ()))


def _variant_args(name):
  """Every declared variant alone, and every ordered pair of them that may be combined
  ("" = the default)."""
  variants = _module(name).VARIANTS
  pairs = [(a, b) for a, b in itertools.permutations(variants, 2) if not _exclusive(name, a, b)]
  return ["", *variants, *(f"{a},{b}" for a, b in pairs)]


CONFIG_ARGS = [(name, arg) for name in CONFIGS for arg in _variant_args(name)]


def _keyed_cases():
  """(config, variant, key) for every key of every config whose rule has a bad value.

  Each variant alone (pairs add no key a single variant lacks; they are built and
  validated by `test_every_variant_and_pair_builds_and_validates`)."""
  cases = []
  for name, arg in CONFIG_ARGS:
    if "," in arg:
      continue
    config = _module(name).get_config(arg)
    for key, value in common.leaves(config.to_dict()):
      rule = common.rule_for(config.task, key)
      if rule is not None and rule.bad_value(value) is not None:
        cases.append((name, arg, key))
  return cases


def test_configs_are_the_expected_ones():
  assert "common" not in CONFIGS
  assert {"face_fp", "face_verify", "open_set", "mnist_text", "similarity_search"} <= set(CONFIGS)


@pytest.mark.parametrize(("name", "arg"), CONFIG_ARGS)
def test_every_variant_and_pair_builds_and_validates(name, arg):
  config = _module(name).get_config(arg)
  common.validate(config)
  for key, _ in common.leaves(config.to_dict()):
    assert common.rule_for(config.task, key) is not None, f"{name}:{arg} {key} has no rule"


def test_exclusive_variants_are_rejected_together():
  with pytest.raises(ValueError, match="folders and fvc2002 exclude each other"):
    _module("face_verify").get_config("folders,runlocal,fvc2002")


@pytest.mark.parametrize("name", CONFIGS)
def test_variant_order_does_not_matter(name):
  for a, b in itertools.combinations(_module(name).VARIANTS, 2):
    if _exclusive(name, a, b):
      continue
    ab = _module(name).get_config(f"{a},{b}").to_dict()
    ba = _module(name).get_config(f"{b},{a}").to_dict()
    assert ab == ba, (a, b)


def test_chimeric_runlocal_keeps_all_subjects():
  for arg in ("chimeric,runlocal", "runlocal,chimeric"):
    config = _module("face_fp").get_config(arg)
    assert config.data.source == "chimeric"
    assert config.data.num_subjects == 0  # as many as the real data allow
    # and runlocal still shrinks the training
    chimeric = _module("face_fp").get_config("chimeric")
    assert config.train.cross_modal.steps < chimeric.train.cross_modal.steps


@pytest.mark.parametrize("name", CONFIGS)
def test_unknown_variant_is_rejected(name):
  with pytest.raises(ValueError, match="unknown .* variant.*bogus.*available"):
    _module(name).get_config("runlocal,bogus")


@pytest.mark.parametrize(("name", "arg", "key"), _keyed_cases())
def test_out_of_range_value_is_rejected(name, arg, key):
  config = _module(name).get_config(arg)
  rule = common.rule_for(config.task, key)
  *parents, leaf = key.split(".")
  holder = config
  for part in parents:
    holder = holder[part]
  bad = rule.bad_value(holder[leaf])
  with holder.ignore_type():
    holder[leaf] = bad
  with pytest.raises(common.ConfigError) as e:
    common.validate(config)
  message = str(e.value)
  assert "\n" not in message and key in message and repr(bad) in message


@pytest.mark.parametrize(
  ("key", "value", "words"),
  [
    ("train.steps", 0, "integer >= 1"),
    ("train.steps", -5, "integer >= 1"),
    ("train.batch_size", -4, "integer >= 1"),
    ("train.learning_rate", 0.0, "(0, inf)"),
    ("loss.margin", -1.0, "(0, inf)"),
    ("data.image_size", 4, "[8, 2048]"),
    ("data.source", "folder", "one of 'builtin'"),
  ],
)
def test_face_fp_messages_name_key_value_and_range(key, value, words):
  config = _module("face_fp").get_config("runlocal")
  *parents, leaf = key.split(".")
  holder = config
  for part in parents:
    holder = holder[part]
  holder[leaf] = value
  with pytest.raises(common.ConfigError, match=r"^invalid config value ") as e:
    common.validate(config)
  assert f"{key}={value!r}" in str(e.value) and words in str(e.value)


@pytest.mark.parametrize(
  ("name", "arg", "changes", "words"),
  [
    ("face_fp", "", {"split.train": 0.9}, "sum to"),
    ("face_verify", "", {"split.val": 0.5}, "sum to"),
    ("mnist_text", "", {"split.val": 0.3}, "below 1"),
    ("open_set", "runlocal", {"train.sampler.p": 4}, r"p \* k"),
    ("face_verify", "runlocal", {"train.contrastive.batch_size": 64}, r"p \* k"),
    ("open_set", "runlocal", {"split.train": 30}, "need 58 identities"),
    ("open_set", "runlocal", {"split.gallery_per_identity": 4}, "no test probe"),
    ("face_fp", "", {"data.num_subjects": 0}, "real data only"),
    ("face_verify", "", {"data.image_size": 56}, "at least 65 pixels"),
    ("face_verify", "folders", {"eval.ensemble": ("m0", "m7")}, "'m7' is not a model"),
  ],
)
def test_inconsistent_settings_are_rejected(name, arg, changes, words):
  config = _module(name).get_config(arg)
  for key, value in changes.items():
    *parents, leaf = key.split(".")
    holder = config
    for part in parents:
      holder = holder[part]
    with holder.ignore_type():
      holder[leaf] = value
  with pytest.raises(common.ConfigError, match=words):
    common.validate(config)


def test_name_lists_match_the_library():
  from jaxsim import objectives  # noqa: PLC0415
  from jaxsim.data.sources import digits_text  # noqa: PLC0415
  from jaxsim.evaluate import fusion, search  # noqa: PLC0415

  assert common.OBJECTIVES == objectives.OBJECTIVES
  assert common.FUSION_RULES == fusion.RULES
  assert common.FUSION_NORMALIZATIONS == fusion.NORMALIZATIONS
  assert common.SCORES == search.METRICS
  assert _module("mnist_text").VOCAB_SIZE == len(digits_text.VOCABULARY)


def test_configs_import_no_jax():
  code = (
    "import sys\n"
    "from experiments import run\n"
    "for n in run.available_configs():\n"
    "  __import__(f'experiments.configs.{n}', fromlist=['x']).get_config('runlocal')\n"
    "print(sorted(m for m in ('jax', 'jaxlib', 'grain', 'flax') if m in sys.modules))\n"
  )
  out = subprocess.run(
    [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
  )
  assert out.stdout.strip() == "[]"


SECTIONS = {"task", "seed", "data", "split", "model", "loss", "train", "eval"}


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_uses_the_common_sections(name):
  # One shape for every task: data, split, model, loss, train, eval (a task may leave
  # out a section it has no use for, e.g. sqrt2_null trains nothing).
  for arg in _variant_args(name):
    config = _module(name).get_config(arg)
    assert set(config) <= SECTIONS, (arg, set(config) - SECTIONS)
    assert {"task", "seed", "data"} <= set(config), arg
