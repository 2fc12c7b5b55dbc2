import pytest

from mwaa_migrate.environment.versions import (
    OLDEST_EXPORTABLE_SOURCE,
    SOURCE_VERSIONS,
    TARGET_VERSIONS,
    AirflowVersion,
    UnsupportedSource,
    newest_target,
    version_path,
)


def test_versions_order_numerically_not_as_text():
    assert AirflowVersion.parse("2.10.1") > AirflowVersion.parse("2.9.2")


def test_a_2x_target_is_created_directly():
    path = version_path("2.7.2", "2.10.3")
    assert (path.create_version, path.upgrade_to, path.final_version) == ("2.10.3", None, "2.10.3")


def test_an_airflow_3_target_goes_through_the_newest_2_11_then_upgrades_in_place():
    path = version_path("2.7.2", "3.0.6")
    assert path.create_version == newest_target(2, 11) == "2.11.0"
    assert path.upgrade_to == "3.0.6"
    assert path.final_version == "3.0.6"


def test_a_downgrade_is_refused():
    with pytest.raises(ValueError, match="older than the source's 2.10.3"):
        version_path("2.10.3", "2.9.2")


def test_an_unknown_target_version_is_refused_with_the_list():
    with pytest.raises(ValueError, match="must be one of 2.7.2"):
        version_path("2.7.2", "2.10.4")


def test_an_airflow_3_source_is_refused():
    with pytest.raises(UnsupportedSource, match=r"only Airflow 2\.x sources"):
        version_path("3.0.6", "3.0.6")


@pytest.mark.parametrize("old", ["2.0.2", "2.2.2", "2.4.3", "2.5.1", "2.6.3"])
def test_a_2x_source_older_than_the_export_supports_is_refused_with_the_way_forward(old):
    with pytest.raises(UnsupportedSource) as refused:
        version_path(old, "2.10.3")
    message = str(refused.value)
    assert f"runs Airflow {old}" in message
    assert f"supports: {OLDEST_EXPORTABLE_SOURCE}, 2.8.1" in message
    assert "Upgrade the source in place first" in message


def test_an_airflow_1_10_source_is_refused_as_one_mwaa_cannot_upgrade_in_place():
    with pytest.raises(UnsupportedSource, match="cannot upgrade Airflow 1.10 in place"):
        version_path("1.10.12", "2.7.2")


@pytest.mark.parametrize("source", [v for v in SOURCE_VERSIONS if v.startswith("2.")])
def test_every_2x_source_mwaa_runs_is_migrated_or_refused_by_name(source):
    if AirflowVersion.parse(source) >= AirflowVersion.parse(OLDEST_EXPORTABLE_SOURCE):
        assert version_path(source, "3.0.6").final_version == "3.0.6"
    else:
        with pytest.raises(UnsupportedSource, match=source):
            version_path(source, "3.0.6")


def test_the_same_version_is_allowed_for_a_move_to_a_new_environment():
    assert version_path("2.10.3", "2.10.3").create_version == "2.10.3"


@pytest.mark.parametrize("text", ["2.10", "2.x.1", "", "v2.7.2"])
def test_malformed_versions_are_refused(text):
    with pytest.raises(ValueError, match="is not an Airflow version"):
        AirflowVersion.parse(text)


def test_every_target_version_parses():
    assert all(AirflowVersion.parse(version) for version in TARGET_VERSIONS)
