"""Will the source's DAG files run on the target's Airflow? The preflight, before production pauses.

In the plan, a static scan of the source's DAG files with ruff's Airflow rules for the version the
target ends on (for Airflow 3: AIR301 removed, AIR302 moved to a provider, AIR303 incompatible
signature, which stop a DAG; AIR311/AIR312, still working but deprecated). Each finding names its
file and line. Once the target exists, its own import errors and the DAGs the import found missing
(`target_findings`). The request's `onIncompatibleDags` says whether a finding that stops a DAG
fails the migration ("fail", before the source is paused) or is reported ("warn").
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mwaa_migrate.environment.target_files import is_project_file
from mwaa_migrate.environment.versions import AirflowVersion
from mwaa_migrate.errors import IncompatibleDags
from mwaa_migrate.models import DagCompatibility, DagFinding, OnIncompatibleDags
from mwaa_migrate.redaction import redact_text

if TYPE_CHECKING:
    from mwaa_migrate.environment.webserver_transport import WebserverTransport

# ruff's rules for a DAG that will not run on Airflow 3, and for what still runs but is deprecated.
BREAKING_RULES = ("AIR301", "AIR302", "AIR303")
DEPRECATION_RULES = ("AIR311", "AIR312")
# The plan is in the execution's history (256 KB a state): it carries the first findings and counts.
MAX_LISTED = 50
_RUFF_TIMEOUT = 120


def ruff_binary() -> str:
    """The ruff executable shipped with the ruff package (a dependency of the layer)."""
    from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]  # noqa: PLC0415

    return str(find_ruff_bin())


def _relative(path: str, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path


def run_ruff(root: Path, rules: Iterable[str]) -> list[dict[str, Any]]:
    """ruff's JSON findings for the .py files under `root`, with nothing of the user's configuration."""
    command = [
        ruff_binary(),
        "check",
        "--isolated",
        "--no-cache",
        "--exit-zero",
        "--output-format",
        "json",
        "--select",
        ",".join(rules),
        str(root),
    ]
    completed = subprocess.run(  # noqa: S603  # a fixed command line of the packaged binary
        command, capture_output=True, text=True, timeout=_RUFF_TIMEOUT, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"ruff failed ({completed.returncode}): {completed.stderr.strip()[-500:]}")
    findings = json.loads(completed.stdout or "[]")
    return findings if isinstance(findings, list) else []


def _summary(target_version: str, findings: list[DagFinding], *, scanned: int) -> DagCompatibility:
    ordered = sorted(findings, key=lambda f: (not f.breaking, f.file, f.line or 0, f.rule))
    rules = Counter(finding.rule for finding in findings)
    return DagCompatibility(
        target_version=target_version,
        checked="static",
        files_scanned=scanned,
        findings=ordered[:MAX_LISTED],
        breaking_count=sum(1 for finding in findings if finding.breaking),
        deprecated_count=sum(1 for finding in findings if not finding.breaking),
        by_rule=dict(sorted(rules.items())),
    )


def scan_dag_files(files: Mapping[str, str], *, target_version: str) -> DagCompatibility:
    """The static scan of DAG files (their path in the DAG folder -> source text)."""
    if AirflowVersion.parse(target_version).major < 3:
        return DagCompatibility(
            target_version=target_version,
            checked="none",
            files_scanned=0,
            note=(
                "no static rules for a 2.x target (2.x keeps what earlier 2.x versions deprecated): the "
                "target's own import errors are checked once it exists"
            ),
        )
    with tempfile.TemporaryDirectory(prefix="dag-scan-") as folder:
        root = Path(folder)
        for name, text in files.items():
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                continue  # an S3 key that is not a path under the folder: never written outside it
            path = root.joinpath(*relative.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        raw = run_ruff(root, (*BREAKING_RULES, *DEPRECATION_RULES))
    findings = [
        DagFinding(
            file=_relative(str(item.get("filename", "")), root),
            line=item["location"].get("row") if isinstance(item.get("location"), dict) else None,
            rule=str(item.get("code")),
            message=str(item.get("message", "")),
            breaking=str(item.get("code")) in BREAKING_RULES,
        )
        for item in raw
    ]
    return _summary(target_version, findings, scanned=len(files))


def target_findings(
    target_version: str, *, import_errors: Mapping[str, str], missing_dags: Iterable[str]
) -> DagCompatibility:
    """What the target itself says once it runs: DAG files it cannot import (file -> error's last
    line), and the source's active DAGs it does not have."""
    findings = [
        DagFinding(
            file=file,
            rule="import-error",
            # The error's last line reaches the plan, the report and the execution's cause: a DAG
            # file's error may quote a value it read, so secret-looking ones are redacted.
            message=redact_text(error.strip().splitlines()[-1]) if error.strip() else "",
            breaking=True,
        )
        for file, error in sorted(import_errors.items())
    ]
    findings += [
        DagFinding(
            file=dag_id, rule="missing-dag", message=f"DAG {dag_id} is not in the target", breaking=True
        )
        for dag_id in sorted(set(missing_dags))
    ]
    summary = _summary(target_version, findings, scanned=0)
    return summary.model_copy(update={"checked": "target"})


def warning_lines(compatibility: DagCompatibility, *, shown: int = 5) -> list[str]:
    """The plan's and the report's warnings: one line with the counts, then the first findings."""
    if not compatibility.findings:
        return []
    where = "the source's DAG files" if compatibility.checked == "static" else "the target"
    lines = [
        f"{where}: {compatibility.breaking_count} finding(s) that stop a DAG on Airflow "
        f"{compatibility.target_version} and {compatibility.deprecated_count} deprecation(s) "
        f"({', '.join(f'{rule} {count}' for rule, count in compatibility.by_rule.items())})"
    ]
    lines += [
        f"{finding.file}{f':{finding.line}' if finding.line else ''}: {finding.rule} {finding.message}"
        for finding in compatibility.findings[:shown]
    ]
    return lines


def enforce(compatibility: DagCompatibility, policy: OnIncompatibleDags) -> None:
    """Raise IncompatibleDags when the policy is "fail" and a finding stops a DAG."""
    if policy != "fail" or not compatibility.breaking_count:
        return
    files = compatibility.breaking_files
    raise IncompatibleDags(
        f"onIncompatibleDags is fail and {compatibility.breaking_count} finding(s) stop DAGs on Airflow "
        f"{compatibility.target_version}, in {', '.join(files[:10])}"
        + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        + f": fix them (first: {warning_lines(compatibility, shown=1)[-1]}), or set onIncompatibleDags warn"
    )


def check_target(
    airflow: WebserverTransport,
    *,
    target_version: str,
    missing_dags: Iterable[str],
    policy: OnIncompatibleDags,
) -> DagCompatibility:
    """Once the bulk copy is in the target: the user's DAG files its Airflow cannot import, and the
    source's active DAGs it does not have. Raises IncompatibleDags under "fail" before the cutover
    (the source is still running; RecordFailure leaves it so)."""
    errors = {
        error.filepath: error.error
        for error in airflow.import_errors()
        if not is_project_file(error.filepath)
    }
    found = target_findings(target_version, import_errors=errors, missing_dags=missing_dags)
    enforce(found, policy)
    return found


def target_dag_warnings(imported: Mapping[str, Any]) -> list[str]:
    """The report's lines for what the bulk import's DAG check found on the target (CheckDagRun
    adds it to the import's result)."""
    found = imported.get("dagCompatibility")
    if not isinstance(found, Mapping):
        return []
    return warning_lines(DagCompatibility.model_validate(found))
