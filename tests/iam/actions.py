"""What IAM authorises for one AWS API call: its action(s), resource ARN(s) and the condition keys
the request carries (Service Authorization Reference; each service's guide where it differs).

An operation is its IAM action of the same name (`airflow:GetEnvironment`) unless listed otherwise;
S3's differ most. Some calls imply more than one request: CopyObject reads its source and writes its
destination; SSE-KMS on an S3 object makes the caller use the key (kms:GenerateDataKey to write,
kms:Decrypt to read); MWAA's CreateEnvironment/UpdateEnvironment pass the execution role
(iam:PassRole, iam:PassedToService airflow.amazonaws.com), and CreateEnvironment with a customer
managed key has MWAA describe it and create a grant for itself as the caller; PutEvents is
authorised per entry.

`World` answers what a request needs from AWS's state (a role's ARN with its path, an
environment's tags, an S3 object's encryption): here, moto's backends and the MWAA emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote

from mwaa_migrate.environment.webserver_transport import REST_API_AIRFLOW_ROLE
from tests.iam.evaluator import ContextValue, Request


class UnmappedCall(LookupError):
    """An operation whose IAM request this module does not know: add it here."""


class World(Protocol):
    def role_arn(self, role_name: str) -> str: ...

    def environment_tags(self, name: str) -> Mapping[str, str] | None: ...

    def object_kms_key(self, bucket: str, key: str, version_id: str | None) -> tuple[str, bool] | None: ...

    def bucket_encryption(self, bucket: str) -> tuple[str | None, bool]: ...


@dataclass(frozen=True)
class Where:
    partition: str
    region: str
    account_id: str

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        region = self.region if regional else ""
        account_id = self.account_id if account else ""
        return f"arn:{self.partition}:{service}:{region}:{account_id}:{resource}"

    def key_arn(self, key_id: str) -> str:
        if key_id.startswith("arn:"):
            return key_id
        if key_id.startswith("alias/"):
            raise UnmappedCall(f"KMS key given by alias {key_id}: IAM authorises the key it names")
        return self.arn("kms", f"key/{key_id}")


Mapper = Callable[[str, dict[str, Any], Where, World], list[Request]]


# ---------------------------------------------------------------- S3
def _s3_object(where: Where, bucket: str, key: str) -> str:
    return f"arn:{where.partition}:s3:::{bucket}/{key}"


def _s3_bucket(where: Where, bucket: str) -> str:
    return f"arn:{where.partition}:s3:::{bucket}"


def _kms_for_s3(
    where: Where, bucket: str, key: str, kms: tuple[str, bool] | None, action: str
) -> list[Request]:
    if kms is None:
        return []
    key_id, bucket_key = kms
    context: dict[str, ContextValue] = {
        "kms:ViaService": f"s3.{where.region}.amazonaws.com",
        "kms:CallerAccount": where.account_id,
        "kms:EncryptionContext:aws:s3:arn": _s3_bucket(where, bucket)
        if bucket_key
        else _s3_object(where, bucket, key),
    }
    return [Request(action, where.key_arn(key_id), context)]


def _write_kms(params: Mapping[str, Any], where: Where, world: World) -> tuple[str, bool] | None:
    """The customer managed key an object is written with, and whether under an S3 Bucket Key
    (the bucket's default encryption fills what the request leaves out)."""
    default_key, default_bucket_key = world.bucket_encryption(str(params["Bucket"]))
    bucket_key = bool(params.get("BucketKeyEnabled", default_bucket_key))
    if params.get("ServerSideEncryption") == "aws:kms":
        key_id = params.get("SSEKMSKeyId")
        # Without one, the AWS managed key aws/s3, whose key policy allows any use through S3.
        return None if key_id is None else (str(key_id), bucket_key)
    if params.get("ServerSideEncryption") is None and default_key is not None:
        return default_key, bucket_key
    return None


def _copy_source(params: Mapping[str, Any]) -> tuple[str, str, str | None]:
    source = params["CopySource"]
    if isinstance(source, Mapping):
        return str(source["Bucket"]), str(source["Key"]), source.get("VersionId")
    path, _, query = str(source).lstrip("/").partition("?")
    bucket, _, key = path.partition("/")
    version = parse_qs(query).get("versionId", [None])[0]
    return bucket, unquote(key), version


def _list_context(params: Mapping[str, Any]) -> dict[str, ContextValue]:
    context: dict[str, ContextValue] = {}
    for parameter, key in (
        ("Prefix", "s3:prefix"),
        ("Delimiter", "s3:delimiter"),
        ("MaxKeys", "s3:max-keys"),
    ):
        if parameter in params:
            context[key] = str(params[parameter])
    return context


_S3_BUCKET_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketTagging": "s3:GetBucketTagging",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
}


