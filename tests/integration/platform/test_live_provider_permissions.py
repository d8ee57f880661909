"""A live send would work in AWS: every AWS call a live provider makes is granted, by
template.yaml's CampaignLiveProvidersPolicy, to every function that dispatches, on the resources
the stage's parameters name and nothing broader.

The calls are not listed by hand: a stage's parameters switch every channel live, the template's
own environment (resolved with those parameters) configures the providers, each provider sends a
message against moto (End User Messaging SMS, which moto lacks, against a botocore stub), and
the calls it made are recorded with their parameters. Each is then evaluated against the policy
document as CloudFormation would resolve it for that stage: action, resource and condition keys.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from crm import aws
from crm.campaigns.dispatch_store import DispatchStore
from crm.campaigns.models import MessageChannel
from crm.campaigns.providers import OutgoingMessage, configured_providers
from crm_local.harness import Suite
from crm_local.template import Template, load_template
from tests.fakes import TestClock

ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"
POLICY = "CampaignLiveProvidersPolicy"
# The functions that call dispatch in-process (crm.composition's campaign_dispatch): the ones
# that may queue a deferred message's wake-up on CampaignDispatchQueue, but the timer sweep,
# which only forwards wake-ups.
DISPATCHERS = {
    "CampaignDispatchFunction",
    "JourneyStepsFunction",
    "JourneyTriggersFunction",
    "JourneyDailyShardFunction",
    "SendWorkerFunction",
}
NOT_DISPATCHING_QUEUERS = {"TimerShardFunction"}
# IAM's service prefix of each boto3 service a provider calls.
IAM_PREFIX = {
    "sesv2": "ses",
    "sns": "sns",
    "pinpoint-sms-voice-v2": "sms-voice",
    "secretsmanager": "secretsmanager",
}
WEBHOOK_URL = "https://hooks.shop.example.com/crm"
NOW = datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC)
NO_VALUE = object()


# ------------------------------------------------------------------ CloudFormation, for one stage
@dataclass(frozen=True)
class Stage:
    """The template as CloudFormation resolves it for a set of parameters: conditions,
    Fn::If (AWS::NoValue dropped), Ref and Fn::Sub of parameters and pseudo parameters."""

    template: Template
    parameters: Mapping[str, str]

    def ref(self, name: str) -> Any:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION,
                  "AWS::NoValue": NO_VALUE}  # fmt: skip
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.template.body["Parameters"][name].get("Default", "")

    def condition(self, name: str) -> bool:
        return self._truth(self.template.body["Conditions"][name])

    def _truth(self, expr: Any) -> bool:
        ((fn, arg),) = expr.items()
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return bool(left == right)
        if fn == "Fn::Not":
            return not self._truth(arg[0])
        if fn == "Fn::And":
            return all(self._truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(self._truth(a) for a in arg)
        raise AssertionError(f"condition function {fn} not understood")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if fn == "Fn::Sub":
                text = arg
                for name in self.template.body["Parameters"]:
                    text = text.replace("${" + name + "}", str(self.ref(name)))
                for name in ("AWS::Region", "AWS::AccountId", "AWS::Partition"):
                    text = text.replace("${" + name + "}", str(self.ref(name)))
                assert "${" not in text, f"unresolved in {text}"
                return text
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def provider_environment(self) -> dict[str, str]:
        variables = self.template.body["Globals"]["Function"]["Environment"]["Variables"]
        return {k: str(self.resolve(v)) for k, v in variables.items() if k.startswith("CAMPAIGN_")}

    def live_statements(self) -> list[dict[str, Any]]:
        resource = self.template.resources[POLICY]
        if not self.condition(resource["Condition"]):
            return []
        document = self.resolve(resource["Properties"]["PolicyDocument"])
        statements: list[dict[str, Any]] = document["Statement"]
        return statements

    def policies_of(self, function: str) -> list[Any]:
        """A function's policies, its conditional ones (Fn::If) decided for the stage."""
        policies = []
        for policy in self.template.resources[function]["Properties"].get("Policies", []):
            if isinstance(policy, dict) and "Fn::If" in policy:
                name, yes, no = policy["Fn::If"]
                policy = yes if self.condition(name) else no
                if policy == {"Ref": "AWS::NoValue"}:
                    continue
            policies.append(policy)
        return policies


# ------------------------------------------------------------------ IAM, for the calls made
@dataclass(frozen=True)
class Call:
    action: str
    resources: tuple[str, ...]
    context: Mapping[str, str]


