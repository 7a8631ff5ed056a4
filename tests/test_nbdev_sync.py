"hrl_fund/ is exactly what nbdev-export makes of nbs/, and every notebook is already clean."
from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from conftest import BIN, REPO, run


def _snapshot(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    for name in ["nbs", "hrl_fund"]:
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy2(REPO / "pyproject.toml", work / "pyproject.toml")
    return work


def test_export_leaves_package_unchanged(tmp_path):
    work = _snapshot(tmp_path)
    run([str(BIN / "nbdev-export")], cwd=work)
    comparison = filecmp.dircmp(REPO / "hrl_fund", work / "hrl_fund", ignore=["__pycache__"])
    differing = []
    def collect(node, prefix=""):
        differing.extend(prefix + name for name in node.diff_files + node.left_only + node.right_only)
        for name, child in node.subdirs.items():
            collect(child, f"{prefix}{name}/")
    collect(comparison)
    assert not differing, f"nbdev-export changes hrl_fund/: {differing} (run `make export` and commit)"


def test_notebooks_are_clean(tmp_path):
    work = _snapshot(tmp_path)
    run([str(BIN / "nbdev-clean")], cwd=work)
    dirty = [path.name for path in sorted((REPO / "nbs").glob("*.ipynb"))
             if path.read_bytes() != (work / "nbs" / path.name).read_bytes()]
    assert not dirty, f"notebooks not clean: {dirty} (run `make export` and commit)"


def test_stage_notebooks_have_a_parameters_cell():
    import json
    for number in ["00", "01", "02", "03", "04", "05"]:
        [path] = [path for path in (REPO / "nbs").glob(f"{number}_*.ipynb")]
        cells = json.loads(path.read_text())["cells"]
        tagged = [cell for cell in cells if "parameters" in cell.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged `parameters`, expected 1"
        assert "root = None" in "".join(tagged[0]["source"]), f"{path.name}: parameters cell has no `root = None`"
