"""Where messages go: one interface, a provider per channel (docs/campaigns.md, "providers").

A provider either takes the message (its id back), refuses it for good (`ProviderRefused`:
bad address, unknown device; the message is `failed`), or provably does not take it now
(`ProviderBusy`: throttled, unavailable; the message may be sent by a later run). Anything else
(a timeout after the request left) leaves it unknown whether it was sent: dispatch then never
calls a provider again for that message unless the provider is `idempotent` (a second call
with the same key sends nothing).

Message bodies carry PII (a masked name, a coupon code): nothing here logs them.
"""

import hashlib
import hmac
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Protocol

from crm import aws
from crm.campaigns.dispatch_store import DispatchStore
from crm.campaigns.models import MessageChannel
from crm.clock import Clock, iso
from crm.models import Output

Sleep = Callable[[float], Any]


class OutgoingMessage(Output):
    dispatch_key: str
    digest: str = ""
    customer_id: str
    campaign_id: str
    channel: MessageChannel
    address: str | None = None  # the real address; None for providers that need none
    shown_address: str | None = None  # masked, for the outbox
    locale: str
    subject: str | None
    body: str


class ProviderRefused(Exception):
    """The provider will never take this message (its text names why, never the address)."""


class ProviderBusy(Exception):
    """The provider did not take the message now (throttled, unavailable): not sent."""


class Provider(Protocol):
    @property
    def idempotent(self) -> bool:
        """A second send with the same dispatch key sends nothing (and answers the first id)."""
        ...

    @property
    def needs_address(self) -> bool:
        """It needs the customer's real address (the service opens the sealed field)."""
        ...

    def send(self, message: OutgoingMessage) -> str: ...


# How long the recording provider keeps what it "sent": local/dev only, and the bodies hold
# masked names and coupon codes.
OUTBOX_RETENTION = timedelta(days=7)


class RecordingProvider:
    """Sends nothing: writes each message to the CampaignsTable (`OUTBOX#<customer_id>`), so
    `GET /campaigns/outbox` and `crm-local outbox` show what would have been sent. Used locally
    and wherever no real provider is configured. Idempotent: the entry is put only if absent."""

    idempotent = True
    needs_address = False
    rate_limited = False  # it sends nothing: the channel's rate is no limit of its own

    def __init__(self, store: DispatchStore, clock: Clock) -> None:
        self._store, self._clock = store, clock

    def send(self, message: OutgoingMessage) -> str:
        now = self._clock()
        entry = {
            "message_id": f"rec-{message.digest[:24]}",
            "dispatch_key": message.dispatch_key,
            "customer_id": message.customer_id,
            "campaign_id": message.campaign_id,
            "channel": str(message.channel),
            "to": message.shown_address,
            "locale": message.locale,
            "subject": message.subject,
            "body": message.body,
            "sent_at": iso(now),
        }
        stored = self._store.outbox_put(
            message.customer_id, message.digest, entry, now + OUTBOX_RETENTION
        )
        return str(stored["message_id"])


class Providers:
    """The provider of each channel (the recording one where none is configured)."""

    def __init__(
        self, by_channel: dict[MessageChannel, Provider], fallback: Provider | None = None
    ) -> None:
        self._by_channel, self._fallback = by_channel, fallback

    def for_channel(self, channel: MessageChannel) -> Provider:
        provider = self._by_channel.get(channel, self._fallback)
        if provider is None:
            raise ProviderRefused(f"no provider for channel {channel}")
        return provider


def recording_only(store: DispatchStore, clock: Clock) -> Providers:
    return Providers({}, RecordingProvider(store, clock))


# ------------------------------------------------------------------ rate limits


