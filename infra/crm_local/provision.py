"""Creates the template's tables, queues, buckets, buses, rules, keys and secrets on an AWS
endpoint (moto, in-process under `mock_aws` or as a server), and resolves the functions'
environments against them. Idempotent: running it again on existing state changes nothing.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from crm_local.template import FunctionSpec, Template
from crm_local.tokens import CUSTOMER_POOL_ID, STAFF_POOL_ID

REGION = "us-east-1"
# The user pools the gateway plays (crm_local.tokens): their ids, for the template's references.
USER_POOL_IDS = {"UserPool": CUSTOMER_POOL_ID, "StaffUserPool": STAFF_POOL_ID}
ACCOUNT = "123456789012"
PSEUDO = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "crm-local",
    "AWS::NoValue": None,
}

# Types the emulator has nothing to create for: code, IAM, alarms and dashboards, Cognito (the
# gateway plays the authorizer), API Gateway and its WAF and access logs (the gateway plays it),
# backups, the alarm topic, policies.
IGNORED_TYPES = {
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::Api",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::WAFv2::WebACL",
    "AWS::WAFv2::WebACLAssociation",
    "AWS::Logs::LogGroup",
    "AWS::Backup::BackupVault",
    "AWS::Backup::BackupPlan",
    "AWS::Backup::BackupSelection",
    "AWS::SNS::Topic",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::Cognito::UserPoolDomain",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::Lambda::Permission",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
}


# Resources only AWS runs: the Glue catalogue and Athena's workgroup (locally the embedded engine
# reads the lake itself). They get their names as references and nothing is created.
NAMED_ONLY = {"AWS::Glue::Database", "AWS::Glue::Table", "AWS::Athena::WorkGroup"}
# What the emulator's stack runs differently from AWS's, whatever the template's defaults say.
LOCAL_PARAMETERS = {"AnalyticsEngine": "duckdb"}


class Unresolved(Exception):
    """A reference to a resource not created yet."""


@dataclass
class Stack:
    template: Template
    name: str = "crm-local"
    refs: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ intrinsic functions
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
                if logical not in self.attrs:
                    raise Unresolved(logical)
                return self.attrs[logical][attr]
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(self.resolve(p)) for p in parts)
        return {k: self.resolve(v) for k, v in value.items()}

    def _ref(self, name: str) -> Any:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in USER_POOL_IDS:
            return USER_POOL_IDS[name]
        if name not in self.refs:
            raise Unresolved(name)
        return self.refs[name]

    def _sub(self, arg: Any) -> str:
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                return str(self.resolve(local[name]))
            if "." in name:
                logical, attr = name.split(".", 1)
                return str(self.resolve({"Fn::GetAtt": [logical, attr]}))
            return str(self._ref(name))

        return re.sub(r"\${([^}!]+)}", repl, text)

    # ------------------------------------------------------------ functions
    def environment(self, spec: FunctionSpec) -> dict[str, str]:
        """The template's variables, plus the ones Lambda itself sets in every function."""
        lambda_env = {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": f"{self.name}-{spec.logical_id}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
        }
        return {**lambda_env, **{k: str(self.resolve(v)) for k, v in spec.environment.items()}}

    def function_arn(self, logical_id: str) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.name}-{logical_id}"


