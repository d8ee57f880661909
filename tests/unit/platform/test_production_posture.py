"""What a careful operator ships, read from template.yaml: staff sign in with MFA in a pool of
their own, the API sits behind a WAF with access logs and per-route throttling, every table is
backed up daily and weekly, and every alarm reaches the alarm topic."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest

from crm.auth import Role
from crm_local.template import ROOT, Template, load_template


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def props(template: Template, logical_id: str) -> dict[str, Any]:
    found: dict[str, Any] = template.resources[logical_id]["Properties"]
    return found


def ref(value: Any) -> str:
    """The logical id a !Ref or !GetAtt names."""
    if "Ref" in value:
        return str(value["Ref"])
    target = value["Fn::GetAtt"]
    return str(target[0] if isinstance(target, list) else target.split(".")[0])


# ------------------------------------------------------------------ identity
def test_staff_sign_in_with_mfa_in_a_pool_no_one_can_join_alone(template: Template) -> None:
    staff = props(template, "StaffUserPool")
    assert staff["MfaConfiguration"] == "ON"
    assert staff["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    group_props = [
        g["Properties"] for g in template.of_type("AWS::Cognito::UserPoolGroup").values()
    ]
    groups = {p["GroupName"]: ref(p["UserPoolId"]) for p in group_props}
    # Every staff role can read unmasked PII, change privacy state or grant those who can.
    assert {role.value for role in Role} == set(groups)
    assert {g for g, pool in groups.items() if pool == "StaffUserPool"} == {
        role.value for role in Role if role is not Role.CUSTOMER
    }
    assert groups["customer"] == "UserPool"
    authorizer = props(template, "CrmApi")["Auth"]["Authorizers"]["CognitoAuthorizer"]
    assert {ref(arn) for arn in authorizer["UserPoolArn"]} == {"UserPool", "StaffUserPool"}
    issuer = template.body["Globals"]["Function"]["Environment"]["Variables"]["STAFF_TOKEN_ISSUER"]
    assert issuer["Fn::Sub"].endswith(
        "/${StaffUserPool}"
    )  # crm.auth honours staff roles only there


def test_a_customer_cannot_write_their_own_customer_id(template: Template) -> None:
    client = props(template, "UserPoolClient")
    assert ref(client["UserPoolId"]) == "UserPool"
    assert "custom:customer_id" in client["ReadAttributes"]
    assert "custom:customer_id" not in client["WriteAttributes"]
    assert not any("customer_id" in a for a in client["WriteAttributes"])


@pytest.mark.parametrize("client_id", ["UserPoolClient", "StaffUserPoolClient"])
def test_token_lifetimes_are_stated(template: Template, client_id: str) -> None:
    client = props(template, client_id)
    for token in ("IdToken", "AccessToken", "RefreshToken"):
        assert client[f"{token}Validity"] > 0
        assert client["TokenValidityUnits"][token] in ("minutes", "hours", "days")
    assert client["IdTokenValidity"] <= 60
    assert client["AccessTokenValidity"] <= 60
    assert client["EnableTokenRevocation"] is True


# ------------------------------------------------------------------ edge
def test_the_api_stage_is_behind_a_waf_with_managed_rules_and_a_rate_limit(
    template: Template,
) -> None:
    acl = props(template, "ApiWebAcl")
    assert acl["Scope"] == "REGIONAL"
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"]
               for r in acl["Rules"] if "ManagedRuleGroupStatement" in r["Statement"]}  # fmt: skip
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    (rate,) = [r for r in acl["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert "Block" in rate["Action"]
    association = props(template, "ApiWebAclAssociation")
    assert ref(association["WebACLArn"]) == "ApiWebAcl"
    assert association["ResourceArn"]["Fn::Sub"].endswith("/restapis/${CrmApi}/stages/v1")


def test_access_logs_name_the_caller_and_never_hold_a_body(template: Template) -> None:
    setting = props(template, "CrmApi")["AccessLogSetting"]
    assert ref(setting["DestinationArn"]) == "ApiAccessLogGroup"
    entry = json.loads(setting["Format"])
    assert entry["caller"] == "$context.authorizer.claims.sub"
    assert entry["ip"] == "$context.identity.sourceIp"
    assert entry["route"] == "$context.resourcePath"  # the template, not the ids in the path
    assert not any(re.search(r"requestBody|body|\$input|querystring", v, re.I)
                   for v in entry.values())  # fmt: skip
    assert props(template, "ApiAccessLogGroup")["RetentionInDays"] > 0


def test_the_heaviest_routes_have_their_own_throttle(template: Template) -> None:
    settings = props(template, "CrmApi")["MethodSettings"]
    declared = {
        (e["Properties"]["Path"], e["Properties"]["Method"].upper())
        for f in template.of_type("AWS::Serverless::Function").values()
        for e in f["Properties"].get("Events", {}).values()
        if e["Type"] == "Api"
    }
    per_route = [s for s in settings if s["ResourcePath"] != "/*"]
    # A stage's method setting names its path as "/" + the path with "/" escaped as "~1".
    throttled = {(s["ResourcePath"][1:].replace("~1", "/"), s["HttpMethod"]) for s in per_route}
    assert throttled <= declared
    assert ("/events", "POST") in throttled
    stage = next(s for s in settings if s["ResourcePath"] == "/*")
    for route in per_route:
        assert route["ThrottlingRateLimit"] < stage["ThrottlingRateLimit"]


# ------------------------------------------------------------------ backups
def test_every_table_has_point_in_time_recovery_and_daily_and_weekly_backups(
    template: Template,
) -> None:
    tables = set(template.of_type("AWS::DynamoDB::Table"))
    for table in tables:
        assert props(template, table)["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }
    selected = props(template, "BackupSelection")["BackupSelection"]["Resources"]
    assert {ref(arn) for arn in selected} == tables
    rules = {
        r["RuleName"]: r for r in props(template, "BackupPlan")["BackupPlan"]["BackupPlanRule"]
    }
    assert rules["daily"]["Lifecycle"]["DeleteAfterDays"] == 35
    assert rules["daily"]["ScheduleExpression"].startswith("cron(0 ")
    assert rules["weekly"]["Lifecycle"]["DeleteAfterDays"] == 365
    assert "SUN" in rules["weekly"]["ScheduleExpression"]


# ------------------------------------------------------------------ alarms
def test_every_alarm_notifies_the_alarm_topic(template: Template) -> None:
    alarms = template.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for logical_id, alarm in alarms.items():
        actions = alarm["Properties"].get("AlarmActions", [])
        assert [ref(a) for a in actions] == ["AlarmTopic"], logical_id


def test_every_dead_letter_queue_has_an_alarm(template: Template) -> None:
    queues = template.of_type("AWS::SQS::Queue")
    dlqs = {ref(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
            for q in queues.values() if "RedrivePolicy" in q.get("Properties", {})}  # fmt: skip
    watched = {
        ref(dim["Value"])
        for alarm in template.of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
        for dim in alarm["Properties"]["Dimensions"]
    }
    assert dlqs
    assert dlqs <= watched


def test_latency_errors_and_fold_lag_alarm(template: Template) -> None:
    latency = props(template, "ApiLatencyAlarm")
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", 2000)
    errors = props(template, "ApiServerErrorAlarm")
    assert any(m.get("Expression", "").find("errors / requests") >= 0 for m in errors["Metrics"])
    lag = props(template, "EventFoldLagAlarm")
    assert lag["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert ref(lag["Dimensions"][0]["Value"]) == "ProfileEventsQueue"


def test_ticket_sla_breach_rate_alarms_on_the_metrics_the_family_emits(template: Template) -> None:
    """A rate: TicketSlaBreached (counted by TicketSlaFunction once per clock) over it plus
    TicketSlaMet (counted by the tickets family when a clock is met in time); both tested in
    tests/integration/tickets/test_sla.py."""
    from crm.tickets.service import SLA_MET_SERVICE

    alarm = props(template, "TicketSlaBreachAlarm")
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert stats["breached"]["MetricName"] == "TicketSlaBreached"
    sla = next(s for s in template.functions() if s.logical_id == "TicketSlaFunction")
    assert stats["breached"]["Dimensions"][0]["Value"] == sla.environment["POWERTOOLS_SERVICE_NAME"]
    assert stats["met"]["MetricName"] == "TicketSlaMet"
    assert stats["met"]["Dimensions"][0]["Value"] == SLA_MET_SERVICE
    (rate,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert "breached" in rate["Expression"]
    assert "met" in rate["Expression"]
    assert alarm["Threshold"] == {"Ref": "SlaBreachRateThreshold"}


def test_failed_segment_runs_alarm_on_the_metric_their_functions_emit(template: Template) -> None:
    """Both functions that can end a run as failed count it (tested in test_segment_runs.py)."""
    failed = props(template, "SegmentRunFailedAlarm")
    watched = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
        for m in failed["Metrics"]
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "SegmentRunsFailed"
    }
    services = {
        spec.environment.get("POWERTOOLS_SERVICE_NAME")
        for spec in template.functions()
        if spec.logical_id in {"SegmentPlannerFunction", "SegmentWorkerFunction"}
    }
    assert watched == services == {"crm-segment-planner", "crm-segment-worker"}


def test_campaign_reach_rate_alarms_on_the_metrics_dispatch_emits(template: Template) -> None:
    """sent / attempted over an hour, only once enough messages were attempted; the metrics
    and their fixed dimension are dispatch's (emitted and tested in test_reach_metrics.py)."""
    from crm.campaigns import reach

    alarm = props(template, "CampaignReachRateAlarm")
    stats = {m["Id"]: m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {k: (s["Metric"]["MetricName"], s["Period"], s["Stat"]) for k, s in stats.items()} == {
        "attempted": (reach.ATTEMPTED, 3600, "Sum"),
        "sent": (reach.SENT, 3600, "Sum"),
    }
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "Crm"
        assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": reach.SERVICE}]
    (shown,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    expression = shown["Expression"]["Fn::Sub"]
    assert "${CampaignReachMinAttempts}" in expression
    assert "100 * FILL(sent, 0) / attempted" in expression
    assert alarm["Threshold"] == {"Ref": "CampaignReachRateThreshold"}
    assert alarm["ComparisonOperator"] == "LessThanThreshold"
    parameters = template.body["Parameters"]
    assert 0 < parameters["CampaignReachRateThreshold"]["Default"] <= 100
    assert parameters["CampaignReachMinAttempts"]["Default"] >= 100


def test_the_dashboard_shows_every_alarm(template: Template) -> None:
    body = props(template, "OperationsDashboard")["DashboardBody"]["Fn::Sub"]
    named = set(re.findall(r"\$\{(\w+)\.Arn\}", body))
    assert named == set(template.of_type("AWS::CloudWatch::Alarm"))
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    assert len(widgets) >= 5


# ------------------------------------------------------------------ data residency
def test_one_stack_per_data_region_and_every_function_knows_its_region(template: Template) -> None:
    region = template.body["Parameters"]["DataRegion"]
    assert set(region["AllowedValues"]) == {"cn", "eu", "us"}
    assert template.body["Globals"]["Function"]["Environment"]["Variables"]["DATA_REGION"] == {
        "Ref": "DataRegion"
    }
    for spec in template.functions():
        assert "DATA_REGION" not in spec.environment or spec.environment["DATA_REGION"] == {
            "Ref": "DataRegion"
        }, spec.logical_id  # no function overrides its stack's region


def test_the_deploy_config_has_a_production_stack_per_region() -> None:
    config = tomllib.loads((ROOT / "infra" / "samconfig.toml").read_text())
    regions = {}
    for name, env in config.items():
        if not isinstance(env, dict):
            continue  # `version`
        overrides = env.get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
        if "Stage=prod" in overrides:
            found = re.search(r"DataRegion=(\w+)", overrides)
            assert found, f"{name}: a production stack must name its data region"
            regions[found.group(1)] = env["global"]["parameters"]["region"]
    assert set(regions) == {"cn", "eu", "us"}
    assert regions["cn"].startswith("cn-")  # mainland customers' data stays in China
    assert not any(r.startswith("cn-") for k, r in regions.items() if k != "cn")


def test_buckets_refuse_anything_but_tls(template: Template) -> None:
    policies = {
        ref(p["Properties"]["Bucket"]): p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.of_type("AWS::S3::BucketPolicy").values()
    }
    for bucket in template.of_type("AWS::S3::Bucket"):
        denies = [
            s for s in policies.get(bucket, [])
            if s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        ]  # fmt: skip
        assert denies, f"{bucket} accepts plain HTTP"


def test_every_alarm_says_in_the_operations_guide_what_to_do(template: Template) -> None:
    """docs/operations.md has a row per alarm: what fired it and what the operator does."""
    guide = (ROOT / "docs" / "operations.md").read_text()
    rows = {
        name: line
        for name in template.of_type("AWS::CloudWatch::Alarm")
        for line in guide.splitlines()
        if line.startswith(f"| `{name}`")
    }
    assert set(rows) == set(template.of_type("AWS::CloudWatch::Alarm"))
    assert all(row.count("|") >= 4 for row in rows.values())  # alarm | when | what to do
