"""ARCHITECTURE.md stays in step with the tree: every path it names exists, every top-level folder is
named, and each of the shared layer's folders is listed on its own line with exactly its modules."""

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
        *(folder for folder in LAYER.iterdir() if folder.is_dir()),
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


def _layer_lines() -> dict[str, set[str]]:
    """The modules each line of the layer's list names, by the folder it opens with ("" for the top)."""
    section = PAGE[PAGE.index("The shared layer (") : PAGE.index("## A request's way")]
    lines: dict[str, set[str]] = {}
    for item in re.split(r"\n- ", section)[1:]:
        folder = re.match(r"`([a-z_]+)/`:", item)
        modules = set(re.findall(r"`([a-z_]+\.py)`", item))
        lines[folder.group(1) if folder else ""] = modules
    return lines


def _layer_folders() -> dict[str, set[str]]:
    folders = {"": LAYER, **{path.name: path for path in LAYER.iterdir() if (path / "__init__.py").exists()}}
    return {
        name: {module.name for module in path.glob("*.py")} - {"__init__.py"}
        for name, path in folders.items()
    }


def test_each_folder_of_the_shared_layer_is_listed_with_exactly_its_modules():
    assert _layer_lines() == _layer_folders()
