"""Optimisers, the sharded train step (1 vs 8 devices) and the training loop."""

import io
import json

import _jitted
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _train_worker import dataset, pair_contrastive_loss

from jaxsim import checkpoint, models, objectives, parallel, train


def _cfg(**overrides):
  cfg = train.default_config()
  cfg.update(overrides)
  return cfg


def test_warmup_cosine_schedule_values():
  schedule = train.learning_rate_schedule(_cfg(learning_rate=2.0, warmup_steps=10, steps=110))
  np.testing.assert_allclose(
    [schedule(0), schedule(5), schedule(10), schedule(60), schedule(110)],
    [0.0, 1.0, 2.0, 1.0, 0.0],
    atol=1e-6,
  )
  constant = train.learning_rate_schedule(
    _cfg(learning_rate=2.0, warmup_steps=4, schedule="constant")
  )
  np.testing.assert_allclose([constant(2), constant(4), constant(1000)], [1.0, 2.0, 2.0])


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_weight_decay_skips_biases_norms_and_scalars(name):
  params = {
    "Dense_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)},
    "BatchNorm_0": {"scale": jnp.ones(2)},
    "log_temperature": jnp.ones(()),
  }
  tx, _ = train.make_optimizer(
    _cfg(optimizer=name, learning_rate=0.1, weight_decay=0.5, schedule="constant")
  )
  zero = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zero, tx.init(params), params)
  assert float(jnp.abs(updates["Dense_0"]["kernel"]).min()) > 0
  for leaf in (
    updates["Dense_0"]["bias"],
    updates["BatchNorm_0"]["scale"],
    updates["log_temperature"],
  ):
    np.testing.assert_array_equal(leaf, 0.0)


def test_gradient_clipping_bounds_the_update():
  tx, _ = train.make_optimizer(
    _cfg(optimizer="sgd", momentum=0.0, learning_rate=1.0, schedule="constant", grad_clip_norm=1.0)
  )
  params = {"w": jnp.zeros(4)}
  updates, _ = tx.update({"w": jnp.full(4, 5.0)}, tx.init(params), params)
  np.testing.assert_allclose(optax.tree.norm(updates), 1.0, rtol=1e-6)


def test_per_layer_learning_rates_and_l2_as_koch():
  params = {
    "enc": {"Conv_0": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}},
    "Dense_0": {"kernel": jnp.ones((2, 2))},
  }
  cfg = _cfg(optimizer="sgd", momentum=0.0, learning_rate=1.0, schedule="constant")
  cfg.layer_learning_rate_scales = {"Conv_0": 0.5}
  cfg.layer_l2 = {"Dense_0": 0.2}
  tx, _ = train.make_optimizer(cfg)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, tx.init(params), params)
  # Conv_0: half the learning rate, no L2; Dense_0: full rate, gradient + 0.2 * param.
  np.testing.assert_allclose(updates["enc"]["Conv_0"]["kernel"], -0.5)
  np.testing.assert_allclose(updates["enc"]["Conv_0"]["bias"], -0.5)
  np.testing.assert_allclose(updates["Dense_0"]["kernel"], -1.2)


def test_unknown_optimizer_is_a_clear_error():
  with pytest.raises(ValueError, match="adam, adamw or sgd"):
    train.make_optimizer(_cfg(optimizer="lamb"))


def _batches(n, batch_size=16):
  records = dataset()
  rng = np.random.default_rng(0)
  for _ in range(n):
    idx = rng.choice(len(records), batch_size, replace=False)
    yield {k: np.stack([records[i][k] for i in idx]) for k in ("image", "identity")}


def _model():
  return models.SiameseModel(models.DigitCNN(features=(4, 8), hidden=16, dim=8))


def _run_steps(mesh, batches, cfg):
  model = _model()
  tx, _ = train.make_optimizer(cfg)
  state = train.create_train_state(model, tx, batches[0], train.SINGLE_INPUTS, 0, mesh)
  step = train.make_train_step(model, pair_contrastive_loss, tx, mesh, train.SINGLE_INPUTS)
  losses = []
  for batch in batches:
    state, metrics = step(state, batch)
    losses.append(float(metrics["loss"]))
  return jax.device_get(state), losses


