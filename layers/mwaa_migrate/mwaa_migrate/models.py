"""Typed events and results. Every field is camelCase on the wire (the state machine's JSON) and
snake_case in Python; unknown fields are refused so a typo never passes silently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from mwaa_migrate.environment.target_settings import settings_problems
from mwaa_migrate.environment.versions import (
    SELF_MANAGED_DATABASES,
    TARGET_VERSIONS,
    self_managed_version_problem,
)
from mwaa_migrate.errors import InvalidMigrationRequest

# MWAA's own rules (botocore model: EnvironmentName, IamRoleArn, S3 bucket names).
EnvironmentName = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[a-zA-Z][0-9a-zA-Z_-]*$")]
RoleArn = Annotated[
    str, Field(max_length=1224, pattern=r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]+$")
]
BucketName = Annotated[str, Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")]
ExecutionId = Annotated[str, Field(min_length=1, max_length=2048)]
# Values that reach an Airflow command line: Airflow's own rules for DAG ids (letters, digits, _ . -)
# and run ids (also ~ : +), up to 250 characters, and never starting with "-", so that the CLI cannot
# read one as an option.
DagId = Annotated[str, Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
RunId = Annotated[str, Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.~:+-]*$")]


def _known_target_version(version: str) -> str:
    if version not in TARGET_VERSIONS:
        raise ValueError(f"must be one of {', '.join(TARGET_VERSIONS)}")
    return version


TargetVersion = Annotated[str, AfterValidator(_known_target_version)]

# MWAA's CloudWatch Logs groups, airflow-{environment}-{kind}: one per logging module.
LogGroupKind = Literal["Task", "Worker", "Scheduler", "DAGProcessing", "WebServer"]


def _task_logs_only() -> list[LogGroupKind]:
    return ["Task"]


# How the cutover starts: at once after the bulk copy, or when an operator approves it.
CutoverMode = Literal["auto", "approve"]
# What a drain that outlasts its deadline does: restore the source, or carry the runs as they stand.
DrainTimeoutAction = Literal["fail", "carry"]
# What the import does with a row the target refuses or holds differently (docs/cutover.md).
OnConflict = Literal["fail", "keep-target", "overwrite"]
OnIncompatibleDags = Literal["warn", "fail"]


# An object or a folder in S3, as s3://bucket/key. MWAA reads its files from buckets named airflow-*
# (its own rule), and the stack's functions may read only those: a self-managed source's files are
# read there too.
S3Uri = Annotated[
    str,
    Field(
        max_length=1024,
        pattern=r"^s3://airflow-[a-z0-9.-]{0,53}[a-z0-9](/[^\s]*)?$",
        description="s3://airflow-BUCKET/KEY",
    ),
]
SecretArn = Annotated[
    str,
    Field(
        max_length=2048,
        pattern=r"^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$",
    ),
]
AirflowVersionText = Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$", max_length=32)]
# The names of the Secrets Manager secrets that hold a self-managed Airflow's REST API credentials:
# the stack's functions may read these and no other (template.yaml).
AIRFLOW_SECRET_PREFIX = "mwaa-migrate/"  # noqa: S105  (a name prefix, not a secret)
# The longest a hands-on export may take: its presigned forms are signed by a function's role, whose
# session lasts at most that long.
HANDS_ON_MAX_HOURS = 12


def s3_parts(uri: str) -> tuple[str, str]:
    """s3://bucket/some/key -> (bucket, some/key); s3://bucket -> (bucket, "")."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True, serialize_by_alias=True
    )

    def to_event(self) -> dict[str, Any]:
        """The JSON form the state machine carries."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ReachedAccess(Model):
    """The pipeline reaches the self-managed Airflow through its stable REST API."""

    mode: Literal["reached"] = Field(
        description="reached: the pipeline triggers and follows the export through Airflow's REST API."
    )
    rest_api_url: str = Field(
        max_length=2048,
        pattern=r"^(https://[^\s/@?#]+|http://(127\.0\.0\.1|localhost)(:\d{1,5})?)(/[^\s?#@]*)?$",
        description="Airflow's REST API base, https://HOST/api/v1: HTTPS (plain HTTP only on this "
        "machine's loopback, for the local emulation), no user, password or query in it.",
    )
    credentials_secret_arn: SecretArn = Field(
        description="The Secrets Manager secret holding the REST API's credentials and the URL they "
        'are for, {"restApiUrl", "username", "password"} or {"restApiUrl", "token"} (never the '
        "credentials themselves: the request is kept in the execution's history); its name starts "
        f"with {AIRFLOW_SECRET_PREFIX}, the only secrets the stack's functions may read.",
    )

    @field_validator("credentials_secret_arn")
    @classmethod
    def _a_secret_the_stack_may_read(cls, arn: str) -> str:
        name = arn.split(":secret:", 1)[-1]
        if not name.startswith(AIRFLOW_SECRET_PREFIX):
            raise ValueError(
                f"the secret's name must start with {AIRFLOW_SECRET_PREFIX} (the stack's functions may "
                f"read only those), not {name}"
            )
        return arn


class HandsOnAccess(Model):
    """The user runs the export on their Airflow by hand; the pipeline waits for its manifest."""

    mode: Literal["hands_on"] = Field(
        description="hands_on: you copy the export DAG into your dags/ folder and trigger it with the "
        "conf the pipeline writes (mwaa-migrate hands-on prints the steps); the execution waits until "
        "the export's manifest lands in the migration bucket."
    )
    export_deadline_hours: int = Field(
        default=HANDS_ON_MAX_HOURS,
        ge=1,
        le=HANDS_ON_MAX_HOURS,
        description="How long the execution waits for each export you run (the bulk, then the cutover's) "
        f"before it fails: 1 to {HANDS_ON_MAX_HOURS} hours. The export's presigned upload forms expire "
        "then too, so an export started after the deadline cannot pause your DAGs.",
    )


class SelfManagedSource(Model):
    """An Apache Airflow deployment that is not MWAA: what GetEnvironment would say of an MWAA one."""

    kind: Literal["self_managed"] = Field(description="self_managed: an Apache Airflow you run yourself.")
    name: EnvironmentName = Field(
        description="A name for the source, as an MWAA environment name (letters, digits, - and _): it "
        "names this migration's prefix in the migration bucket and tags the target."
    )
    airflow_version: AirflowVersionText = Field(
        description="The Airflow version the source runs (airflow version): 2.7.2 up to 2.11.x."
    )
    metadata_database: str = Field(
        default="postgresql",
        description="The source's metadata database engine: the export reads PostgreSQL only.",
    )
    dags_uri: S3Uri = Field(
        description="The source's DAG folder, s3://airflow-BUCKET/PREFIX/: the target gets a copy of its own."
    )
    plugins_uri: S3Uri | None = Field(
        default=None, description="The source's plugins.zip, in the DAG folder's bucket (none if left out)."
    )
    requirements_uri: S3Uri | None = Field(
        default=None,
        description="The source's requirements.txt, in the DAG folder's bucket: its --constraint is "
        "rewritten for the target's Airflow.",
    )
    startup_script_uri: S3Uri | None = Field(
        default=None, description="A startup script for the target's workers, in the DAG folder's bucket."
    )
    access: Annotated[ReachedAccess | HandsOnAccess, Field(discriminator="mode")] = Field(
        description='How the export runs on the source: {"mode": "reached", "restApiUrl": ..., '
        '"credentialsSecretArn": ...} or {"mode": "hands_on"}.'
    )

    @field_validator("airflow_version")
    @classmethod
    def _exportable_version(cls, version: str) -> str:
        problem = self_managed_version_problem(version)
        if problem:
            raise ValueError(problem)
        return version

    @field_validator("metadata_database")
    @classmethod
    def _postgresql(cls, engine: str) -> str:
        if engine.lower() not in SELF_MANAGED_DATABASES:
            raise ValueError(
                f"the export reads {', '.join(SELF_MANAGED_DATABASES)} metadata databases only (its "
                f"PostgreSQL bulk copy), not {engine}"
            )
        return engine.lower()

    @model_validator(mode="after")
    def _files_in_one_bucket(self) -> SelfManagedSource:
        bucket, _ = s3_parts(self.dags_uri)
        for field, uri in self.file_uris().items():
            if s3_parts(uri)[0] != bucket:
                raise ValueError(f"{field}: must be in the DAG folder's bucket {bucket}, as MWAA reads them")
            if not s3_parts(uri)[1] or uri.endswith("/"):
                raise ValueError(f"{field}: names a folder, not a file")
        return self

    def file_uris(self) -> dict[str, str]:
        """The optional files' URIs by their JSON field name."""
        uris = {
            "pluginsUri": self.plugins_uri,
            "requirementsUri": self.requirements_uri,
            "startupScriptUri": self.startup_script_uri,
        }
        return {field: uri for field, uri in uris.items() if uri}


