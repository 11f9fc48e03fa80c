"""A Keras backend that lenshunt does not support, or that is not installed, is named in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.failures import is_deterministic
from pipeline.compute import keras_backend
from pipeline.compute.keras_backend import keras_backend_problem
from pipeline.errors import KerasBackendError
from pipeline.models import load_bundle

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_unsupported_misspelt_and_missing_backends_are_named(tmp_path, monkeypatch):
    problem = keras_backend_problem({"KERAS_BACKEND": "torch", "KERAS_HOME": str(tmp_path)})
    assert problem is not None and problem.startswith("KERAS_BACKEND is 'torch', not a Keras backend")
    assert "(tensorflow, jax)" in problem
    assert "'foo'" in keras_backend_problem({"KERAS_BACKEND": "foo"})
    assert keras_backend_problem({"KERAS_BACKEND": "tensorflow"}) is None
    assert keras_backend_problem({"KERAS_HOME": str(tmp_path)}) is None  # no keras.json: Keras' default
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))  # Keras reads it when unset
    problem = keras_backend_problem({"KERAS_HOME": str(tmp_path)})
    assert problem is not None and "keras.json is 'torch'" in problem
    assert problem.endswith("or edit that file")  # trial: "or unset it", which keras.json ignores
    # an empty KERAS_BACKEND is unset, as Keras reads it (trial: refused as '')
    assert keras_backend_problem({"KERAS_BACKEND": "", "KERAS_HOME": str(tmp_path / "none")}) is None
    assert "keras.json is 'torch'" in keras_backend_problem(
        {"KERAS_BACKEND": "", "KERAS_HOME": str(tmp_path)}
    )
    real = keras_backend._installed
    monkeypatch.setattr(keras_backend, "_installed", lambda name: name != "jax" and real(name))
    problem = keras_backend_problem({"KERAS_BACKEND": "jax"})
    assert problem is not None and "'jax', which is not installed here" in problem
    assert problem.endswith("set KERAS_BACKEND to tensorflow")


@pytest.mark.parametrize(
    "command", [["score", "nostore.zarr", "--out", "x", "--model", "m"], ["train", "s", "o"]]
)
def test_a_command_that_loads_keras_names_the_backends_in_one_line_first(tmp_path, command):
    """Trial: ``KERAS_BACKEND=torch lenshunt score`` ended in "unexpected ModuleNotFoundError ... (a bug)"."""
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", *command],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    # before the store is even looked at: one line naming the supported backends
    assert result.stderr == (
        f"lenshunt {command[0]}: error: KERAS_BACKEND is 'torch', not a Keras backend lenshunt supports "
        "(tensorflow, jax): set KERAS_BACKEND to tensorflow or jax, or unset it\n"
    )


def test_a_worker_with_another_backend_fails_loading_a_model_without_retries(monkeypatch):
    """A Dask worker's environment may differ from the CLI's: the model load says it, deterministically."""
    bundle = load_bundle(REPO_ROOT / "tests" / "data" / "bundle-single-output")
    monkeypatch.setenv("KERAS_BACKEND", "foo")
    with pytest.raises(KerasBackendError, match="KERAS_BACKEND is 'foo'") as caught:
        bundle.model  # noqa: B018
    assert is_deterministic(caught.value)


def test_a_backend_installed_but_failing_to_import_is_one_line_not_a_bug(tmp_path, dask_client):
    """Trial: with ``jaxlib`` failing to import, ``KERAS_BACKEND=jax lenshunt score`` ended, after screens
    of Dask and Prefect retries, in "unexpected ModuleNotFoundError: jax requires jaxlib ... (a bug)"."""
    from cutouts import write_set

    from pipeline.store import ingest
    from schemas.layout import load_layout

    euclid = load_layout("euclid-sglc2")
    store = tmp_path / "s.zarr"
    ingest(euclid, write_set(euclid, tmp_path / "set", [100001, 100002]), store, dask_client)
    broken = tmp_path / "broken" / "jaxlib"
    broken.mkdir(parents=True)  # found on the path, as an installed jaxlib is, but failing to import
    (broken / "__init__.py").write_text('raise ModuleNotFoundError("no jaxlib", name="jaxlib")\n')
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": f"{broken.parent}{os.pathsep}{REPO_ROOT}"}
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "score", str(store), "--out", str(tmp_path / "scores")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "lenshunt score: error: Keras could not import its backend 'jax' (KERAS_BACKEND), which is "
        "installed but fails to import (ModuleNotFoundError: jax requires jaxlib"
    ), result.stderr
    assert last.endswith("or set KERAS_BACKEND to tensorflow") and "a bug" not in result.stderr
    assert "Traceback" not in result.stderr  # not retried: no task's traceback either
    # train imports Keras in its own process: said first, before the store is looked at
    env["PYTHONPATH"] = f"{broken.parent}{os.pathsep}{REPO_ROOT}"
    result = subprocess.run(
        [sys.executable, "-m", "flows.cli", "train", "nostore.zarr", "out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1 and result.stderr.startswith(
        "lenshunt train: error: Keras could not import its backend 'jax' (KERAS_BACKEND)"
    ), result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_backend_whose_required_module_is_missing_is_named_before_anything_starts(monkeypatch):
    """``jax`` without ``jaxlib`` (looked for on the path, as ``jax`` itself is, without importing)."""
    monkeypatch.setattr(keras_backend, "REQUIRES", {"jax": ("no_such_jaxlib_module",)})
    problem = keras_backend_problem({"KERAS_BACKEND": "jax"})
    assert problem == (
        "KERAS_BACKEND is 'jax', which is not installed here (no module 'no_such_jaxlib_module'): install "
        "it, or set KERAS_BACKEND to tensorflow"
    )


def test_a_python_script_loading_a_model_prints_no_tensorflow_start_up_noise(tmp_path):
    """Fresh-user trial: a script of the Python API printed TensorFlow's absl and oneDNN start-up lines
    (``WARNING: All log messages before absl::InitializeLog() ...``), which the CLI hides."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    script = (
        "from pipeline.models import load_bundle\n"
        "from pipeline.paths import shipped_model\n"
        "load_bundle(shipped_model()).model\n"
        "print('loaded')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and result.stdout == "loaded\n", result.stderr
    assert "absl::InitializeLog" not in result.stderr and "oneDNN" not in result.stderr, result.stderr