class TokenBucket:
    """At most `rate` sends a second from this worker, bursts of up to one second's worth.
    Each worker (Lambda container) has its own: the channel's total is the rate times the
    workers sending on it (docs/campaigns.md, "rate limits")."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Sleep = time.sleep) -> None:  # fmt: skip
        self._monotonic, self._sleep = monotonic, sleep
        self._tokens: dict[str, float] = {}
        self._at: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, name: str, rate: float) -> float:
        """Wait for a token of `name`; returns the seconds waited."""
        with self._lock:
            now = self._monotonic()
            tokens = min(
                rate, self._tokens.get(name, rate) + (now - self._at.get(name, now)) * rate
            )
            self._at[name] = now
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            self._tokens[name] = tokens - 1  # may go below zero: the wait pays it back
        if wait > 0:
            self._sleep(wait)
        return wait


# ------------------------------------------------------------------ real providers

# Error codes that say the provider did not take the message and might later.
_BUSY = frozenset({
    "TooManyRequestsException", "LimitExceededException", "SendingPausedException",
    "Throttling", "ThrottlingException", "Throttled", "ServiceUnavailable",
    "InternalFailure", "InternalError", "KMSThrottlingException",
})  # fmt: skip


def _classify(exc: Exception, channel: str) -> Exception:
    """A refusal AWS answered is a definite `ProviderRefused` or `ProviderBusy`; anything else
    (a timeout after the request left) is re-raised as it is: it may have been sent."""
    code = aws.failed_call_code(exc)
    if code is None:
        return exc
    if code in _BUSY:
        return ProviderBusy(f"{channel}: {code}")
    return ProviderRefused(f"{channel}: {code}")


class SesEmail:
    """Amazon SES v2 `SendEmail`. SES has no idempotency token: the dispatch key's hash goes
    along as the `dispatch` message tag (in SES's event publishing, for tracing), but a retry
    after an unanswered call could send again, so dispatch never retries an ambiguous call."""

    idempotent = False
    needs_address = True

    def __init__(self, sender: str, configuration_set: str | None,
                 unsubscribe_url: str | None = None) -> None:  # fmt: skip
        self._sender, self._configuration_set = sender, configuration_set
        self._unsubscribe = unsubscribe_url

    def send(self, message: OutgoingMessage) -> str:
        params: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [message.address]},
            "Content": {"Simple": {
                "Subject": {"Data": message.subject or "", "Charset": "UTF-8"},
                "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
            }},
            "EmailTags": [{"Name": "dispatch", "Value": message.digest},
                          {"Name": "campaign", "Value": _tag(message.campaign_id)}],
        }  # fmt: skip
        if self._configuration_set:
            params["ConfigurationSetName"] = self._configuration_set
        try:
            out = aws.sesv2().send_email(**params)
        except Exception as exc:
            raise _classify(exc, "email") from None
        return str(out["MessageId"])


def _tag(value: str) -> str:
    """SES tag values: letters, digits, _ and -, up to 256."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in value)[:256] or "_"


class SnsSms:
    """Amazon SNS `Publish` to a phone number (the SMS of AWS End User Messaging underneath).
    No idempotency token on direct publishes (deduplication ids are for FIFO topics only)."""

    idempotent = False
    needs_address = True

    def __init__(self, sender_id: str | None, transactional: bool = False) -> None:
        self._sender_id, self._transactional = sender_id, transactional

    def send(self, message: OutgoingMessage) -> str:
        attributes: dict[str, Any] = {"AWS.SNS.SMS.SMSType": {
            "DataType": "String",
            "StringValue": "Transactional" if self._transactional else "Promotional",
        }}  # fmt: skip
        if self._sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String",
                                                  "StringValue": self._sender_id}  # fmt: skip
        try:
            out = aws.sns().publish(PhoneNumber=message.address, Message=message.body,
                                    MessageAttributes=attributes)  # fmt: skip
        except Exception as exc:
            raise _classify(exc, "sms") from None
        return str(out["MessageId"])


class EndUserMessagingSms:
    """AWS End User Messaging SMS `SendTextMessage` from one origination identity (a phone
    number, sender id or pool ARN): what a live stage uses, because its IAM permission can be
    scoped to that identity, where SNS's publish to a phone number can only be granted on `*`.
    No idempotency token: the dispatch key's hash goes along as the message's `Context`."""

    idempotent = False
    needs_address = True

    def __init__(self, origination_identity: str, transactional: bool = False) -> None:
        self._origin, self._transactional = origination_identity, transactional

    def send(self, message: OutgoingMessage) -> str:
        try:
            out = aws.sms_voice().send_text_message(
                DestinationPhoneNumber=message.address, OriginationIdentity=self._origin,
                MessageBody=message.body,
                MessageType="TRANSACTIONAL" if self._transactional else "PROMOTIONAL",
                Context={"dispatch": message.digest, "campaign": _tag(message.campaign_id)},
            )  # fmt: skip
        except Exception as exc:
            raise _classify(exc, "sms") from None
        return str(out["MessageId"])


class PushEndpoints(Protocol):
    def endpoint_arn(self, app_user_id: str) -> str | None: ...


