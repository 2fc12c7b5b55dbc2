"""Calls are attributed to the principal that makes them, wherever the work runs."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import boto3
from moto import mock_aws

from emulation.lambdas import acting_as
from tests.iam import recorder, tier


def test_a_functions_calls_are_its_own_in_its_thread_pools_too_and_nobody_elses_are_recorded() -> None:
    with mock_aws(), recorder.recording() as calls:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="airflow-b")
        with acting_as("DeployDagFunction"):
            s3.head_bucket(Bucket="airflow-b")
            with ThreadPoolExecutor(max_workers=2) as pool:
                pool.submit(s3.list_objects_v2, Bucket="airflow-b", Prefix="dags/").result()
        # a plain thread started by nobody in particular carries no principal
        other = threading.Thread(target=s3.list_objects_v2, kwargs={"Bucket": "airflow-b"})
        other.start()
        other.join()
    recorder.drain()  # not a migration's calls: the tier's own check leaves them

    assert [(c.principal, c.operation) for c in calls] == [
        ("DeployDagFunction", "s3.HeadBucket"),
        ("DeployDagFunction", "s3.ListObjectsV2"),
    ]
    assert calls[1].requests[0].context == {"s3:prefix": "dags/"}


def test_an_execution_roles_calls_carry_the_grants_in_force_at_the_time() -> None:
    role_arn = "arn:aws:iam::123456789012:role/service-role/AmazonMWAA-x"
    document = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
        }
    )
    with mock_aws(), recorder.recording() as calls:
        iam = boto3.client("iam", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="migration-b")
        iam.create_role(RoleName="AmazonMWAA-x", Path="/service-role/", AssumeRolePolicyDocument="{}")
        iam.put_role_policy(
            RoleName="AmazonMWAA-x", PolicyName="mwaa-migrate-a.b-export", PolicyDocument=document
        )
        iam.put_role_policy(RoleName="AmazonMWAA-x", PolicyName="its-own-policy", PolicyDocument=document)
        with acting_as(role_arn):
            s3.list_objects_v2(Bucket="migration-b")
        iam.delete_role_policy(RoleName="AmazonMWAA-x", PolicyName="mwaa-migrate-a.b-export")
        with acting_as(role_arn):
            s3.list_objects_v2(Bucket="migration-b")
    recorder.drain()

    assert [[name for name, _ in c.role_policies or ()] for c in calls] == [["mwaa-migrate-a.b-export"], []]


def test_a_call_the_tier_cannot_map_fails_the_tier_instead_of_passing_unjudged() -> None:
    with mock_aws(), recorder.recording() as calls:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="airflow-b")
        with acting_as("DeployDagFunction"):
            s3.get_bucket_acl(Bucket="airflow-b")
    recorder.drain()

    [found] = tier.denials(calls)
    assert "no IAM mapping for s3.GetBucketAcl" in str(found)


def test_a_dag_call_after_the_clean_up_removed_its_grant_is_not_a_gap_but_one_never_granted_is() -> None:
    role_arn = "arn:aws:iam::123456789012:role/service-role/AmazonMWAA-x"
    listing = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::migration-b"}
    with mock_aws(), recorder.recording() as calls:
        iam = boto3.client("iam", region_name="us-east-1")
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="migration-b")
        iam.create_role(RoleName="AmazonMWAA-x", Path="/service-role/", AssumeRolePolicyDocument="{}")
        with acting_as("GrantPermissionsFunction"):
            iam.put_role_policy(
                RoleName="AmazonMWAA-x",
                PolicyName="mwaa-migrate-a.b-export",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [listing]}),
            )
        with acting_as("FinishMigrationFunction"):
            iam.delete_role_policy(RoleName="AmazonMWAA-x", PolicyName="mwaa-migrate-a.b-export")
        with acting_as(role_arn):
            s3.list_objects_v2(Bucket="migration-b")
            s3.put_object(Bucket="migration-b", Key="k", Body=b"x")
    recorder.drain()

    dag_calls = [call for call in calls if call.principal == role_arn]
    assert [name for name, _ in dag_calls[0].revoked_policies] == ["mwaa-migrate-a.b-export"]
    found = [str(item) for item in tier.denials(dag_calls)]
    assert len(found) == 1
    assert "s3:PutObject" in found[0]
