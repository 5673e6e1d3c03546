"""omniglot task end to end: on a constructed alphabet zip (always) and on the real
background set (`:runlocal`, when ../shared/data is present)."""

import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageDraw

from experiments.configs import omniglot as omniglot_config
from jaxsim.data import splits
from jaxsim.evaluate import oneshot
from jaxsim.tasks import omniglot


def _character(rng) -> np.ndarray:
  """A character: three random strokes, as [3, 4, 2] control points in [15, 90]."""
  return rng.uniform(15, 90, size=(3, 4, 2))


def _drawing(strokes: np.ndarray, rng) -> bytes:
  """One drawer's version of a character: jittered strokes, black on white, 1-bit PNG."""
  im = Image.new("L", (105, 105), 255)
  draw = ImageDraw.Draw(im)
  shift = rng.normal(0, 2, 2)
  for stroke in strokes:
    pts = stroke + shift + rng.normal(0, 1.5, stroke.shape)
    draw.line([tuple(p) for p in pts], fill=0, width=4)
  buf = io.BytesIO()
  im.convert("1").save(buf, format="PNG")
  return buf.getvalue()


@pytest.fixture(scope="module")
def alphabet_zip(tmp_path_factory):
  """4 alphabets x 20 characters x 10 drawers of random strokes."""
  path = tmp_path_factory.mktemp("omniglot") / "images_background.zip"
  rng = np.random.default_rng(0)
  with zipfile.ZipFile(path, "w") as z:
    for a in range(4):
      for c in range(20):
        strokes = _character(rng)
        for d in range(1, 11):
          z.writestr(
            f"images_background/Script_{a}/character{c + 1:02d}/{a:02d}{c:02d}_{d:02d}.png",
            _drawing(strokes, rng),
          )
  return path


def _small_config(root):
  c = omniglot_config.get_config("runlocal")
  c.data.root = str(root)
  c.split.num_val_alphabets = c.split.num_test_alphabets = 1
  c.split.num_train_drawers = 4
  c.eval.episodes = 20
  c.eval.val_episodes = 10
  c.eval.tta_shift = 0  # shift averaging has its own test (inference_test)
  # The training-mean centring; the real-data runlocal runs the default ("supports").
  c.eval.center = "train"
  c.eval.num_runs = 3
  c.train.koch.steps = c.train.proxy.steps = 6
  c.train.koch.eval_every = c.train.proxy.eval_every = 3
  c.train.koch.checkpoint_every = c.train.proxy.checkpoint_every = 3
  return c


def test_task_end_to_end_on_a_constructed_alphabet_zip(alphabet_zip, tmp_path):
  config = _small_config(alphabet_zip)
  given = tmp_path / "given_runs"
  metrics = omniglot.run(config, tmp_path / "a")
  work = tmp_path / "a"
  for name in ("metrics.json", "report.md", "split_manifest.json", "run_proxy.png", "run_koch.png"):
    assert (work / name).is_file(), name
  saved = json.loads((work / "metrics.json").read_text())
  manifest = json.loads((work / "split_manifest.json").read_text())
  # Alphabets and drawers: disjoint, and the test runs use only test alphabets.
  alphabets = manifest["alphabets"]
  assert not set(alphabets["train"]) & (set(alphabets["val"]) | set(alphabets["test"]))
  assert not set(manifest["drawers"]["train"]) & set(manifest["drawers"]["eval"])
  splits.assert_disjoint(splits.read_manifest(work / "split_manifest.json"))
  runs = oneshot.read_runs(work / "runs_test")
  assert len(runs) == 3 and all(len(r.training) == 20 == len(r.test) for r in runs)
  for name in ("proxy", "koch"):
    m = saved[name]
    r = m["one_shot_runs"]
    assert set(r) >= {"accuracy", "accuracy_ci_low", "accuracy_ci_high", "per_run", "num_runs"}
    assert r["num_runs"] == 3 and len(r["per_run"]) == 3
    assert r["accuracy"] == pytest.approx(np.mean(r["per_run"]))
    assert r["accuracy_ci_low"] <= r["accuracy"] <= r["accuracy_ci_high"]
    assert set(m["episodes"]) == {"5way_1shot", "5way_5shot", "20way_1shot", "20way_5shot"}
    assert 0 <= m["episodes"]["20way_1shot"]["accuracy"] <= 1
    assert m["train"]["select_best_step"] in (3.0, 6.0)
  assert metrics["proxy"]["one_shot_runs"]["root"].endswith("runs_test")
  # The classical baseline, on the same episodes and runs (its options chosen on val).
  pixels = saved["pixels"]
  assert pixels["metric"] in ("euclidean", "cosine") and len(pixels["val_accuracy"]) == 4
  assert pixels["one_shot_runs"]["num_runs"] == 3 and set(pixels["episodes"]) == set(m["episodes"])
  assert "Classical baseline, no learning" in (work / "report.md").read_text()
  # Any folder of runs is scored too: here the built runs, copied.
  import shutil  # noqa: PLC0415

  shutil.copytree(work / "runs_test", given)
  config.eval.runs_root = str(given)
  config.model = {"proxy": config.model.proxy}
  again = omniglot.run(config, work)  # resumes: no training, same runs
  assert (
    again["proxy"]["one_shot_runs_given"]["per_run"] == saved["proxy"]["one_shot_runs"]["per_run"]
  )
  assert again["proxy"]["one_shot_runs_given"]["root"] == str(given)
  assert (
    again["pixels"]["one_shot_runs_given"]["per_run"] == saved["pixels"]["one_shot_runs"]["per_run"]
  )


def test_too_few_evaluation_drawers_names_the_settings(alphabet_zip, tmp_path):
  config = _small_config(alphabet_zip)
  config.split.num_train_drawers = 6
  with pytest.raises(ValueError, match=r"split\.num_train_drawers=6 leaves 4"):
    omniglot.run(config, tmp_path)


def test_shift_radius_off_the_step_names_the_settings(alphabet_zip, tmp_path):
  config = _small_config(alphabet_zip)
  config.eval.tta_shift, config.eval.tta_step = 4, 3
  with pytest.raises(ValueError, match=r"eval\.tta_shift=4 must be a multiple of eval\.tta_step=3"):
    omniglot.run(config, tmp_path)


def test_missing_data_path_says_how_to_pass_one(tmp_path):
  config = _small_config(tmp_path / "nowhere.zip")
  with pytest.raises(FileNotFoundError, match=r"nowhere\.zip does not exist.*--config\.data\.root"):
    omniglot.run(config, tmp_path / "w")


def test_runlocal_on_the_real_background_set(shared_data, tmp_path):
  config = omniglot_config.get_config("runlocal")
  config.data.root = str(shared_data / "omniglot" / "images_background.zip")
  metrics = omniglot.run(config, tmp_path)
  assert metrics["data"]["num_alphabets_train"] == 20
  assert (
    metrics["data"]["num_characters_train"]
    + metrics["data"]["num_characters_val"]
    + metrics["data"]["num_characters_test"]
    == 964
  )
  # 12 steps are far from trained, but the proxy model is well above chance (5%).
  assert metrics["proxy"]["episodes"]["20way_1shot"]["accuracy"] > 0.15
