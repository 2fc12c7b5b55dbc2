"""ARCHITECTURE.md stays in step with the tree: every path it names exists, and every top-level
folder and every module of the shared layer is named."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "ARCHITECTURE.md").read_text()
LAYER = ROOT / "layers" / "mwaa_migrate" / "mwaa_migrate"


def _named() -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", PAGE))


def _tracked_top_level() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return {path.split("/", 1)[0] + ("/" if "/" in path else "") for path in listed}


def test_every_path_the_page_names_exists():
    named = {
        name
        for name in _named()
        if not name.startswith("s3://") and ("/" in name or re.search(r"\.(py|json|yaml|toml|md|txt)$", name))
    }
    # A name is relative to the repository, the shared layer, or the folder its row is about.
    bases = [
        ROOT,
        LAYER,
        ROOT / "tests",
        ROOT / "scripts",
        ROOT / "statemachine",
        ROOT / "layers" / "mwaa_migrate",
        ROOT / "mwaa_migrate_cli",
        ROOT / "emulation",
        ROOT / "emulation" / "mwaa",
    ]
    missing = [
        name for name in sorted(named) if not any((base / name.rstrip("/")).exists() for base in bases)
    ]
    assert missing == []


def test_every_top_level_folder_is_named():
    folders = {entry for entry in _tracked_top_level() if entry.endswith("/")}
    named = _named()
    assert sorted(folder for folder in folders if folder not in named) == []


def test_every_module_of_the_shared_layer_is_named():
    modules = {path.name for path in LAYER.glob("*.py")} - {"__init__.py"}
    named = _named()
    assert sorted(module for module in modules if module not in named) == []