def test_one_device_and_eight_devices_give_the_same_step():
  """In-batch negatives and batch-norm statistics cover the global batch on any mesh."""
  batches = list(_batches(2))
  cfg = _cfg(optimizer="adamw", learning_rate=1e-2, weight_decay=1e-3, schedule="constant")
  state1, losses1 = _run_steps(parallel.data_mesh(jax.devices()[:1]), batches, cfg)
  state8, losses8 = _run_steps(parallel.data_mesh(), batches, cfg)
  np.testing.assert_allclose(losses8, losses1, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), state8, state1)
  # The first loss is the plain, unsharded loss of the full batch at initialisation.
  model = _model()
  variables = _jitted.init(model, jax.random.key(0), batches[0]["image"][:2])
  outputs, _ = _jitted.apply(
    model, variables, batches[0]["image"], train=True, mutable=["batch_stats"]
  )
  plain = jax.jit(pair_contrastive_loss)(outputs, batches[0])[0]
  np.testing.assert_allclose(losses1[0], plain, rtol=1e-5)
  assert int(state8["step"]) == 2


def test_a_margin_passed_to_the_step_equals_the_margin_as_a_constant():
  # A config's margin reaches the step as an argument, so a margin grid compiles one step
  # (its loss family); the floats equal a step whose loss holds the margin as a constant.
  mesh = parallel.data_mesh(jax.devices()[:1])
  batches = list(_batches(2))
  model = _model()
  tx, _ = train.make_optimizer(_cfg(optimizer="adam", learning_rate=1e-2, schedule="constant"))
  section = {"name": "in_batch_contrastive", "margin": 0.5, "reduction": "mean_active"}
  first = objectives.objective_from_config(section)
  other = objectives.objective_from_config({**section, "margin": 1.7})
  assert other.family is first.family and other.hparams == {"margin": 1.7}
  constant = objectives._build_objective({**section, "margin": 1.7})  # margin folded in
  assert not hasattr(constant, "family")
  grid_step = train.make_train_step(model, first, tx, mesh, train.SINGLE_INPUTS)
  constant_step = train.make_train_step(model, constant, tx, mesh, train.SINGLE_INPUTS)
  a = train.create_train_state(model, tx, batches[0], train.SINGLE_INPUTS, 0, mesh)
  b = jax.tree.map(jnp.copy, a)
  for batch in batches:
    a, metrics_a = grid_step(a, batch, train.step_hparams(other))
    b, metrics_b = constant_step(b, batch)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(a), jax.device_get(b))
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(metrics_a), jax.device_get(metrics_b))
  # Without settings the step uses its own loss's margin, 0.5: other floats.
  c, _ = grid_step(jax.tree.map(jnp.copy, b), batches[0])
  d, _ = constant_step(jax.tree.map(jnp.copy, b), batches[0])
  pairs = zip(jax.tree.leaves(jax.device_get(c)), jax.tree.leaves(jax.device_get(d)), strict=True)
  assert not all(np.array_equal(x, y) for x, y in pairs)


def test_indivisible_batch_is_a_clear_error():
  mesh = parallel.data_mesh()
  batch = next(_batches(1, batch_size=12))
  model = _model()
  tx, _ = train.make_optimizer(_cfg())
  state = train.create_train_state(model, tx, batch, train.SINGLE_INPUTS, 0, mesh)
  step = train.make_train_step(model, pair_contrastive_loss, tx, mesh, train.SINGLE_INPUTS)
  with pytest.raises(ValueError, match="12 is not divisible by the 8 devices"):
    step(state, batch)
  with pytest.raises(ValueError, match="not divisible"):
    step(state, parallel.shard_batch(batch, parallel.data_mesh(jax.devices()[:4])))


def test_embedding_statistics_detect_collapse():
  collapsed = train.embedding_statistics({"embeddings_a": jnp.ones((5, 3))})
  np.testing.assert_allclose(collapsed["emb_a_spread"], 0.0, atol=1e-6)
  np.testing.assert_allclose(collapsed["emb_a_norm"], np.sqrt(3), rtol=1e-6)
  spread = train.embedding_statistics({"embeddings_b": jnp.eye(4)})
  np.testing.assert_allclose(spread["emb_b_spread"], np.sqrt(1 - 1 / 4), rtol=1e-6)