def _s3(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    bucket = str(params.get("Bucket", ""))
    key = str(params.get("Key", ""))
    version = params.get("VersionId")
    obj = _s3_object(where, bucket, key)
    match operation:
        case "ListObjectsV2" | "ListObjects":
            return [Request("s3:ListBucket", _s3_bucket(where, bucket), _list_context(params))]
        case "ListObjectVersions":
            return [Request("s3:ListBucketVersions", _s3_bucket(where, bucket), _list_context(params))]
        case "GetObject":
            action = "s3:GetObjectVersion" if version else "s3:GetObject"
            kms = world.object_kms_key(bucket, key, version)
            return [Request(action, obj), *_kms_for_s3(where, bucket, key, kms, "kms:Decrypt")]
        case "HeadObject":
            # HeadObject is authorised as GetObject, and needs no use of an SSE-KMS key.
            return [Request("s3:GetObjectVersion" if version else "s3:GetObject", obj)]
        case "GetObjectTagging":
            return [Request("s3:GetObjectVersionTagging" if version else "s3:GetObjectTagging", obj)]
        case "PutObject" | "CreateMultipartUpload":
            requests = [Request("s3:PutObject", obj)]
            if params.get("Tagging"):
                requests.append(Request("s3:PutObjectTagging", obj))
            return requests + _kms_for_s3(
                where, bucket, key, _write_kms(params, where, world), "kms:GenerateDataKey"
            )
        case "UploadPart" | "CompleteMultipartUpload":
            return [Request("s3:PutObject", obj)]
        case "AbortMultipartUpload":
            return [Request("s3:AbortMultipartUpload", obj)]
        case "ListParts":
            return [Request("s3:ListMultipartUploadParts", obj)]
        case "CopyObject" | "UploadPartCopy":
            source_bucket, source_key, source_version = _copy_source(params)
            read = "s3:GetObjectVersion" if source_version else "s3:GetObject"
            source_kms = world.object_kms_key(source_bucket, source_key, source_version)
            requests = [
                Request(read, _s3_object(where, source_bucket, source_key)),
                *_kms_for_s3(where, source_bucket, source_key, source_kms, "kms:Decrypt"),
                Request("s3:PutObject", obj),
            ]
            if operation == "CopyObject":
                requests += _kms_for_s3(
                    where, bucket, key, _write_kms(params, where, world), "kms:GenerateDataKey"
                )
            return requests
        case "DeleteObject":
            return [Request("s3:DeleteObjectVersion" if version else "s3:DeleteObject", obj)]
        case "DeleteObjects":
            return [
                Request(
                    "s3:DeleteObjectVersion" if item.get("VersionId") else "s3:DeleteObject",
                    _s3_object(where, bucket, str(item["Key"])),
                )
                for item in params["Delete"]["Objects"]
            ]
    if operation in _S3_BUCKET_ACTIONS:
        return [Request(_S3_BUCKET_ACTIONS[operation], _s3_bucket(where, bucket))]
    raise UnmappedCall(f"s3.{operation}")


# ---------------------------------------------------------------- MWAA (service prefix airflow)
def _environment_arn(where: Where, name: str) -> str:
    return where.arn("airflow", f"environment/{name}")


def _tags_context(prefix: str, tags: Mapping[str, str] | None) -> dict[str, ContextValue]:
    return {f"{prefix}/{k}": v for k, v in (tags or {}).items()}


def _airflow(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    action = f"airflow:{operation}"
    if operation == "ListEnvironments":
        return [Request(action, "*")]
    if operation in {"TagResource", "UntagResource", "ListTagsForResource"}:
        arn = str(params["ResourceArn"])
        name = arn.rsplit("/", 1)[-1]
    else:
        name = str(params["Name"])
        arn = _environment_arn(where, name)
    if operation == "InvokeRestApi":
        # Authorised on the Airflow role the call acts as, the Service Authorization Reference's
        # rbac-role (arn:PARTITION:airflow:REGION:ACCOUNT:role/ENVIRONMENT/ROLE): the functions' is User.
        return [Request(action, where.arn("airflow", f"role/{name}/{REST_API_AIRFLOW_ROLE}"))]
    context: dict[str, ContextValue] = _tags_context("aws:ResourceTag", world.environment_tags(name))
    if operation == "CreateEnvironment":
        context = {}
    request_tags = params.get("Tags") if operation in {"CreateEnvironment", "TagResource"} else None
    if request_tags:
        context.update(_tags_context("aws:RequestTag", request_tags))
        context["aws:TagKeys"] = sorted(request_tags)
    if operation == "UntagResource":
        context["aws:TagKeys"] = sorted(params["tagKeys"])
    requests = [Request(action, arn, context)]
    role = params.get("ExecutionRoleArn") if operation in {"CreateEnvironment", "UpdateEnvironment"} else None
    if role:
        # The execution role is passed to MWAA (MWAA user guide, "Amazon MWAA execution role").
        requests.append(Request("iam:PassRole", str(role), {"iam:PassedToService": "airflow.amazonaws.com"}))
    if operation == "CreateEnvironment" and params.get("KmsKey"):
        # A customer managed key: MWAA describes it and grants itself its use, as the caller
        # (MWAA user guide, "Using customer managed keys for encryption").
        key = where.key_arn(str(params["KmsKey"]))
        via = {
            "kms:ViaService": f"airflow.{where.region}.amazonaws.com",
            "kms:CallerAccount": where.account_id,
        }
        requests.append(Request("kms:DescribeKey", key, via))
        requests.append(Request("kms:CreateGrant", key, {**via, "kms:GrantIsForAWSResource": True}))
    return requests


# ---------------------------------------------------------------- the others
def _iam(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    action = f"iam:{operation}"
    if "RoleName" in params:
        return [Request(action, world.role_arn(str(params["RoleName"])))]
    if operation == "CreateServiceLinkedRole":
        service = str(params["AWSServiceName"])
        resource = f"arn:{where.partition}:iam::{where.account_id}:role/aws-service-role/{service}/*"
        return [Request(action, resource, {"iam:AWSServiceName": service})]
    raise UnmappedCall(f"iam.{operation}")


def _kms(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    if "KeyId" not in params:
        raise UnmappedCall(f"kms.{operation} without KeyId: IAM authorises the key the ciphertext names")
    context: dict[str, ContextValue] = {"kms:CallerAccount": where.account_id}
    encryption_context = params.get("EncryptionContext") or {}
    for key, value in encryption_context.items():
        context[f"kms:EncryptionContext:{key}"] = str(value)
    if encryption_context:
        context["kms:EncryptionContextKeys"] = sorted(encryption_context)
    if "EncryptionAlgorithm" in params:
        context["kms:EncryptionAlgorithm"] = str(params["EncryptionAlgorithm"])
    if operation == "CreateGrant":
        context["kms:GrantIsForAWSResource"] = False
        context["kms:GrantOperations"] = list(params.get("Operations", []))
    return [Request(f"kms:{operation}", where.key_arn(str(params["KeyId"])), context)]


def _log_group_name(params: Mapping[str, Any]) -> str:
    if "logGroupName" in params:
        return str(params["logGroupName"])
    identifier = str(params["logGroupIdentifier"])
    # An ARN (arn:...:log-group:NAME or NAME:*) or a name.
    return (
        identifier.split(":log-group:", 1)[1].removesuffix(":*")
        if ":log-group:" in identifier
        else identifier
    )


_LOG_STREAM_ACTIONS = frozenset({"GetLogEvents", "PutLogEvents", "CreateLogStream", "DeleteLogStream"})


def _logs(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    action = f"logs:{operation}"
    if operation == "DescribeLogGroups":
        # Authorised against all the account's log groups in the Region (whatever the prefix).
        return [Request(action, where.arn("logs", "log-group:*"))]
    group = _log_group_name(params)
    if operation in _LOG_STREAM_ACTIONS:
        resource = f"log-group:{group}:log-stream:{params['logStreamName']}"
    else:
        # IAM sees a log group as its ARN with a trailing :* (CloudWatch Logs API, LogGroup.arn).
        resource = f"log-group:{group}:*"
    return [Request(action, where.arn("logs", resource))]


def _states(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    for parameter in ("executionArn", "stateMachineArn", "mapRunArn"):
        if parameter in params:
            return [Request(f"states:{operation}", str(params[parameter]))]
    if operation in {"SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"}:
        return [Request(f"states:{operation}", "*")]
    raise UnmappedCall(f"stepfunctions.{operation}")


def _events(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    if operation != "PutEvents":
        raise UnmappedCall(f"events.{operation}")
    requests = []
    for entry in params["Entries"]:
        bus = str(entry.get("EventBusName") or "default")
        resource = bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}")
        context: dict[str, ContextValue] = {}
        if "Source" in entry:
            context["events:source"] = str(entry["Source"])
        if "DetailType" in entry:
            context["events:detail-type"] = str(entry["DetailType"])
        requests.append(Request("events:PutEvents", resource, context))
    return requests


def _sns(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    if "TopicArn" not in params:
        raise UnmappedCall(f"sns.{operation} without TopicArn")
    return [Request(f"sns:{operation}", str(params["TopicArn"]))]


def _lambda(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    if operation != "Invoke":
        raise UnmappedCall(f"lambda.{operation}")
    function = str(params["FunctionName"])
    arn = function if function.startswith("arn:") else where.arn("lambda", f"function:{function}")
    return [Request("lambda:InvokeFunction", arn)]


def _sts(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    if operation == "GetCallerIdentity":
        return []  # needs no permission
    raise UnmappedCall(f"sts.{operation}")


def _secretsmanager(operation: str, params: dict[str, Any], where: Where, world: World) -> list[Request]:
    if operation != "GetSecretValue":
        raise UnmappedCall(f"secretsmanager.{operation}")
    # A secret named by its ARN is that resource; by its name, the ARN without AWS's random suffix
    # (a policy's `secret:NAME-*` or `secret:PREFIX/*` matches either).
    secret = str(params["SecretId"])
    resource = secret if secret.startswith("arn:") else where.arn("secretsmanager", f"secret:{secret}")
    return [Request("secretsmanager:GetSecretValue", resource)]


# botocore's service name (endpoint prefix) -> the service's mapper
MAPPERS: dict[str, Mapper] = {
    "s3": _s3,
    "airflow": _airflow,
    "iam": _iam,
    "kms": _kms,
    "logs": _logs,
    "states": _states,
    "events": _events,
    "sns": _sns,
    "lambda": _lambda,
    "sts": _sts,
    "secretsmanager": _secretsmanager,
}


def iam_requests(
    signing_name: str, operation: str, params: dict[str, Any], where: Where, world: World
) -> list[Request]:
    mapper = MAPPERS.get(signing_name)
    if mapper is None:
        raise UnmappedCall(f"{signing_name}.{operation}")
    return mapper(operation, params, where, world)
