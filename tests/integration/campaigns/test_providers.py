"""The real providers against moto (SES v2, SNS) and fakes of the HTTPS endpoints (WeChat, the
shop's webhook), through dispatch where the path matters."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from crm import aws
from crm.campaigns.models import MessageChannel
from crm.campaigns.providers import (
    EndUserMessagingSms,
    OutgoingMessage,
    ProviderBusy,
    ProviderRefused,
    SesEmail,
    SignedWebhook,
    SnsPush,
    SnsSms,
    TokenBucket,
    WeChatSubscribe,
    configured_providers,
)
from crm.composition import root
from tests.integration.campaigns.conftest import Shop

ACCOUNT, REGION = "123456789012", "us-east-1"


def message(**fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "dispatch_key": "send#s-1#main#c-1#email", "digest": "ab" * 20, "customer_id": "c-1",
        "campaign_id": "camp-1", "channel": "email", "address": "li@shop.example.com",
        "locale": "zh", "subject": "你好", "body": "张*，欢迎！",
    }  # fmt: skip
    values.update(fields)
    return OutgoingMessage.model_validate(values)


def test_email_goes_through_ses_with_the_dispatch_tag(shop: Shop) -> None:
    boto3.client("sesv2").create_email_identity(EmailIdentity="shop.example.com")
    sent = SesEmail("news@shop.example.com", None).send(message())
    assert sent
    assert ses_backends[ACCOUNT][REGION].sent_message_count == 1
    with pytest.raises(ProviderRefused, match="MessageRejected"):
        SesEmail("news@unverified.example.org", None).send(message())


def test_a_live_email_dispatch_opens_the_sealed_address_and_sends_once(shop: Shop) -> None:
    boto3.client("sesv2").create_email_identity(EmailIdentity="shop.example.com")
    live = {"CAMPAIGN_PROVIDERS": "live", "CAMPAIGN_EMAIL_FROM": "news@shop.example.com"}
    dispatcher = root().campaign_dispatch
    dispatcher._providers = configured_providers(root().dispatch_store, shop.clock, live)
    cid = shop.customer("marketing_email", "marketing_sms")
    first = dispatcher.dispatch(shop.request(cid, channel="email"))
    assert first.status == "sent"
    assert dispatcher.dispatch(shop.request(cid, channel="email")) == first
    backend = ses_backends[ACCOUNT][REGION]
    assert backend.sent_message_count == 1
    [sent] = backend.sent_messages
    profile = shop.suite.call("GET", f"/customers/{cid}").body
    assert sent.destinations["ToAddresses"] == [profile["attributes"]["email"]]
    # SMS is not configured live: it falls back to the recording provider.
    assert dispatcher.dispatch(shop.request(cid, step="s-2", channel="sms")).status == "sent"
    assert [e["channel"] for e in shop.outbox(cid)] == ["sms"]


def test_sms_and_push_go_through_sns(shop: Shop) -> None:
    backend = sns_backends[ACCOUNT][REGION]
    SnsSms("SHOP").send(message(channel="sms", address="+8613800000001"))
    assert list(backend.sms_messages.values()) == [("+8613800000001", "张*，欢迎！")]
    sns = boto3.client("sns")
    app = sns.create_platform_application(Name="app", Platform="GCM", Attributes={})
    arn = sns.create_platform_endpoint(
        PlatformApplicationArn=app["PlatformApplicationArn"], Token="device-1"
    )["EndpointArn"]
    table = shop.suite.stack.refs["CampaignsTable"]
    boto3.client("dynamodb").put_item(TableName=table, Item={
        "PK": {"S": "PUSH#u-1"}, "SK": {"S": "ENDPOINT"}, "endpoint_arn": {"S": arn},
    })  # fmt: skip
    push = SnsPush(root().dispatch_store)
    push.send(message(channel="push", address="u-1"))
    [published] = backend.platform_endpoints[arn].messages.values()
    assert json.loads(json.loads(published)["GCM"])["notification"]["body"] == "张*，欢迎！"
    with pytest.raises(ProviderRefused, match="no device"):
        push.send(message(channel="push", address="u-unknown"))
    # A live stage names its application: only its endpoints are published to (the IAM policy
    # grants no other), an endpoint of another one is refused before any call.
    assert SnsPush(root().dispatch_store, "GCM/app").send(message(channel="push", address="u-1"))
    with pytest.raises(ProviderRefused, match="another application"):
        SnsPush(root().dispatch_store, "GCM/other-app").send(message(channel="push", address="u-1"))
    assert len(backend.platform_endpoints[arn].messages) == 2


def test_end_user_messaging_sms_sends_from_the_origination_identity(shop: Shop) -> None:
    origin = f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:phone-number/phone-1"
    with Stubber(aws.sms_voice()) as stub:  # moto has no End User Messaging SMS
        stub.add_response("send_text_message", {"MessageId": "sms-1"}, {
            "DestinationPhoneNumber": "+8613800000001", "OriginationIdentity": origin,
            "MessageBody": "张*，欢迎！", "MessageType": "PROMOTIONAL",
            "Context": {"dispatch": "ab" * 20, "campaign": "camp-1"},
        })  # fmt: skip
        stub.add_client_error("send_text_message", "ThrottlingException")
        stub.add_client_error("send_text_message", "ValidationException")
        sms = EndUserMessagingSms(origin)
        sent = message(channel="sms", address="+8613800000001")
        assert sms.send(sent) == "sms-1"
        with pytest.raises(ProviderBusy, match="ThrottlingException"):
            sms.send(sent)
        with pytest.raises(ProviderRefused, match="ValidationException"):
            sms.send(sent)
    live = configured_providers(root().dispatch_store, shop.clock, {
        "CAMPAIGN_PROVIDERS": "live", "CAMPAIGN_SMS_ORIGINATION": origin})  # fmt: skip
    assert isinstance(live.for_channel(MessageChannel.SMS), EndUserMessagingSms)


class FakeHttp:
    def __init__(self, *answers: tuple[int, bytes]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        self.calls.append((url, body, dict(headers)))
        return self.answers.pop(0)


class Token:
    def __init__(self) -> None:
        self.reads, self.forgotten = 0, 0

    def __call__(self) -> str:
        self.reads += 1
        return "tok-1"

    def forget(self) -> None:
        self.forgotten += 1


def test_wechat_subscription_messages_and_their_error_codes() -> None:
    http = FakeHttp((200, b'{"errcode":0,"msgid":42}'), (200, b'{"errcode":43101}'),
                    (200, b'{"errcode":42001}'), (502, b""))  # fmt: skip
    token = Token()
    wechat = WeChatSubscribe(token, "tmpl-1", post=http)
    out = message(channel="wechat", address="openid-1")
    assert wechat.send(out) == "42"
    url, body, _ = http.calls[0]
    assert url.endswith("access_token=tok-1")
    assert json.loads(body) == {"touser": "openid-1", "template_id": "tmpl-1",
                                "data": {"thing1": {"value": "张*，欢迎！"}}}  # fmt: skip
    with pytest.raises(ProviderRefused, match="43101"):  # the customer did not subscribe
        wechat.send(out)
    with pytest.raises(ProviderBusy, match="42001"):  # the token expired: read it again
        wechat.send(out)
    assert token.forgotten == 1
    with pytest.raises(ProviderBusy, match="502"):
        wechat.send(out)


def test_the_webhook_is_signed_and_says_its_idempotency_key(shop: Shop) -> None:
    http = FakeHttp((204, b""), (410, b""), (503, b""))
    hook = SignedWebhook("https://shop.example.com/crm", lambda: "s3cret", shop.clock, post=http)
    assert hook.send(message(channel="webhook")) == "wh-" + "ab" * 12
    _, body, headers = http.calls[0]
    stamp = headers["X-Crm-Timestamp"]
    assert stamp == str(int(shop.clock.now.timestamp()))
    expected = hmac.new(b"s3cret", stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Crm-Signature"] == f"v1={expected}"
    assert headers["Idempotency-Key"] == "ab" * 20
    assert json.loads(body)["body"] == "张*，欢迎！"
    with pytest.raises(ProviderRefused, match="410"):
        hook.send(message(channel="webhook"))
    with pytest.raises(ProviderBusy, match="503"):
        hook.send(message(channel="webhook"))


def test_a_busy_provider_leaves_the_message_to_the_next_run(shop: Shop) -> None:
    class Busy:
        idempotent = False
        needs_address = False

        def __init__(self) -> None:
            self.calls = 0

        def send(self, message: OutgoingMessage) -> str:
            self.calls += 1
            if self.calls == 1:
                raise ProviderBusy("sms: Throttled")
            return "p-2"

    from crm.campaigns.providers import Providers
    from crm.errors import Unavailable

    dispatcher = root().campaign_dispatch
    provider = Busy()
    dispatcher._providers = Providers({MessageChannel.SMS: provider})
    cid = shop.customer("marketing_sms")
    with pytest.raises(Unavailable, match="busy"):
        dispatcher.dispatch(shop.request(cid))
    # Provably not sent: the caller's retry sends it, and the slot was taken once.
    out = dispatcher.dispatch(shop.request(cid))
    assert (out.status, out.message_id, provider.calls) == ("sent", "p-2", 2)
    assert sum(shop.caps(cid)["weeks"].values()) == 1


def test_the_token_bucket_holds_a_worker_to_the_rate() -> None:
    now = [0.0]
    waited: list[float] = []

    def sleep(s: float) -> None:
        waited.append(s)
        now[0] += s

    bucket = TokenBucket(monotonic=lambda: now[0], sleep=sleep)
    for _ in range(30):
        bucket.take("sms", 10)
    # A full second's burst (10), then one every 0.1 s: 20 more take 2 s.
    assert waited[:1] == [pytest.approx(0.1)]
    assert now[0] == pytest.approx(2.0)
    assert bucket.take("email", 10) == 0.0  # each channel its own bucket