def _fit(tmp_path, it, steps, eval_fn=None, **overrides):
  settings = {"log_every": 2, "checkpoint_every": 2, "keep_checkpoints": 2}
  cfg = _cfg(steps=steps, batch_size=16, async_checkpoints=False, **{**settings, **overrides})
  model = _model()
  eval_batch = next(_batches(1))

  def val_loss(state):
    v = {"params": state["params"], "batch_stats": state["batch_stats"]}
    return {
      "val_loss": float(pair_contrastive_loss(model.apply(v, eval_batch["image"]), eval_batch)[0])
    }

  return train.fit(
    cfg,
    model=model,
    loss_fn=pair_contrastive_loss,
    train_iter=it,
    workdir=tmp_path,
    inputs=train.SINGLE_INPUTS,
    eval_fn=eval_fn or val_loss,
    mesh=parallel.data_mesh(jax.devices()[:2]),
  )


def test_fit_logs_checkpoints_and_resumes(tmp_path, capsys):
  result = _fit(tmp_path, _batches(6), 6, eval_every=2, best_metric="val_loss", best_mode="min")
  assert result.resumed_from == 0 and result.best_step in (2, 4, 6)
  records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").open()]
  assert [r["step"] for r in records] == [2, 4, 6]
  for key in (
    "loss",
    "learning_rate",
    "examples_per_sec",
    "active_fraction",
    "emb_a_norm",
    "emb_a_spread",
    "grad_norm",
    "eval/val_loss",
  ):
    assert np.isfinite(records[-1][key]), key
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == sorted({4, 6, result.best_step})  # the newest two and the best
  # Not a terminal: plain progress lines.
  assert "step 6/6" in capsys.readouterr().err
  # The same workdir resumes from the newest checkpoint.
  again = _fit(tmp_path, _batches(2), 8, eval_every=2, best_metric="val_loss", best_mode="min")
  assert again.resumed_from == 6 and int(again.state["step"]) == 8


def test_fit_selects_on_validation_and_a_resumed_run_selects_the_same(tmp_path, monkeypatch):
  # A validation metric that peaks at step 4: the selected state is step 4's, not the last.
  def eval_fn(state):
    return {"score": -abs(float(state["step"]) - 4)}

  restored = []
  restore = checkpoint.Checkpointer.restore
  monkeypatch.setattr(
    checkpoint.Checkpointer,
    "restore",
    lambda self, step, *a: restored.append(step) or restore(self, step, *a),
  )
  kw = {"eval_every": 2, "best_metric": "score", "checkpoint_every": 2, "keep_checkpoints": 1}
  first = _fit(tmp_path / "a", _batches(6), 6, eval_fn=eval_fn, **kw)
  assert first.selected_step == 4 and int(first.selected_state["step"]) == 4
  # Served from the host copy taken at step 4, equal to the checkpoint on disk.
  assert restored == []
  on_disk = restore(
    checkpoint.Checkpointer(tmp_path / "a" / "checkpoints", save_every=2),
    4,
    first.selected_state,
  )
  for a, b in zip(jax.tree.leaves(first.selected_state), jax.tree.leaves(on_disk), strict=True):
    np.testing.assert_array_equal(a, b)
  assert [h["step"] for h in first.history] == [2, 4, 6]
  sel = first.selection("score")
  assert sel == {
    "selected_step": 4.0,
    "selected_val": 0.0,
    "first_val": -2.0,
    "last_val": -2.0,
    "num_evals": 3.0,
  }
  # Stopped after step 4 (a shorter schedule), then resumed: the whole history, the same choice.
  _fit(tmp_path / "b", _batches(4), 4, eval_fn=eval_fn, **kw)
  restored.clear()
  resumed = _fit(tmp_path / "b", _batches(2), 6, eval_fn=eval_fn, **kw)
  assert resumed.resumed_from == 4 and resumed.selected_step == 4
  assert restored == [4, 4]  # the resume point, then the best, evaluated before the resume
  assert [h["step"] for h in resumed.history] == [2, 4, 6]
  # A finished run re-opened trains nothing and still reports its selection and last loss.
  done = _fit(tmp_path / "a", _batches(1), 6, eval_fn=eval_fn, **kw)
  assert done.resumed_from == 6 and done.selected_step == 4 and "loss" in done.last_metrics
  # Without a best_metric the final state is the selection.
  plain = _fit(tmp_path / "c", _batches(4), 4, eval_every=2, eval_fn=eval_fn)
  assert plain.selected_step == 4 and plain.best_step is None


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  def poisoned():
    for i, batch in enumerate(_batches(8)):
      if i == 4:  # the 5th batch, consumed by step 5
        batch["image"][:] = np.nan
      yield batch

  with pytest.raises(FloatingPointError, match="non-finite loss or gradient at step 5"):
    _fit(tmp_path, poisoned(), 8)
  steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
  assert steps == [2, 4]
  events = [json.loads(line) for line in (tmp_path / "train_log.jsonl").open()]
  assert events[-1]["event"] == "non_finite" and events[-1]["step"] == 5
  # The last good checkpoint restores to finite parameters.
  result = _fit(tmp_path, _batches(1), 4)
  assert result.resumed_from == 4
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(result.state["params"]))