def iam_call(service: str, operation: str, params: Mapping[str, Any]) -> Call:
    """The IAM action, resources and condition keys AWS evaluates for one API call."""
    action = f"{IAM_PREFIX[service]}:{operation}"
    arn = f"arn:{PARTITION}:{{}}:{REGION}:{ACCOUNT}:{{}}"
    if action == "ses:SendEmail":
        sender = str(params["FromEmailAddress"])
        resources = [arn.format("ses", f"identity/{sender.split('@', 1)[1]}")]
        if params.get("ConfigurationSetName"):
            resources.append(
                arn.format("ses", f"configuration-set/{params['ConfigurationSetName']}")
            )
        return Call(action, tuple(resources), {"ses:FromAddress": sender, "ses:ApiVersion": "2"})
    if action == "sms-voice:SendTextMessage":
        return Call(action, (str(params["OriginationIdentity"]),), {})
    if action == "sns:Publish":
        return Call(action, (str(params["TargetArn"]),), {})
    if action == "secretsmanager:GetSecretValue":
        return Call(action, (str(params["SecretId"]),), {})
    raise AssertionError(f"a live provider calls {action}: add it to the template and here")


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(statements: list[dict[str, Any]], call: Call) -> bool:
    """Whether the statements allow the call on every resource it names (Allow only: the
    policy has no Deny), with StringEquals conditions on the call's context keys."""

    def grants(statement: dict[str, Any], resource: str) -> bool:
        if statement["Effect"] != "Allow" or call.action not in _listed(statement["Action"]):
            return False
        if not any(fnmatch.fnmatchcase(resource, p) for p in _listed(statement["Resource"])):
            return False
        wanted = statement.get("Condition", {})
        assert set(wanted) <= {"StringEquals"}, wanted
        return all(call.context.get(k) == v for k, v in wanted.get("StringEquals", {}).items())

    return all(any(grants(s, r) for s in statements) for r in call.resources)


# ------------------------------------------------------------------ the stage and its sends
@pytest.fixture
def live_stage(suite: Suite) -> Stage:
    """A stage with every channel live, its resources in moto."""
    secrets = boto3.client("secretsmanager")
    wechat = secrets.create_secret(Name="crm/wechat-token", SecretString="token-1")["ARN"]
    webhook = secrets.create_secret(Name="crm/webhook-key", SecretString="key-1")["ARN"]
    sesv2 = boto3.client("sesv2")
    sesv2.create_email_identity(EmailIdentity="shop.example.com")
    boto3.client("ses").create_configuration_set(ConfigurationSet={"Name": "crm-campaigns"})
    parameters = {
        "CampaignProviders": "live",
        "CampaignEmailIdentity": "shop.example.com",
        "CampaignEmailFrom": "news@shop.example.com",
        "CampaignSesConfigurationSet": "crm-campaigns",
        "CampaignSmsOriginationArn": f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:phone-number/phone-1",
        "CampaignPushApplication": "GCM/shop-app",
        "CampaignWeChatTokenSecretArn": wechat,
        "CampaignWeChatTemplateId": "tpl-1",
        "CampaignWebhookUrl": WEBHOOK_URL,
        "CampaignWebhookSecretArn": webhook,
    }
    return Stage(load_template(), parameters)


def _message(channel: MessageChannel, address: str | None) -> OutgoingMessage:
    return OutgoingMessage(
        dispatch_key=f"send#s-1#main#c-1#{channel}", digest="ab" * 20, customer_id="c-1",
        campaign_id="camp-1", channel=channel, address=address, locale="zh", subject="你好",
        body="张*，欢迎！",
    )  # fmt: skip


