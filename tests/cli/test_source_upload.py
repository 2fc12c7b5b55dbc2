"""A self-managed source's files from local paths: staged as the S3 URIs their uploads will have
(validated before anything is uploaded), then put in the target's bucket, again only what changed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulation.lambdas import REPO_ROOT
from mwaa_migrate.models import MigrationRequest, parse_model
from mwaa_migrate_cli.errors import CliError
from mwaa_migrate_cli.source_upload import source_prefix, stage_local_sources, upload_sources
from tests.emulated_dags import moto_bucket

BUCKET = "airflow-analytics-prod"
PREFIX = source_prefix("onprem-airflow")


def _request(**source: Any) -> dict[str, Any]:
    request = json.loads((REPO_ROOT / "events" / "plan_migration_self_managed.json").read_text())["request"]
    request["source"] = {**request["source"], **source}
    return request


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dags = tmp_path / "dags"
    (dags / "team" / "__pycache__").mkdir(parents=True)
    (dags / "etl.py").write_text("from airflow import DAG\n")
    (dags / "team" / "report.py").write_text("from airflow import DAG\n")
    (dags / "team" / "__pycache__" / "report.cpython-311.pyc").write_bytes(b"\0")
    (dags / ".airflowignore").write_text("scratch/\n")
    (tmp_path / "requirements.txt").write_text("apache-airflow-providers-amazon\n")
    return dags


@pytest.fixture
def s3() -> Iterator[Any]:
    with moto_bucket(BUCKET) as client:
        yield client


def _keys(s3: Any) -> list[str]:
    return sorted(
        item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX).get("Contents", [])
    )


def test_local_paths_become_the_uris_of_their_copies_and_the_request_stays_valid(folder):
    request, uploads = stage_local_sources(
        _request(dagsUri=str(folder), requirementsUri=str(folder.parent / "requirements.txt"))
    )

    assert request["source"]["dagsUri"] == f"s3://{BUCKET}/{PREFIX}dags/"
    assert request["source"]["requirementsUri"] == f"s3://{BUCKET}/{PREFIX}requirements.txt"
    assert [upload.field for upload in uploads] == ["dagsUri", "requirementsUri"]
    parse_model(MigrationRequest, request)


def test_a_request_naming_s3_only_is_left_as_it_is():
    request = _request()

    assert stage_local_sources(request) == (request, [])


def test_the_folder_is_uploaded_without_caches_and_again_only_what_changed(s3, folder):
    _, uploads = stage_local_sources(
        _request(dagsUri=str(folder), requirementsUri=str(folder.parent / "requirements.txt"))
    )

    first = upload_sources(s3, uploads)

    assert _keys(s3) == [
        f"{PREFIX}dags/.airflowignore",
        f"{PREFIX}dags/etl.py",
        f"{PREFIX}dags/team/report.py",
        f"{PREFIX}requirements.txt",
    ]
    assert len(first.uploaded) == 4
    (folder / "etl.py").write_text("from airflow import DAG  # changed\n")
    (folder / "team" / "report.py").unlink()

    again = upload_sources(s3, uploads)

    assert again.uploaded == [f"s3://{BUCKET}/{PREFIX}dags/etl.py"]
    assert again.removed == [f"s3://{BUCKET}/{PREFIX}dags/team/report.py"]
    assert sorted(again.unchanged) == [
        f"s3://{BUCKET}/{PREFIX}dags/.airflowignore",
        f"s3://{BUCKET}/{PREFIX}requirements.txt",
    ]
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}dags/etl.py")["Body"].read()
    assert body == b"from airflow import DAG  # changed\n"


@pytest.mark.parametrize(
    ("source", "settings", "message"),
    [
        ({"dagsUri": "no/such/folder"}, None, "source.dagsUri: no/such/folder is not a folder"),
        ({"requirementsUri": "."}, None, "source.requirementsUri: . is not a file"),
        ({"dagsUri": "."}, {"SourceBucketArn": None}, "targetSettings.SourceBucketArn: required"),
    ],
)
def test_a_local_path_that_cannot_be_uploaded_is_refused_naming_its_field(source, settings, message):
    request = _request(**source)
    if settings is not None:
        request["targetSettings"] = {**request["targetSettings"], **settings}

    with pytest.raises(CliError, match=message):
        stage_local_sources(request)