class SnsPush:
    """Amazon SNS mobile push: `Publish` to the customer's platform endpoint (APNs, FCM).
    The app's backend registers endpoints; `endpoints` finds the one of an app user id."""

    idempotent = False
    needs_address = True

    def __init__(self, endpoints: PushEndpoints, application: str | None = None) -> None:
        # `application` (`GCM/shop-app`): only its endpoints are published to, the ones the
        # dispatching functions' IAM policy grants (an endpoint of another app is refused).
        self._endpoints = endpoints
        self._within = f":endpoint/{application}/" if application else None

    def send(self, message: OutgoingMessage) -> str:
        arn = self._endpoints.endpoint_arn(message.address or "")
        if arn is None:
            raise ProviderRefused("push: no device registered for the customer")
        if self._within is not None and self._within not in arn:
            raise ProviderRefused("push: the device is registered with another application")
        payload = {
            "default": message.body,
            "APNS": json.dumps({"aps": {"alert": {"title": message.subject or "",
                                                  "body": message.body}}}),
            "GCM": json.dumps({"notification": {"title": message.subject or "",
                                                "body": message.body}}),
        }  # fmt: skip
        try:
            out = aws.sns().publish(TargetArn=arn, Message=json.dumps(payload),
                                    MessageStructure="json")  # fmt: skip
        except Exception as exc:
            raise _classify(exc, "push") from None
        return str(out["MessageId"])


# An HTTPS POST: (url, body, headers) -> (status, response body). urllib in production, a
# fake in tests.
HttpPost = Callable[[str, bytes, Mapping[str, str]], tuple[int, bytes]]
HTTP_TIMEOUT_S = 5.0


