"""The entry point: config resolution, overrides, errors and the workdir."""

import json
import subprocess
import sys

import pytest

from experiments import run


def _run(*args, cwd):
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
  proc = _run("--config=sqrt2_null:runlocal", "--config.num_pair=3", cwd=tmp_path)
  assert proc.returncode != 0
  assert "num_pairs" in proc.stderr  # the "did you mean" hint


def test_end_to_end_writes_config_and_metrics(tmp_path):
  proc = _run(
    "--config=sqrt2_null:runlocal",
    "--config.dims=(8,)",
    f"--workdir={tmp_path / 'w'}",
    cwd=tmp_path,
  )
  assert proc.returncode == 0, proc.stderr
  config = json.loads((tmp_path / "w" / "config.json").read_text())
  assert config["dims"] == [8] and config["num_pairs"] == 2000
  metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
  # 2,000 draws from the exact law: the KS test must not reject it.
  assert metrics["d8"]["ks_pvalue"] > 1e-3
  assert metrics["d8"]["observed_mean"] == pytest.approx(metrics["d8"]["null_mean"], abs=0.02)


def test_default_workdir_is_runs_name(tmp_path):
  proc = _run("--config=sqrt2_null:runlocal", "--config.dims=(4,)", cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr
  assert (tmp_path / "runs" / "sqrt2_null" / "config.json").is_file()