def source_name_of(request: Mapping[str, Any]) -> Any:
    """A request's source name (sourceEnvironmentName, or source.name), as the JSON holds it."""
    if request.get("sourceEnvironmentName") is not None:
        return request.get("sourceEnvironmentName")
    source = request.get("source")
    return source.get("name") if isinstance(source, Mapping) else None


class MigrationRequest(Model):
    """The state machine's input, from the console, EventBridge's detail or the local runner."""

    # Each field's description is the JSON Schema's (docs/) and what `mwaa-migrate init` explains.
    source_environment_name: EnvironmentName | None = Field(
        default=None,
        description="The MWAA environment to migrate: it must exist and be AVAILABLE (or `source`, for a "
        "self-managed Apache Airflow; exactly one of the two).",
    )
    source: SelfManagedSource | None = Field(
        default=None,
        description="A self-managed Apache Airflow to migrate instead of an MWAA environment: its version, "
        "files and access (reached: through its REST API; hands_on: you run the export the pipeline "
        "hands you, and it waits for it); targetSettings must then carry the target's "
        "ExecutionRoleArn, SourceBucketArn and NetworkConfiguration.",
    )
    target_environment_name: EnvironmentName = Field(
        description="The new environment: a name that is free, or the target of an earlier run of this "
        "migration (reused)."
    )
    target_airflow_version: TargetVersion = Field(
        description="The Airflow version the target runs: one MWAA accepts, not older than the source's."
    )
    target_execution_role_arn: RoleArn | None = Field(
        default=None,
        description="The target's execution role (default: the source's): it matches the stack's "
        "ExecutionRoleArnPattern and only MWAA may assume it. A self-managed source's target names it "
        "in targetSettings.ExecutionRoleArn.",
    )
    migration_bucket: BucketName | None = Field(
        default=None, description="The stack's migration bucket (the only one allowed; default: that one)."
    )
    # The request's numbers and switches are taken as JSON types exactly: "3" is no number of days
    # and "no" no answer to "dry run?".
    log_days: int = Field(
        default=3,
        ge=1,
        le=14,
        strict=True,
        description="Days of task logs to copy, counted back from the start.",
    )
    log_groups: list[LogGroupKind] = Field(
        default_factory=_task_logs_only,
        description="The source's log groups to copy: Task by default, the others on request; [] copies "
        "none (a self-managed source has none: [] is its default and only value).",
    )
    failed_tasks_only: bool = Field(
        default=False,
        strict=True,
        description="Copy only the Task logs of task instances that failed (every attempt of each).",
    )
    dry_run: bool = Field(
        default=False,
        strict=True,
        validate_default=True,
        description="Plan only: nothing changes, the plan is the execution's output (the only run a "
        "self-managed source may have today).",
    )
    cutover: CutoverMode = Field(
        default="auto",
        description="auto: the downtime window follows the bulk copy at once; approve: the migration waits "
        "after the bulk copy, production untouched, for `mwaa-migrate approve` or `reject`.",
    )
    approval_timeout_hours: int = Field(
        default=24,
        ge=1,
        le=720,
        strict=True,
        description="Hours an approval may take; without an answer the migration ends, the source never "
        "paused.",
    )
    drain_timeout_minutes: int = Field(
        default=30,
        ge=0,
        le=720,
        strict=True,
        description="Minutes to wait, after the pause, for the source's running and queued tasks to finish.",
    )
    on_drain_timeout: DrainTimeoutAction = Field(
        default="fail",
        description="At the drain's deadline: fail (the source runs its DAGs again) or carry (the runs still "
        "going are carried over as they stand).",
    )
    on_conflict: OnConflict = Field(
        default="fail",
        description="A row the target refuses or holds differently: fail the import (nothing changed), "
        "keep-target, or overwrite it with the source's.",
    )
    on_incompatible_dags: OnIncompatibleDags = Field(
        default="warn",
        description="DAG files that will not run on the target's Airflow: warn (listed in the plan and the "
        "report) or fail (the migration stops before the source is paused).",
    )
    replace_failed_target: bool = Field(
        default=True,
        strict=True,
        description="A target this pipeline created that ended CREATE_FAILED is deleted and created again.",
    )
    target_bucket: BucketName | None = Field(
        default=None,
        description="Where the target's own copy of DAGs, plugins, requirements and startup script goes "
        "(default: the source's bucket, under a prefix of the target's own; a self-managed source's "
        "target: targetSettings.SourceBucketArn).",
    )
    target_settings: dict[str, Any] | None = Field(
        default=None,
        validate_default=True,
        description="CreateEnvironment members for the target instead of the source's (network, class, "
        "size, access mode ...); AirflowConfigurationOptions and Tags merge key by key. For a "
        "self-managed source, the target's own settings: ExecutionRoleArn, SourceBucketArn and "
        "NetworkConfiguration at least.",
    )

    @field_validator("target_settings")
    @classmethod
    def _target_settings_in_createenvironments_shape(
        cls, settings: dict[str, Any] | None, info: ValidationInfo
    ) -> dict[str, Any] | None:
        # `source` is validated before the fields after it; absent from info.data when it was refused
        # (its own error speaks then).
        if "source" not in info.data:
            return settings
        self_managed = info.data["source"] is not None
        problems = (
            settings_problems(settings or {}, self_managed=self_managed) if settings or self_managed else []
        )
        if problems:
            raise ValueError("; ".join(problems))
        return settings

    # A self-managed source (validated before these fields) changes what they may say.

    @field_validator("target_execution_role_arn", "target_bucket")
    @classmethod
    def _set_in_target_settings(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("source") is not None and value is not None:
            member = (
                "ExecutionRoleArn" if info.field_name == "target_execution_role_arn" else "SourceBucketArn"
            )
            raise ValueError(
                f"a self-managed source's target names it in targetSettings.{member} (with the rest of its "
                "settings: there is no source environment to take them from)"
            )
        return value

    @field_validator("log_groups")
    @classmethod
    def _no_log_groups_to_copy(cls, groups: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("source") is not None and groups:
            raise ValueError(
                "a self-managed source has no CloudWatch log groups to copy from: leave logGroups out "
                "(its task logs are not copied)"
            )
        return groups

    @field_validator("log_groups")
    @classmethod
    def _each_group_once(cls, groups: list[str]) -> list[str]:
        repeated = sorted({group for group in groups if groups.count(group) > 1})
        if repeated:
            raise ValueError(f"names {', '.join(repeated)} more than once")
        return groups

    @model_validator(mode="before")
    @classmethod
    def _one_source(cls, data: Any) -> Any:
        # Before the fields: what the others may say depends on which source it is.
        if isinstance(data, Mapping):
            named = [
                field
                for field, name in (
                    ("sourceEnvironmentName", "source_environment_name"),
                    ("source", "source"),
                )
                if data.get(field) is not None or data.get(name) is not None
            ]
            if len(named) != 1:
                raise ValueError(
                    "name the source in exactly one of sourceEnvironmentName (an MWAA environment) and "
                    "source (a self-managed Apache Airflow)"
                )
            if named == ["source"] and "logGroups" not in data and "log_groups" not in data:
                # A self-managed source has no log groups: none by default (so its request, written
                # out with its defaults, reads back the same).
                return {**data, "logGroups": []}
        return data

    @model_validator(mode="after")
    def _source_is_not_target(self) -> MigrationRequest:
        if self.source_name == self.target_environment_name:
            raise ValueError(
                "targetEnvironmentName must differ from "
                + ("sourceEnvironmentName" if self.source is None else "source.name")
            )
        if self.failed_tasks_only and "Task" not in self.log_groups:
            raise ValueError("failedTasksOnly selects Task logs, but logGroups does not include Task")
        return self

    @property
    def source_name(self) -> str:
        """The source's name: the MWAA environment's, or the self-managed source's."""
        name = self.source.name if self.source is not None else self.source_environment_name
        assert name is not None  # the validator requires exactly one
        return name


def parse_model[M: BaseModel](model: type[M], data: Any, *, by_name: bool = True) -> M:
    """Validate data, turning pydantic's report into one InvalidMigrationRequest naming each field.
    by_name=False: only the fields' documented (camelCase) names are read, so a request that spells
    one by its Python name (`dry_run`) is refused naming it rather than read as that field."""
    try:
        return model.model_validate(data, by_alias=True, by_name=by_name)
    except ValidationError as error:
        # A default's validation (validate_default) names the field by its Python name: by its alias here.
        aliases = {name: field.alias for name, field in model.model_fields.items() if field.alias}
        raise InvalidMigrationRequest(describe_validation_error(error, aliases)) from None


def parse_request(data: Any) -> MigrationRequest:
    """A migration request from outside (the console, EventBridge, the CLI's input file or flags):
    its fields by their documented names only."""
    return parse_model(MigrationRequest, data, by_name=False)


def describe_validation_error(error: ValidationError, aliases: Mapping[str, str] | None = None) -> str:
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        loc = list(item["loc"])
        # An extra input's place is the key as given (a field's Python name given is no field).
        if loc and isinstance(loc[0], str) and item["type"] != "extra_forbidden":
            loc[0] = (aliases or {}).get(loc[0], loc[0])
        field = ".".join(str(part) for part in loc) or "input"
        # A rule of our own (a validator's ValueError) speaks for itself: without pydantic's
        # "Value error, " before it.
        context = item.get("ctx") or {}
        message = (
            str(context["error"]) if item["type"] == "value_error" and "error" in context else item["msg"]
        )
        problems.append(f"{field}: {message}")
    return "invalid input: " + "; ".join(problems)


# What the source is: an MWAA environment (GetEnvironment describes it), or a self-managed Apache
# Airflow (the request describes it).
SourceKind = Literal["mwaa", "self_managed"]


class SourceEnvironment(Model):
    name: EnvironmentName
    kind: SourceKind = "mwaa"
    # None for a self-managed source: no MWAA environment, no execution role of its own.
    arn: str | None = None
    airflow_version: str
    execution_role_arn: str | None = None
    # Where the source's DAG files are (a self-managed source's dagsUri, as bucket and prefix).
    source_bucket_arn: str
    dag_s3_path: str
    # False when the source sends no task logs to CloudWatch: the log copy is skipped.
    task_logs_enabled: bool
    # The source's settings in CreateEnvironment's shape: the plan and the report show the target's
    # request as a diff against them. Airflow configuration option values are redacted.
    settings: dict[str, Any] = Field(default_factory=dict)


class TargetFile(Model):
    """One of the source's files (or its DAG folder) that the target gets its own copy of."""

    kind: Literal["dags", "plugins", "requirements", "startup_script"]
    # The DAG folder's prefix for "dags"; the object's key otherwise.
    source_key: str
    # The exact version the source runs (None for "dags": each file is copied as it stands).
    source_version_id: str | None = None
    target_key: str


class ConfigurationObject(Model):
    """Where the target's Airflow configuration option values are: an SSE-KMS object of the migration
    bucket (secret_options.py). The plan carries this reference, never the values."""

    bucket: BucketName
    key: str = Field(min_length=1, max_length=1024)
    # None when the bucket is not versioned; the digest still tells a replaced object.
    version_id: str | None = None
    # sha256 of the object's bytes (which hold a random nonce, so the digest confirms no guess).
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


class TargetEnvironment(Model):
    name: EnvironmentName
    execution_role_arn: str
    source_bucket_arn: str
    dag_s3_path: str
    create_version: str
    upgrade_to: str | None = None
    final_version: str
    # The CreateEnvironment request, whose AirflowConfigurationOptions name the options with their
    # values redacted (redaction.shown_options): CloneEnvironment sends the values of `configuration`.
    create_request: dict[str, Any]
    # The option values' object (None in a dry run, which writes nothing).
    configuration: ConfigurationObject | None = None
    already_exists: bool = False
    # The target's own copy of the source's DAGs, plugins, requirements and startup script, in the
    # bucket of source_bucket_arn. The copy's version ids complete create_request in CloneEnvironment.
    files: list[TargetFile] = Field(default_factory=list)
    # This migration's target exists in CREATE_FAILED (or is being deleted): CloneEnvironment deletes
    # it, waits until it is gone and creates it again.
    replace_failed: bool = False


class RolePolicy(Model):
    role_name: str
    policy_name: str
    document: dict[str, Any]


# How the functions reach an environment's Airflow (webserver_transport.py): its web server's CLI
# endpoint, or Airflow's REST API through MWAA's InvokeRestApi.
WebserverTransportKind = Literal["cli", "rest_api", "airflow_api", "hands_on"]


class WebserverRoute(Model):
    """How the pipeline talks to one environment's Airflow, and why (the plan shows both)."""

    transport: WebserverTransportKind = "cli"
    reason: str = ""


class WebserverRoutes(Model):
    source: WebserverRoute = Field(default_factory=WebserverRoute)
    target: WebserverRoute = Field(default_factory=WebserverRoute)


class AirflowApi(Model):
    """How the functions reach a self-managed Airflow (the `airflow_api` transport): its REST API's
    base URL and the secret that holds its credentials (read by the function, never carried)."""

    rest_api_url: str
    credentials_secret_arn: str


class DagDeployment(Model):
    """A project DAG and the files it needs, placed in an environment's DAG folder."""

    environment_name: EnvironmentName
    dag_id: DagId
    bucket: str
    folder: str
    files: list[str]
    # How the functions reach the environment's Airflow (the plan's choice for it): the state machine
    # passes the deployments whole to every function that talks to Airflow.
    transport: WebserverTransportKind = "cli"
    # With the `airflow_api` transport: where that Airflow's REST API is.
    airflow_api: AirflowApi | None = None

    def key(self, file_name: str) -> str:
        return f"{self.folder}/{file_name}" if self.folder else file_name


class CutoverSettings(Model):
    """How the downtime window runs: the gate before it and the drain inside it."""

    mode: CutoverMode = "auto"
    approval_timeout_seconds: int = 24 * 3600
    drain_timeout_minutes: int = 30
    on_drain_timeout: DrainTimeoutAction = "fail"
    # The import DAG unpauses the recorded DAGs itself, unless MWAA upgrades the target after it
    # (2.11 -> 3): then StartTargetDags unpauses them once the target runs the final version.
    unpause_in_import: bool = True
    # An earlier run of this migration went live and stopped before it finished (a crash): this run
    # goes straight to StartTargetDags, the log copy and the finish, and copies no metadata again.
    resume_after_live: bool = False


class DagFinding(Model):
    """One reason a DAG file may not run on the target version (dag_compatibility.py)."""

    file: str
    line: int | None = None
    rule: str
    message: str
    # True: the DAG will not load or run on the target version.
    breaking: bool


class DagCompatibility(Model):
    """What the preflight found, for the plan and the report."""

    target_version: str
    checked: Literal["static", "target", "none"]
    files_scanned: int = 0
    # Why nothing was checked, or what the check could not see.
    note: str | None = None
    findings: list[DagFinding] = Field(default_factory=list)
    breaking_count: int = 0
    deprecated_count: int = 0
    by_rule: dict[str, int] = Field(default_factory=dict)

    @property
    def breaking_files(self) -> list[str]:
        return sorted({finding.file for finding in self.findings if finding.breaking})


class MigrationPlan(Model):
    migration_id: str
    source: SourceEnvironment
    target: TargetEnvironment
    bucket: BucketName
    prefix: str
    policies: list[RolePolicy]
    export_dag: DagDeployment
    import_dag: DagDeployment
    log_days: int
    dry_run: bool
    # The KMS key whose data key seals the exported metadata (the export and import DAGs' conf).
    kms_key_arn: str
    warnings: list[str] = Field(default_factory=list)
    log_groups: list[LogGroupKind] = Field(default_factory=_task_logs_only)
    failed_tasks_only: bool = False
    cutover: CutoverSettings = Field(default_factory=CutoverSettings)
    # The import DAG's answer to a conflict (the request's onConflict), in both phases.
    on_conflict: OnConflict = "fail"
    on_incompatible_dags: OnIncompatibleDags = "warn"
    # The preflight's findings: the plan's static scan of the source's DAG files.
    dag_compatibility: DagCompatibility | None = None
    # How each environment's Airflow is reached (CLI endpoint or InvokeRestApi), and why.
    webserver: WebserverRoutes = Field(default_factory=WebserverRoutes)
    # A self-managed source run by hand (hands_on): how long the execution waits for each export
    # (0 for any other source: the state machine reads the field of every plan).
    hands_on_deadline_seconds: int = 0
