"Shared helpers for the pytest suite: the repository, its venv's tools, and a throw-away copy of the repo."
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool_env() -> dict:
    "The environment for subprocesses: this venv's tools first on PATH, no inherited PYTHONPATH"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["MPLBACKEND"] = "Agg"
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "hrl_fund tests"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "tests@hrl-fund.invalid"
    return env


def run(args: list[str], cwd: Path, check: bool = True, timeout: int = 1200) -> subprocess.CompletedProcess:
    "Run a command, returning its result with stdout and stderr merged into `.stdout`"
    result = subprocess.run(args, cwd=cwd, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout[-6000:]}")
    return result


def copy_repo(target: Path) -> Path:
    "Copy the files git knows (tracked, or new and not ignored) into `target`, as a fresh clone would have them"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