class Provisioner:
    def __init__(
        self,
        template: Template,
        stack_name: str = "crm-local",
        parameters: dict[str, str] | None = None,
    ) -> None:
        self.stack = Stack(template=template, name=stack_name)
        self.stack.parameters = {
            **template.parameter_defaults(),
            **{k: v for k, v in LOCAL_PARAMETERS.items() if k in template.parameter_defaults()},
            **(parameters or {}),
        }
        session = boto3.session.Session(region_name=REGION)
        self._clients: dict[str, Any] = {}
        self._session = session

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service)  # type: ignore[call-overload]
        return self._clients[service]

    def _physical(self, logical_id: str) -> str:
        return f"{self.stack.name}-{logical_id}"

    def provision(self) -> Stack:
        pending = {
            k: v
            for k, v in self.stack.template.resources.items()
            if v.get("Type") not in IGNORED_TYPES
        }
        while pending:
            progressed = False
            for logical_id, resource in list(pending.items()):
                props = resource.get("Properties", {})
                try:
                    if resource["Type"] != "AWS::Serverless::Function":  # runs here, not in moto
                        props = self.stack.resolve(props)
                except Unresolved:
                    continue
                self._create(logical_id, resource["Type"], props)
                del pending[logical_id]
                progressed = True
            if not progressed:
                raise RuntimeError(f"cannot resolve references of {sorted(pending)}")
        return self.stack

    def _create(self, logical_id: str, kind: str, props: dict[str, Any]) -> None:
        creators = {
            "AWS::DynamoDB::Table": self._table,
            "AWS::SQS::Queue": self._queue,
            "AWS::S3::Bucket": self._bucket,
            "AWS::Events::EventBus": self._bus,
            "AWS::Events::Rule": self._rule,
            "AWS::KMS::Key": self._key,
            "AWS::SecretsManager::Secret": self._secret,
            "AWS::Serverless::Function": self._function,
            **dict.fromkeys(NAMED_ONLY, self._named),
        }
        creator = creators.get(kind)
        if creator is None:
            raise NotImplementedError(
                f"the local emulator cannot create {kind} ({logical_id}); teach "
                "infra/crm_local/provision.py or add the type to IGNORED_TYPES"
            )
        creator(logical_id, props)

    # ------------------------------------------------------------ resource types
    def _table(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("TableName") or self._physical(logical_id)
        ddb = self._client("dynamodb")
        params: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            params["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if props.get("LocalSecondaryIndexes"):
            params["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
        if props.get("StreamSpecification"):
            params["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        try:
            desc = ddb.create_table(**params)["TableDescription"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
            desc = ddb.describe_table(TableName=name)["Table"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            try:
                ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ValidationException":
                    raise
        self.stack.refs[logical_id] = name
        self.stack.attrs[logical_id] = {
            "Arn": desc["TableArn"],
            "StreamArn": desc.get("LatestStreamArn", ""),
        }

    def _queue(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("QueueName") or self._physical(logical_id)
        attributes: dict[str, str] = {}
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds",
                    "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize", "KmsMasterKeyId",
                    "KmsDataKeyReusePeriodSeconds"):  # fmt: skip
            if key in props:
                attributes[key] = str(props[key])
        if "SqsManagedSseEnabled" in props:
            attributes["SqsManagedSseEnabled"] = str(bool(props["SqsManagedSseEnabled"])).lower()
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
        if props.get("FifoQueue"):
            attributes["FifoQueue"] = "true"
        sqs = self._client("sqs")
        try:
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            # Kept state from before the template changed a queue: update it, as a stack
            # update would (FifoQueue cannot change; SQS refuses that too).
            if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes.pop("FifoQueue", None)
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.stack.refs[logical_id] = url
        self.stack.attrs[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def _bucket(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("BucketName") or self._physical(logical_id).lower()
        s3 = self._client("s3")
        # Object Lock is set when a bucket is created, never later (the audit archive's).
        locked = bool(props.get("ObjectLockEnabled"))
        try:
            s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=locked)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou",
                                                     "BucketAlreadyExists"):  # fmt: skip
                raise
        lock = props.get("ObjectLockConfiguration")
        # Provisioned again (`crm-local invoke` beside a running emulator, a restart): a bucket
        # that has the configuration keeps it; moto refuses to set it on one holding objects.
        if locked and lock and _retention(self._object_lock(s3, name)) != _retention(lock):
            s3.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock)
        self.stack.refs[logical_id] = name
        self.stack.attrs[logical_id] = {"Arn": f"arn:aws:s3:::{name}", "DomainName": name}

    @staticmethod
    def _object_lock(s3: Any, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = s3.get_object_lock_configuration(Bucket=name)[
                "ObjectLockConfiguration"
            ]
        except ClientError:
            return None
        return found

    def _named(self, logical_id: str, props: dict[str, Any]) -> None:
        inner = props.get("DatabaseInput") or props.get("TableInput") or props
        self.stack.refs[logical_id] = inner.get("Name") or self._physical(logical_id)

    def _bus(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("Name") or self._physical(logical_id)
        events = self._client("events")
        try:
            arn = events.create_event_bus(Name=name)["EventBusArn"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
            arn = events.describe_event_bus(Name=name)["Arn"]
        self.stack.refs[logical_id] = name
        self.stack.attrs[logical_id] = {"Arn": arn, "Name": name}

    def _rule(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("Name") or self._physical(logical_id)
        events = self._client("events")
        params: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
        for key in ("ScheduleExpression", "EventBusName", "Description"):
            if key in props:
                params[key] = props[key]
        if "EventPattern" in props:
            params["EventPattern"] = json.dumps(props["EventPattern"])
        arn = events.put_rule(**params)["RuleArn"]
        # Targets that are functions are wired by the emulator (crm_local.triggers).
        targets = [
            {"Id": t["Id"], "Arn": t["Arn"], **({"Input": t["Input"]} if "Input" in t else {})}
            for t in props.get("Targets", [])
            if ":lambda:" not in str(t["Arn"])
        ]
        if targets:
            bus = {"EventBusName": props["EventBusName"]} if "EventBusName" in props else {}
            events.put_targets(Rule=name, Targets=targets, **bus)
        self.stack.refs[logical_id] = name
        self.stack.attrs[logical_id] = {"Arn": arn}

    def _function(self, logical_id: str, props: dict[str, Any]) -> None:
        """Functions run in the emulator's process; only their names and ARNs are needed."""
        self.stack.refs[logical_id] = f"{self.stack.name}-{logical_id}"
        self.stack.attrs[logical_id] = {"Arn": self.stack.function_arn(logical_id)}

    def _key(self, logical_id: str, props: dict[str, Any]) -> None:
        kms = self._client("kms")
        alias = f"alias/{self._physical(logical_id)}"
        try:
            meta = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NotFoundException":
                raise
            meta = kms.create_key(
                Description=props.get("Description", logical_id),
                KeySpec=props.get("KeySpec", "SYMMETRIC_DEFAULT"),
                KeyUsage=props.get("KeyUsage", "ENCRYPT_DECRYPT"),
            )["KeyMetadata"]
            kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
        self.stack.refs[logical_id] = meta["KeyId"]
        self.stack.attrs[logical_id] = {"Arn": meta["Arn"], "KeyId": meta["KeyId"]}

    def _secret(self, logical_id: str, props: dict[str, Any]) -> None:
        name = props.get("Name") or self._physical(logical_id)
        sm = self._client("secretsmanager")
        try:
            arn = sm.describe_secret(SecretId=name)["ARN"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            value = props.get("SecretString")
            if value is None:
                length = int(props.get("GenerateSecretString", {}).get("PasswordLength", 32))
                value = secrets.token_urlsafe(length)[:length]
            arn = sm.create_secret(Name=name, SecretString=value)["ARN"]
        self.stack.refs[logical_id] = arn
        self.stack.attrs[logical_id] = {"Id": arn}


def provision(
    template: Template, stack_name: str = "crm-local", parameters: dict[str, str] | None = None
) -> Stack:
    """The template's resources on the current endpoint; `parameters` override the template's
    defaults as `sam deploy --parameter-overrides` would (DataRegion=eu)."""
    return Provisioner(template, stack_name, parameters).provision()


def _retention(lock: dict[str, Any] | None) -> tuple[Any, dict[str, Any]] | None:
    """An Object Lock configuration as S3 means it (moto answers `Days: 0` beside `Years`)."""
    if lock is None:
        return None
    retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
    return lock.get("ObjectLockEnabled"), {k: v for k, v in retention.items() if v}
