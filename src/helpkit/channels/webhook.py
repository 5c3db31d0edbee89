"""The webhook channel: POSTs each webhook delivery to one endpoint, signed as Standard Webhooks
(:mod:`helpkit.channels.standard_webhooks`), with the standard library's HTTP client.

Configured as ``[webhooks.NAME]`` (not ``[channels.NAME]``: the planner sends an endpoint the
committed events it subscribes to, see :mod:`helpkit.webhook_events`)::

    [webhooks.crm]
    url = "https://crm.example.com/hooks/helpdesk"
    secret_env = "HELPKIT_CRM_SECRET"    # or secret = "whsec_..." (or a list, while rotating)
    events = ["ticket_opened", "comment_added", "status_changed"]   # or ["*"]
    include_internal = false
    timeout = 15                          # seconds, each network operation
    headers = { "X-Tenant" = "acme" }     # extra request headers

Each attempt sends the delivery's body (the JSON payload, the same bytes every time) with
``webhook-id`` (the delivery's id: the same on every attempt, the receiver's idempotency key),
``webhook-timestamp`` (the attempt's instant) and ``webhook-signature`` (one ``v1`` signature
per secret). A ``2xx`` answer is success: ``deliver`` returns the ``webhook-id`` (the id the
receiver knows the message by, recorded in the ticket's ``message_sent``) and logs the status
on ``helpkit.channels.webhook``. Anything else raises :class:`WebhookDeliveryError` and the relay
tries again later (redirects are not followed: the spec asks senders to treat them as
failures); ``410 Gone`` raises :class:`WebhookGoneError`, which the relay gives up at once.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from helpkit.channels.standard_webhooks import parse_secret, signature_header
from helpkit.errors import ConfigError, DeliveryRefusedError, HelpkitError
from helpkit.ports import OutboundMessage
from helpkit.webhook_events import WEBHOOK

__all__ = [
    "WebhookChannel",
    "WebhookDeliveryError",
    "WebhookGoneError",
    "webhook_channel_factory",
]

log = logging.getLogger("helpkit.channels.webhook")

_OPTIONS: Final = (
    "url",
    "secret",
    "secret_env",
    "timeout",
    "headers",
    "events",
    "include_internal",
)
_READ_LIMIT: Final = 64 * 1024
_SNIPPET: Final = 200
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
_RESERVED: Final = frozenset(
    {"content-type", "content-length", "host", "transfer-encoding", "connection"}
)


class WebhookDeliveryError(HelpkitError):
    """An attempt failed: the endpoint answered other than ``2xx`` (``status``), or could not
    be reached in time (``status`` is None). The relay records it and tries again later."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WebhookGoneError(WebhookDeliveryError, DeliveryRefusedError):
    """The endpoint answered ``410 Gone``: it wants no more webhooks. The relay gives the
    delivery up at once (a dead letter) instead of retrying it."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx answer is then an HTTPError: a failed attempt


class WebhookChannel:
    """Sends webhook deliveries to ``url``, signed with ``secrets`` (the first is the current
    one; all sign each message while rotating). ``clock`` gives the attempt's instant in Unix
    seconds (``webhook-timestamp``)."""

    def __init__(
        self,
        name: str,
        url: str,
        secrets: str | Sequence[str],
        *,
        timeout: float = 15.0,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.url = _check_url(name, url)
        chosen = [secrets] if isinstance(secrets, str) else list(secrets)
        if not chosen:
            raise ConfigError(f"webhook {name!r} needs a secret")
        for secret in chosen:
            try:
                parse_secret(secret)
            except ConfigError as exc:
                raise ConfigError(f"webhook {name!r}: {exc}") from None
        self._secrets = tuple(chosen)
        if (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not 0 < timeout <= 300
        ):
            raise ConfigError(f"webhook {name!r}: timeout is seconds in (0, 300]; got {timeout!r}")
        self.timeout = float(timeout)
        self._headers = _check_headers(name, headers or {})
        self._clock = clock
        self._opener = urllib.request.build_opener(_NoRedirects)

    def __repr__(self) -> str:  # never the secrets
        return f"WebhookChannel({self.name!r}, {self.url!r})"

    def deliver(self, message: OutboundMessage) -> str:
        """POST ``message`` (a delivery of kind ``webhook``) once; its ``webhook-id`` (the
        message's idempotency key, the same on every attempt).

        Raises :class:`WebhookDeliveryError` when the endpoint does not answer ``2xx`` in time,
        :class:`WebhookGoneError` for ``410``, and DeliveryRefusedError for a message that is
        not a webhook delivery (configured as a reply channel by mistake)."""
        if message.kind != WEBHOOK:
            raise DeliveryRefusedError(
                f"webhook {self.name!r} takes only webhook deliveries, not a {message.kind!r}"
            )
        body = message.body.encode("utf-8")
        timestamp = int(self._clock())
        try:
            signature = signature_header(self._secrets, message.idempotency_key, timestamp, body)
        except ValueError as exc:
            raise DeliveryRefusedError(f"webhook {self.name!r}: {exc}") from None
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "User-Agent": "helpkit-webhooks",
            "webhook-id": message.idempotency_key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = int(response.status)
                response.read(_READ_LIMIT)
        except urllib.error.HTTPError as exc:
            status, text = exc.code, _snippet(exc)
            exc.close()
            what = f"HTTP {status} from {self.url}"
            if status == 410:
                raise WebhookGoneError(f"{what}: the endpoint is gone", status) from None
            if 300 <= status < 400:
                what += " (redirects are not followed: configure the new URL)"
            raise WebhookDeliveryError(f"{what}{text}", status) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise WebhookDeliveryError(f"{self.url}: {type(reason).__name__}: {reason}") from exc
        if not 200 <= status < 300:
            raise WebhookDeliveryError(f"HTTP {status} from {self.url}", status)
        log.info("webhook %s: %s answered HTTP %d", message.idempotency_key, self.name, status)
        return message.idempotency_key


def _snippet(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read(_READ_LIMIT).decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return ""
    text = " ".join(text.split())[:_SNIPPET]
    return f": {text}" if text else ""


def _check_url(name: str, url: object) -> str:
    if not isinstance(url, str) or not url.isprintable() or " " in url:
        raise ConfigError(f"webhook {name!r}: url must be an http(s) URL; got {url!r:.80}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"webhook {name!r}: url must be an http(s) URL; got {url!r:.80}")
    return url


def _check_headers(name: str, headers: object) -> dict[str, str]:
    if not isinstance(headers, Mapping):
        raise ConfigError(f"webhook {name!r}: headers is a table of names and values")
    checked = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not _TOKEN.fullmatch(key):
            raise ConfigError(f"webhook {name!r}: {key!r:.60} is not a header name")
        lower = key.lower()
        if lower in _RESERVED or lower.startswith("webhook-"):
            raise ConfigError(f"webhook {name!r}: the header {key} is helpkit's to set")
        if not isinstance(value, str) or not value.isprintable() or not value.isascii():
            raise ConfigError(f"webhook {name!r}: header {key} must be printable ASCII text")
        checked[key] = value
    return checked


def webhook_channel_factory(options: Mapping[str, Any]) -> WebhookChannel:
    """Build a webhook endpoint from its ``[webhooks.NAME]`` table (see the module's text).

    ``secret`` is one ``whsec_`` secret or a list (the current one first); ``secret_env`` names
    an environment variable holding them (space-separated) instead, so the file holds none.
    """
    name = str(options.get("name", "webhook"))
    unknown = sorted(set(options) - {"name", "type", *_OPTIONS})
    if unknown:
        raise ConfigError(
            f"webhook {name!r}: unknown option {', '.join(unknown)} (known: {', '.join(_OPTIONS)})"
        )
    if "url" not in options:
        raise ConfigError(f"webhook {name!r} needs url")
    if ("secret" in options) == ("secret_env" in options):
        raise ConfigError(f"webhook {name!r} needs one of secret and secret_env")
    secret = options.get("secret")
    if "secret_env" in options:
        variable = options["secret_env"]
        if not isinstance(variable, str) or not variable:
            raise ConfigError(f"webhook {name!r}: secret_env names an environment variable")
        value = os.environ.get(variable)
        if not value or not value.split():
            raise ConfigError(f"webhook {name!r}: the environment variable {variable} is not set")
        secret = value.split()
    if isinstance(secret, str):
        secret = [secret]
    if not isinstance(secret, list | tuple) or not all(isinstance(s, str) for s in secret):
        raise ConfigError(f"webhook {name!r}: secret is whsec_ text or a list of them")
    return WebhookChannel(
        name,
        options["url"],
        secret,
        timeout=options.get("timeout", 15.0),
        headers=options.get("headers"),
    )
