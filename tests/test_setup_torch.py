"""`tools/install_torch.py`, the first step of `make setup`, on both paths of its choice, without the network.

Two local folders stand in for the package indexes: one laid out like PyTorch's CPU index (a `+cpu` build), one
like PyPI (a build that reports CUDA). The wheels are tiny stand-ins named torch; pip's configuration is switched off
so that nothing on this machine leaks in."""
from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools/install_torch.py"


def fake_torch_wheel(index: Path, version: str, cuda: str | None) -> Path:
    "A minimal wheel named torch at `index/torch/` (PEP 503 layout) whose module reports `version` and `cuda`"
    folder = index / "torch"
    folder.mkdir(parents=True)
    dist = f"torch-{version}.dist-info"
    files = {"torch/__init__.py": f"__version__ = {version!r}\nfrom torch import version\n",
             "torch/version.py": f"cuda = {cuda!r}\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hrl_fund-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    wheel = folder / f"torch-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    (folder / "index.html").write_text(f'<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>\n')
    return wheel


@pytest.fixture(scope="module")
def indexes(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("indexes")
    fake_torch_wheel(root / "cpu", "2.13.0+cpu", None)
    fake_torch_wheel(root / "pypi", "2.13.0", "12.8")
    return {"cpu": root / "cpu", "pypi": root / "pypi", "empty": root / "empty"}


def run_setup(tmp_path: Path, cpu_index: str, default_index: Path) -> subprocess.CompletedProcess:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=default_index.as_uri(), PIP_DISABLE_PIP_VERSION_CHECK="1",
               HRL_FUND_TORCH_CPU_INDEX=cpu_index)
    return subprocess.run([str(venv / "bin/python"), str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)


def test_the_cpu_index_is_used_when_it_answers(tmp_path, indexes):
    result = run_setup(tmp_path, indexes["cpu"].as_uri(), indexes["pypi"])
    assert result.returncode == 0, result.stderr
    assert "torch 2.13.0+cpu, the CPU build, installed from" in result.stdout and "/cpu/torch/" in result.stdout


def test_without_the_cpu_index_the_default_index_serves_and_a_cuda_build_passes(tmp_path, indexes):
    result = run_setup(tmp_path, (indexes["empty"]).as_uri(), indexes["pypi"])
    assert result.returncode == 0, result.stderr
    assert "a CUDA 12.8 build (it runs on the CPU too" in result.stdout
    assert "(the default package index), because the CPU index" in result.stdout and "/pypi/torch/" in result.stdout


def test_no_torch_anywhere_is_one_clear_line(tmp_path, indexes):
    result = run_setup(tmp_path, indexes["empty"].as_uri(), indexes["empty"])
    assert result.returncode == 1
    assert result.stderr.startswith("error: could not install torch==2.13.0: the CPU index") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
