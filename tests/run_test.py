"""The entry point: config resolution, overrides, errors and the workdir."""

import json
import os
import subprocess
import sys
import time
import types

import pytest

from experiments import run

# From the test session (tests/conftest.py): its compilation cache, so that these runs read
# back what earlier runs and tests compiled, and one XLA thread per process beside the
# other test worker. Neither changes what a run computes or prints.
_SESSION_ENV = (
  "JAX_COMPILATION_CACHE_DIR",
  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
  "XLA_FLAGS",
)


def _run(*args, cwd, **env):
  """`python -m experiments.run ARGS` in a bare environment plus `env`."""
  session = {k: os.environ[k] for k in _SESSION_ENV if k in os.environ}
  return subprocess.run(
    [sys.executable, "-m", "experiments.run", *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=300,
    env={
      "PYTHONPATH": str(run.CONFIG_DIR.parents[1]),
      "PATH": "/usr/bin:/bin",
      "JAX_PLATFORMS": "cpu",
      **session,
      **env,
    },
  )


def test_resolve_known_name_and_arg():
  value = run.resolve_config_value("sqrt2_null:runlocal")
  assert value.endswith("experiments/configs/sqrt2_null.py:runlocal")


def test_resolve_unknown_name_lists_available():
  with pytest.raises(run.UnknownConfigError, match="available configs: .*sqrt2_null"):
    run.resolve_config_value("no_such_task")


def test_resolve_missing_path():
  with pytest.raises(run.UnknownConfigError, match="does not exist"):
    run.resolve_config_value("some/dir/missing.py")


def test_unknown_config_exits_nonzero_with_one_line(tmp_path):
  proc = _run("--config=no_such_task", cwd=tmp_path)
  assert proc.returncode != 0
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "sqrt2_null" in lines[0]


def test_help_lists_configs(tmp_path):
  proc = _run("--help", cwd=tmp_path)
  assert "sqrt2_null" in proc.stdout + proc.stderr


def test_misspelt_override_fails(tmp_path):
  proc = _run("--config=sqrt2_null:runlocal", "--config.data.num_pair=3", cwd=tmp_path)
  assert proc.returncode != 0
  assert "num_pairs" in proc.stderr  # the "did you mean" hint


def test_end_to_end_writes_config_and_metrics(tmp_path):
  proc = _run(
    "--config=sqrt2_null:runlocal",
    "--config.data.dims=(8,)",
    f"--workdir={tmp_path / 'w'}",
    "--profile",
    cwd=tmp_path,
    GLIBC_TUNABLES="",  # set, even empty: the run keeps the allocator's defaults
  )
  assert proc.returncode == 0, proc.stderr
  # --profile: the phase table on stdout and in profile.json, summing to the wall time.
  profile = json.loads((tmp_path / "w" / "profile.json").read_text())
  seconds = [row["seconds"] for row in profile["phases"].values()]
  assert sum(seconds) == pytest.approx(profile["wall_seconds"])
  assert "report and figures" in profile["phases"] and "| phase | seconds |" in proc.stdout
  config = json.loads((tmp_path / "w" / "config.json").read_text())
  assert config["data"]["dims"] == [8] and config["data"]["num_pairs"] == 2000
  metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
  assert metrics["environment"]["glibc_tunables"] == ""
  # 2,000 draws from the exact law: the KS test must not reject it.
  assert metrics["d8"]["ks_pvalue"] > 1e-3
  assert metrics["d8"]["observed_mean"] == pytest.approx(metrics["d8"]["null_mean"], abs=0.02)


def _fast_run(*args, cwd):
  """A run that must end before JAX is needed (validation, help, config printing)."""
  start = time.perf_counter()
  proc = _run(*args, cwd=cwd)
  assert time.perf_counter() - start < 10, "should fail before any JAX work"
  return proc


@pytest.mark.parametrize(
  "override",
  ["--config.train.steps=-5", "--config.train.steps=0", "--config.train.batch_size=-4"],
)
def test_nonsense_value_exits_nonzero_with_one_line(tmp_path, override):
  proc = _fast_run("--config=open_set:runlocal", override, cwd=tmp_path)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  key, _, value = override.removeprefix("--config.").partition("=")
  assert len(lines) == 1 and f"{key}={value}" in lines[0] and ">= 1" in lines[0]
  assert proc.stdout == "" and not (tmp_path / "runs").exists()


def test_misspelt_key_is_one_line_with_a_suggestion(tmp_path):
  proc = _fast_run("--config=open_set:runlocal", "--config.train.stepz=3", cwd=tmp_path)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1
  assert "unknown config key 'train.stepz'; did you mean 'train.steps'?" in lines[0]


def test_unknown_variant_is_one_line(tmp_path):
  proc = _fast_run("--config=face_fp:runlocal,bogus", cwd=tmp_path)
  assert proc.returncode == 2
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "bogus" in lines[0] and "chimeric" in lines[0]


def test_help_exits_zero_and_lists_variants_and_print_config(tmp_path):
  proc = _fast_run("--help", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
  for name in run.available_configs():
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith(name + " "))
    for variant in run.config_variants(name):
      assert f":{variant}" in line
  assert "--print_config" in proc.stdout and "common.py" in proc.stdout


def test_print_config_shows_combined_variants(tmp_path):
  proc = _fast_run("--config=face_fp:chimeric,runlocal", "--print_config", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
  config = json.loads(proc.stdout)
  assert config["data"]["source"] == "chimeric" and config["data"]["num_subjects"] == 0
  assert config["data"]["skip_corrupt"] is False
  assert not (tmp_path / "runs").exists()


def test_data_error_is_one_line_and_traceback_only_when_verbose(tmp_path):
  args = (
    "--config=face_verify:runlocal",
    "--config.data.source=folders",
    f"--config.data.root={tmp_path / 'no_such_dir'}",
    f"--workdir={tmp_path / 'w'}",
  )
  proc = _run(*args, cwd=tmp_path)
  assert proc.returncode == 1
  errors = [x for x in proc.stderr.splitlines() if x.startswith("error:")]
  assert len(errors) == 1 and "no_such_dir" in errors[0] and "does not exist" in errors[0]
  assert "Traceback" not in proc.stderr
  verbose = _run(*args, "--verbosity=1", cwd=tmp_path)
  assert verbose.returncode != 0 and "Traceback" in verbose.stderr


def test_a_run_is_quiet_ends_with_the_summary_table_and_defaults_to_runs_name(tmp_path):
  proc = _run("--config=sqrt2_null:runlocal", "--config.data.dims=(4,)", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert (tmp_path / "runs" / "sqrt2_null" / "config.json").is_file()  # the default workdir
  # No library INFO logging by default, no JSON dump: the table, then the report's path.
  assert len(proc.stderr.splitlines()) < 50 and "I1" not in proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert lines[-1].startswith("report: runs/sqrt2_null/report.md")
  assert lines[-4].startswith("metric") and lines[-2].startswith("KS p-value, d = 4")
  assert "{" not in proc.stdout
  metrics = json.loads((tmp_path / "runs" / "sqrt2_null" / "metrics.json").read_text())
  assert {"jax", "jaxlib", "python", "platform", "cpu"} <= set(metrics["environment"])
  # The entry point restarted itself with huge pages for malloc (glibc 2.35 or later).
  if run._glibc_version() >= (2, 35):  # noqa: SLF001
    assert metrics["environment"]["glibc_tunables"] == run.HUGE_PAGES


def test_fresh_training_does_not_claim_a_resume(monkeypatch, capsys, tmp_path):
  import ml_collections  # noqa: PLC0415

  from jaxsim import train  # noqa: PLC0415

  def fake_fit(cfg, **kwargs):
    return types.SimpleNamespace(state={}, resumed_from=fake_fit.start, last_metrics={})

  monkeypatch.setattr(train, "fit", fake_fit)
  monkeypatch.setattr(train.inference, "variables_of", lambda state: {})
  model_cfg = {"kind": "siamese", "encoder": {"name": "face_auth_cnn", "dim": 8}}
  train_cfg = ml_collections.ConfigDict({"steps": 4, "batch_size": 2, "seed": 0, "best_metric": ""})
  for start, expected in ((0, False), (2, True)):
    fake_fit.start = start
    train.fit_model(
      "m", model_cfg, {"name": "batch_all"}, train_cfg, iter(()), train.SINGLE_INPUTS, tmp_path
    )
    out = capsys.readouterr().out
    assert ("resumed from step" in out) is expected, out


def test_a_second_run_on_a_live_workdir_is_refused(tmp_path):
  import socket  # noqa: PLC0415

  holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    workdir = tmp_path / "runs" / "sqrt2_null"
    workdir.mkdir(parents=True)
    (workdir / ".lock").write_text(
      json.dumps({"pid": holder.pid, "host": socket.gethostname(), "command": "first run"})
    )
    proc = _run("--config=sqrt2_null:runlocal", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: workdir")
    assert f"process {holder.pid}" in proc.stderr
  finally:
    holder.kill()
    holder.wait()
  # The holder is gone: its stale lock does not block the next run.
  proc = _run("--config=sqrt2_null:runlocal", "--config.data.dims=(4,)", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