def test_progress_off_a_terminal_writes_at_most_one_line_per_tenth():
  stream = io.StringIO()
  progress = train._Progress(250, 0, stream=stream)
  for step in range(10, 251, 10):  # log_every=10: 25 events
    progress.update(step, {"loss": 1.0, "examples_per_sec": 2.0})
  lines = stream.getvalue().splitlines()
  assert 2 <= len(lines) <= 11 and lines[-1].startswith("step 250/250"), lines
  # A resumed run counts tenths from where it resumed, and always writes the last step.
  stream = io.StringIO()
  progress = train._Progress(16, 9, stream=stream)
  for step in range(10, 17):
    progress.update(step, {"loss": 1.0})
  assert stream.getvalue().splitlines()[0].startswith("step 10/16")
  assert stream.getvalue().splitlines()[-1].startswith("step 16/16")


def test_jitted_init_equals_the_eager_init_bit_for_bit():
  # `init_variables` compiles the init at a lower XLA optimisation level; the values
  # must be the eager init's exactly, or runs would change with the compile settings.
  # (Also checked by hand for face_fp's ResNet-18 towers; an eager ResNet init takes
  # 30 s in a fresh process, too long for a test.)
  model = models.SiameseModel(models.Conv4(features=(4, 8), dim=8, normalize=True))
  batch = {"image": np.random.default_rng(0).normal(size=(3, 16, 16, 1))}
  jitted = train.init_variables(model, batch, train.SINGLE_INPUTS, seed=5)
  inputs = train.model_inputs({k: v[:2] for k, v in batch.items()}, train.SINGLE_INPUTS)
  eager = model.init(jax.random.key(5), **inputs, train=False)
  assert jax.tree.structure(jitted) == jax.tree.structure(dict(eager))
  for a, b in zip(jax.tree.leaves(jitted), jax.tree.leaves(dict(eager)), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_equal_models_and_configs_share_one_jitted_step(tmp_path):
  # face_fp's sweep trains several models from equal configs: the second fit reuses the
  # first's jitted step (the loss is traced once) and, on the same data, ends the same.
  traced = []

  def loss(outputs, batch):
    traced.append(1)  # runs only while the step is traced
    return pair_contrastive_loss(outputs, batch)

  batches = list(_batches(3))
  finals = []
  for run, seed in enumerate((7, 7, 8)):  # the optimizer does not read the seed: shared too
    cfg = _cfg(steps=3, batch_size=16, async_checkpoints=False, checkpoint_every=3, seed=seed)
    result = train.fit(
      cfg,
      model=_model(),  # a new module object, equal to the other run's
      loss_fn=loss,
      train_iter=iter(batches),
      workdir=tmp_path / str(run),
      inputs=train.SINGLE_INPUTS,
      mesh=parallel.data_mesh(jax.devices()[:1]),
    )
    finals.append(jax.device_get(result.state["params"]))
  assert len(traced) == 1
  jax.tree.map(np.testing.assert_array_equal, finals[0], finals[1])


def test_shared_builds_once_per_key_and_not_for_unhashable_keys():
  built = []

  def build():
    built.append(1)
    return object()

  a, b = train.shared(("test", 1), build), train.shared(("test", 1), build)
  assert a is b and len(built) == 1
  assert train.shared(("test", 2), build) is not a
  assert train.shared(("test", [1]), build) is not train.shared(("test", [1]), build)
  assert len(built) == 4
  assert train.config_key({"b": 1, "a": (2, 3)}) == train.config_key({"a": (2, 3), "b": 1})
  assert train.config_key({"b": 1, "seed": 0}, ignore=("seed",)) == train.config_key({"b": 1})