def _https_answers(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    if url.startswith("https://api.weixin.qq.com/"):
        return 200, json.dumps({"errcode": 0, "msgid": 42}).encode()
    assert url == WEBHOOK_URL
    return 204, b""


def live_calls(stage: Stage) -> list[Call]:
    """Every channel sends one message through the providers the stage's environment
    configures; the AWS calls they make, as IAM sees them."""
    sns = boto3.client("sns")
    app = sns.create_platform_application(Name="shop-app", Platform="GCM",
                                          Attributes={"PlatformCredential": "k"})  # fmt: skip
    endpoint = sns.create_platform_endpoint(PlatformApplicationArn=app["PlatformApplicationArn"],
                                            Token="device-1")["EndpointArn"]  # fmt: skip
    store = DispatchStore(os.environ["CAMPAIGNS_TABLE"])
    aws.dynamodb().put_item(
        TableName=os.environ["CAMPAIGNS_TABLE"],
        Item={"PK": {"S": "PUSH#app-user-1"}, "SK": {"S": "ENDPOINT"},
              "endpoint_arn": {"S": endpoint}},
    )  # fmt: skip
    made: list[tuple[str, str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        made.append((model.service_model.service_name, model.name, dict(params)))

    clients = [aws.client_for(s) for s in aws.SERVICES]
    for client in clients:
        client.meta.events.register("before-parameter-build", record, unique_id="live-calls")
    sms = Stubber(aws.sms_voice())  # moto has no End User Messaging SMS
    sms.add_response("send_text_message", {"MessageId": "sms-1"})
    live = configured_providers(store, TestClock(NOW), stage.provider_environment(), _https_answers)
    addresses = {
        MessageChannel.EMAIL: "li@example.org",
        MessageChannel.SMS: "+8613800000001",
        MessageChannel.PUSH: "app-user-1",
        MessageChannel.WECHAT: "openid-1",
        MessageChannel.WEBHOOK: None,
    }
    try:
        with sms:
            for channel, address in addresses.items():
                provider = live.for_channel(channel)
                assert type(provider).__name__ != "RecordingProvider", channel
                assert provider.send(_message(channel, address))
            sms.assert_no_pending_responses()
    finally:
        for client in clients:
            client.meta.events.unregister("before-parameter-build", unique_id="live-calls")
    # The push endpoint's lookup is dispatch's own read of CampaignsTable, which every
    # dispatching function has; the rest are the providers'.
    return [iam_call(s, op, p) for s, op, p in made if s != "dynamodb"]


# ------------------------------------------------------------------ the tests
def test_every_live_call_is_granted_to_every_dispatching_function_and_nothing_broader(
    live_stage: Stage,
) -> None:
    calls = live_calls(live_stage)
    # Each channel made its call: email, SMS, push, and the two secrets.
    assert sorted(c.action for c in calls) == sorted([
        "ses:SendEmail", "sms-voice:SendTextMessage", "sns:Publish",
        "secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue",
    ])  # fmt: skip
    statements = live_stage.live_statements()
    for call in calls:
        assert allows(statements, call), call
    # Nothing broader: no action the providers do not call, no wildcard beyond the push
    # application's own endpoints, one statement per channel.
    assert {a for s in statements for a in _listed(s["Action"])} == {c.action for c in calls}
    for statement in statements:
        for pattern in _listed(statement["Resource"]):
            assert "*" not in pattern or pattern.endswith(":endpoint/GCM/shop-app/*"), pattern
    # Every dispatching function holds the policy; no other function does.
    for logical_id in live_stage.template.of_type("AWS::Serverless::Function"):
        holds = {"Ref": POLICY} in live_stage.policies_of(logical_id)
        assert holds == (logical_id in DISPATCHERS), logical_id


def test_the_grants_hold_to_the_stage_s_resources(live_stage: Stage) -> None:
    statements = live_stage.live_statements()
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    elsewhere = [
        # Another From address under the same identity, another identity.
        Call("ses:SendEmail", (arn.format("ses", "identity/shop.example.com"),),
             {"ses:FromAddress": "ceo@shop.example.com", "ses:ApiVersion": "2"}),
        Call("ses:SendEmail", (arn.format("ses", "identity/other.example.com"),),
             {"ses:FromAddress": "news@shop.example.com", "ses:ApiVersion": "2"}),
        Call("sms-voice:SendTextMessage", (arn.format("sms-voice", "phone-number/phone-2"),), {}),
        Call("sns:Publish", (arn.format("sns", "endpoint/APNS/other-app/e-1"),), {}),
        Call("sns:Publish", (arn.format("sns", "some-topic"),), {}),
        Call("secretsmanager:GetSecretValue",
             (arn.format("secretsmanager", "secret:crm/blind-index-AbCdEf"),), {}),
    ]  # fmt: skip
    for call in elsewhere:
        assert not allows(statements, call), call


def test_a_recording_stage_grants_no_live_call_and_sends_nothing_live(live_stage: Stage) -> None:
    recording = Stage(live_stage.template, {})
    assert recording.live_statements() == []
    for logical_id in DISPATCHERS:
        assert {"Ref": POLICY} not in recording.policies_of(logical_id)
    store = DispatchStore(os.environ["CAMPAIGNS_TABLE"])
    live = configured_providers(store, TestClock(NOW), recording.provider_environment())
    for channel in MessageChannel:
        assert type(live.for_channel(channel)).__name__ == "RecordingProvider"
    # One channel live grants that channel alone.
    email_only = Stage(live_stage.template, {
        k: v for k, v in live_stage.parameters.items()
        if k in {"CampaignProviders", "CampaignEmailIdentity", "CampaignEmailFrom"}
    })  # fmt: skip
    statements = email_only.live_statements()
    assert [s["Sid"] for s in statements] == ["CampaignEmail"]
    assert statements[0]["Resource"] == [
        f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/shop.example.com"
    ]


def test_the_dispatchers_are_the_functions_that_may_queue_a_deferred_message() -> None:
    template = load_template()
    queuers = set()
    for logical_id, resource in template.of_type("AWS::Serverless::Function").items():
        for policy in resource["Properties"].get("Policies", []):
            send = policy.get("SQSSendMessagePolicy") if isinstance(policy, dict) else None
            if send and send["QueueName"] == {"Fn::GetAtt": ["CampaignDispatchQueue", "QueueName"]}:
                queuers.add(logical_id)
    assert queuers - NOT_DISPATCHING_QUEUERS == DISPATCHERS
