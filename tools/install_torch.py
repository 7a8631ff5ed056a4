#!/usr/bin/env python3
"""Install the pinned torch into this interpreter, preferring PyTorch's CPU build, and say what was installed and why.

`make setup` runs it first, before requirements.lock. The choice:

1. torch 2.13.0 already installed: nothing to do.
2. pip install torch==2.13.0 from PyTorch's CPU wheel index (HRL_FUND_TORCH_CPU_INDEX, default
   https://download.pytorch.org/whl/cpu; pip's own configured find-links and extra indexes still count).
3. If that index is unreachable or has no such wheel: the same from the default package index. On an ordinary Linux
   machine that is PyPI's CUDA build (a few GB); it runs on the CPU too, so setup goes on and says so.

Any failure is one line on stderr naming both attempts, exit code 1; never a stack trace.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PIN = "2.13.0"
CPU_INDEX = os.environ.get("HRL_FUND_TORCH_CPU_INDEX", "https://download.pytorch.org/whl/cpu")


def installed() -> tuple[str, str | None] | None:
    "(version, CUDA version or None) of the torch this interpreter imports, or None"
    probe = subprocess.run([sys.executable, "-c", "import json, torch; print(json.dumps([torch.__version__, "
                            "torch.version.cuda]))"], capture_output=True, text=True)
    if probe.returncode != 0:
        return None
    version, cuda = json.loads(probe.stdout.strip().splitlines()[-1])
    return str(version), cuda


def pip_install(*options: str) -> tuple[subprocess.CompletedProcess, str | None]:
    "pip install torch==PIN with `options`; the result and where pip took the wheel from (its --report)"
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--report", str(report), *options,
                                 f"torch=={PIN}"], capture_output=True, text=True)
        source = None
        if result.returncode == 0 and report.exists():
            for item in json.loads(report.read_text()).get("install", []):
                if item.get("metadata", {}).get("name", "").lower() == "torch":
                    source = item.get("download_info", {}).get("url")
    return result, source


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("WARNING")]
    return lines[-1] if lines else "no message"


def describe(found: tuple[str, str | None], how: str) -> str:
    version, cuda = found
    build = "the CPU build" if not cuda else f"a CUDA {cuda} build (it runs on the CPU too; hrl_fund never needs a GPU)"
    return f"torch {version}, {build}, {how}"


def main() -> int:
    found = installed()
    if found is not None and found[0].split("+")[0] == PIN:
        print(describe(found, "already installed"))
        return 0
    first, source = pip_install("--index-url", CPU_INDEX, "--timeout", "20", "--retries", "1")
    if first.returncode == 0:
        how = f"installed from {source} (asked PyTorch's CPU index {CPU_INDEX} first, with pip's own find-links)"
    else:
        why = last_line(first.stderr)
        second, source = pip_install()
        if second.returncode != 0:
            print(f"error: could not install torch=={PIN}: the CPU index {CPU_INDEX} gave '{why}', and the default "
                  f"package index gave '{last_line(second.stderr)}'", file=sys.stderr)
            return 1
        how = f"installed from {source} (the default package index), because the CPU index {CPU_INDEX} gave '{why}'"
    found = installed()
    if found is None or found[0].split("+")[0] != PIN:
        print(f"error: pip reported success but this interpreter imports torch {found and found[0]}, not {PIN}",
              file=sys.stderr)
        return 1
    print(describe(found, how))
    return 0


if __name__ == "__main__":
    sys.exit(main())