def https_post(url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
    if not url.startswith("https://"):
        raise ProviderRefused("only https endpoints are called")
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310 - https only, checked above
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            return int(response.status), response.read(65536)
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(65536)


class SecretText:
    """A Secrets Manager secret's text, read at most every five minutes per worker."""

    def __init__(self, secret_arn: str, ttl_s: float = 300.0) -> None:
        self._arn, self._ttl = secret_arn, ttl_s
        self._value: tuple[float, str] | None = None

    def __call__(self) -> str:
        now = time.monotonic()
        if self._value is None or now - self._value[0] >= self._ttl:
            out = aws.secretsmanager().get_secret_value(SecretId=self._arn)
            self._value = (now, str(out["SecretString"]))
        return self._value[1]

    def forget(self) -> None:
        self._value = None


# WeChat's error codes (errcode) that mean: not sent now, try again later.
_WECHAT_BUSY = {-1, 40001, 42001, 45009, 45011}  # busy, token invalid/expired, rate limits


class WeChatSubscribe:
    """A WeChat (mini program / official account) subscription message: POST
    `/cgi-bin/message/subscribe/send` with the access token, which a rotation keeps in Secrets
    Manager. The customer must have accepted the template (a one-time subscription): WeChat
    answers 43101 otherwise, which is a refusal. No idempotency key: never retried when the
    answer is lost."""

    idempotent = False
    needs_address = True
    API = "https://api.weixin.qq.com/cgi-bin/message/subscribe/send"

    def __init__(self, token: Callable[[], str], template_id: str, field: str = "thing1",
                 post: HttpPost = https_post) -> None:  # fmt: skip
        self._token, self._template_id, self._field, self._post = token, template_id, field, post

    def send(self, message: OutgoingMessage) -> str:
        body = json.dumps({
            "touser": message.address, "template_id": self._template_id,
            # A `thing` field holds at most 20 characters.
            "data": {self._field: {"value": message.body[:20]}},
        }, ensure_ascii=False).encode()  # fmt: skip
        url = f"{self.API}?access_token={self._token()}"
        status, raw = self._post(url, body, {"Content-Type": "application/json"})
        if status >= 500 or status == 429:
            raise ProviderBusy(f"wechat: HTTP {status}")
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            raise ProviderBusy(f"wechat: HTTP {status}, not JSON") from None
        code = int(answer.get("errcode", 0))
        if code == 0:
            return str(answer.get("msgid", ""))
        if code in _WECHAT_BUSY:
            forget = getattr(self._token, "forget", None)
            if forget is not None and code in (40001, 42001):
                forget()  # a rotated token: read it again next time
            raise ProviderBusy(f"wechat: errcode {code}")
        raise ProviderRefused(f"wechat: errcode {code}")


class SignedWebhook:
    """A POST to the shop's own endpoint, signed: `X-Crm-Timestamp` (Unix seconds) and
    `X-Crm-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>" with the shared secret>`, and
    `Idempotency-Key: <dispatch key hash>`. The receiver must refuse a signature that does not
    match or a timestamp more than 5 minutes old, and must process each idempotency key once:
    that contract makes this provider idempotent (a re-run after a lost answer posts again)."""

    idempotent = True
    needs_address = False

    def __init__(self, url: str, secret: Callable[[], str], clock: Clock,
                 post: HttpPost = https_post) -> None:  # fmt: skip
        self._url, self._secret, self._clock, self._post = url, secret, clock, post

    def signed(self, message: OutgoingMessage) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({
            "dispatch_key": message.dispatch_key, "customer_id": message.customer_id,
            "campaign_id": message.campaign_id, "channel": str(message.channel),
            "locale": message.locale, "subject": message.subject, "body": message.body,
        }, ensure_ascii=False, sort_keys=True).encode()  # fmt: skip
        timestamp = str(int(self._clock().timestamp()))
        mac = hmac.new(self._secret().encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return body, {
            "Content-Type": "application/json",
            "X-Crm-Timestamp": timestamp,
            "X-Crm-Signature": f"v1={mac.hexdigest()}",
            "Idempotency-Key": message.digest,
        }

    def send(self, message: OutgoingMessage) -> str:
        body, headers = self.signed(message)
        status, _ = self._post(self._url, body, headers)
        if 200 <= status < 300:
            return f"wh-{message.digest[:24]}"
        if status in (408, 425, 429) or status >= 500:
            raise ProviderBusy(f"webhook: HTTP {status}")
        raise ProviderRefused(f"webhook: HTTP {status}")


def configured_providers(
    store: DispatchStore,
    clock: Clock,
    environ: Mapping[str, str] | None = None,
    post: HttpPost | None = None,
) -> Providers:
    """The providers the environment configures (docs/campaigns.md lists the variables); the
    recording one for every other channel, and for all of them locally, where none is set or
    `CAMPAIGN_PROVIDERS=recording`. `post` replaces the HTTPS client (tests)."""
    env = os.environ if environ is None else environ
    post = post or https_post
    recording = RecordingProvider(store, clock)
    if env.get("CAMPAIGN_PROVIDERS", "recording") != "live":
        return Providers({}, recording)
    by_channel: dict[MessageChannel, Provider] = {}
    if env.get("CAMPAIGN_EMAIL_FROM"):
        by_channel[MessageChannel.EMAIL] = SesEmail(
            env["CAMPAIGN_EMAIL_FROM"], env.get("CAMPAIGN_SES_CONFIGURATION_SET")
        )
    if env.get("CAMPAIGN_SMS_ORIGINATION"):
        by_channel[MessageChannel.SMS] = EndUserMessagingSms(env["CAMPAIGN_SMS_ORIGINATION"])
    elif env.get("CAMPAIGN_SMS") == "sns":  # not granted by template.yaml: sns:Publish on `*`
        by_channel[MessageChannel.SMS] = SnsSms(env.get("CAMPAIGN_SMS_SENDER_ID"))
    if env.get("CAMPAIGN_PUSH_APPLICATION"):
        by_channel[MessageChannel.PUSH] = SnsPush(store, env["CAMPAIGN_PUSH_APPLICATION"])
    elif env.get("CAMPAIGN_PUSH") == "sns":
        by_channel[MessageChannel.PUSH] = SnsPush(store)
    if env.get("CAMPAIGN_WECHAT_TOKEN_SECRET_ARN") and env.get("CAMPAIGN_WECHAT_TEMPLATE_ID"):
        by_channel[MessageChannel.WECHAT] = WeChatSubscribe(
            SecretText(env["CAMPAIGN_WECHAT_TOKEN_SECRET_ARN"]),
            env["CAMPAIGN_WECHAT_TEMPLATE_ID"],
            post=post,
        )
    if env.get("CAMPAIGN_WEBHOOK_URL") and env.get("CAMPAIGN_WEBHOOK_SECRET_ARN"):
        by_channel[MessageChannel.WEBHOOK] = SignedWebhook(
            env["CAMPAIGN_WEBHOOK_URL"],
            SecretText(env["CAMPAIGN_WEBHOOK_SECRET_ARN"]),
            clock,
            post=post,
        )
    return Providers(by_channel, recording)
