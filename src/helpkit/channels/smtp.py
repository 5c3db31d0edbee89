"""A channel that sends email through an SMTP server, with the standard library's :mod:`smtplib`.

Each message is rendered by :mod:`helpkit.channels.mime` (plain text and, by default, an HTML
alternative; attachments read from the channel's :class:`~helpkit.ports.BlobStore`) and sent
over one connection per delivery: implicit TLS (``security = "ssl"``, port 465), STARTTLS
(``"starttls"``, port 587; a server that does not offer it is a failure, never a fall back to
plain text) or none (``"none"``, port 25, for a relay on the same host), with ``AUTH`` when a
username is configured. Certificates are verified against the system's authorities, or the
``ca_file`` given.

The Message-ID is made of the message's idempotency key and thread token
(:func:`~helpkit.channels.mime.outbound_message_id`), so every attempt carries the same one: a
receiving system, or a person, can tell a retry, and a reply to it threads.
``deliver`` returns it. Whatever goes wrong on the way (the server cannot be reached, refuses
the login, the sender or every recipient, times out) raises :class:`SmtpError`, which the
relay records and retries; a recipient refused among others that were taken is logged on
``helpkit.channels`` and the message counts as sent.

Building the channel touches neither the network nor the environment: the password named by
``password_env`` is read when a message is sent, so every ``helpkit`` command can build the
desk without it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from typing import Any, Final

from helpkit.channels.mime import (
    Mailbox,
    blob_store_option,
    check_domain,
    message_bytes,
    needs_utf8,
    outbound_message_id,
    parse_sender,
    render,
)
from helpkit.errors import ConfigError, HelpkitError
from helpkit.ports import BlobStore, OutboundMessage

__all__ = ["SECURITY", "SmtpChannel", "SmtpError", "smtp_channel_factory"]

log = logging.getLogger("helpkit.channels")

SECURITY: Final = {"ssl": 465, "starttls": 587, "none": 25}
"""The ``security`` values and the port each uses by default."""


class SmtpError(HelpkitError, OSError):
    """A message could not be handed to the SMTP server (the relay retries it)."""


class SmtpChannel:
    """Sends each :class:`~helpkit.ports.OutboundMessage` through the SMTP server at ``host``.

    ``sender`` is the ``From`` (and the envelope sender); ``domain`` the right part of the
    Message-IDs (default: the sender's domain); ``reply_to`` an address for ``Reply-To``;
    ``html`` adds an HTML alternative of the body. ``password`` or ``password_env`` (the name
    of an environment variable holding it, read at each delivery) go with ``username``.
    ``ssl_context`` replaces the default one (``ca_file``: trust that CA file instead of the
    system's). ``blobs`` is where attachments' bytes are read (the desk's blob store).
    """

    def __init__(
        self,
        host: str,
        *,
        sender: str,
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        password_env: str | None = None,
        timeout: float = 30.0,
        domain: str | None = None,
        reply_to: str | None = None,
        html: bool = True,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        name: str = "smtp",
        blobs: BlobStore | None = None,
    ) -> None:
        if not isinstance(host, str) or not host.strip() or any(c in host for c in "\r\n\x00 "):
            raise ConfigError(f"channel {name!r}: host must be a host name; got {host!r:.80}")
        if security not in SECURITY:
            raise ConfigError(
                f"channel {name!r}: security must be one of {', '.join(SECURITY)}; "
                f"got {security!r:.40}"
            )
        chosen = SECURITY[security] if port is None else port
        if not isinstance(chosen, int) or isinstance(chosen, bool) or not 0 < chosen < 65536:
            raise ConfigError(f"channel {name!r}: port must be in 1..65535; got {port!r:.40}")
        if (
            not isinstance(timeout, int | float)
            or isinstance(timeout, bool)
            or not 0 < timeout <= 3600
        ):
            raise ConfigError(f"channel {name!r}: timeout is seconds in (0, 3600]; got {timeout!r}")
        for what, value in (
            ("username", username),
            ("password", password),
            ("password_env", password_env),
            ("ca_file", ca_file),
            ("local_hostname", local_hostname),
        ):
            if value is not None and (not isinstance(value, str) or not value or "\x00" in value):
                raise ConfigError(f"channel {name!r}: {what} must be non-empty text")
        if password is not None and password_env is not None:
            raise ConfigError(f"channel {name!r}: give password or password_env, not both")
        if (password is not None or password_env is not None) and username is None:
            raise ConfigError(f"channel {name!r}: a password needs a username")
        if html is not True and html is not False:
            raise ConfigError(f"channel {name!r}: html must be true or false; got {html!r:.40}")
        if security == "none" and (ca_file is not None or ssl_context is not None):
            raise ConfigError(f"channel {name!r}: ca_file needs security ssl or starttls")
        self.name = name
        self.host = host.strip()
        self.port = chosen
        self.security = security
        self.username = username
        self._password = password
        self.password_env = password_env
        self.timeout = float(timeout)
        self.sender: Mailbox = parse_sender(sender)
        self.domain = self.sender.domain if domain is None else check_domain(domain)
        self.reply_to: Mailbox | None = None if reply_to is None else parse_sender(reply_to)
        self.html = html
        self.ca_file = ca_file
        self._context = ssl_context
        self.local_hostname = local_hostname
        self.blobs = blobs
        """Where attachments' bytes are read (``None``: a message with attachments fails
        with :class:`~helpkit.channels.mime.MissingBlobError`)."""

    def __repr__(self) -> str:
        return f"SmtpChannel({self.host!r}, port={self.port}, security={self.security!r})"

    def deliver(self, message: OutboundMessage) -> str:
        """Send ``message``; return its Message-ID (the same for every attempt)."""
        email = render(
            message,
            sender=self.sender,
            domain=self.domain,
            reply_to=self.reply_to,
            html=self.html,
            blobs=self.blobs,
        )
        external_id = outbound_message_id(message, self.domain)
        recipients = [box.addr_spec for box in email["To"].addresses]
        data = message_bytes(email, linesep="\r\n")
        utf8 = needs_utf8(email)
        try:
            client = self._connect()
            try:
                refused = self._send(client, recipients, data, utf8=utf8)
            finally:
                # The message was taken (or not) before this: a failed goodbye changes nothing.
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.quit()
                client.close()
        except SmtpError:
            raise
        except smtplib.SMTPRecipientsRefused as exc:
            raise SmtpError(
                f"{self._where()} refused every recipient: {_refusals(exc.recipients)}"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            reply = exc.smtp_error
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            raise SmtpError(f"{self._where()} answered {exc.smtp_code} {text}".strip()) from exc
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            raise SmtpError(f"cannot send through {self._where()}: {exc}") from exc
        if refused:
            log.warning(
                "message %s: %s refused %s; sent to the others",
                external_id,
                self._where(),
                _refusals(refused),
            )
        return external_id

    # ------------------------------------------------------------ details

    def _where(self) -> str:
        return f"the SMTP server {self.host}:{self.port}"

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context(cafile=self.ca_file)
        return self._context

    def _connect(self) -> smtplib.SMTP:
        hostname = self.local_hostname
        if self.security == "ssl":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=hostname,
                timeout=self.timeout,
                context=self._ssl_context(),
            )
        client = smtplib.SMTP(self.host, self.port, local_hostname=hostname, timeout=self.timeout)
        try:
            client.ehlo()
            if self.security == "starttls":
                if not client.has_extn("starttls"):
                    raise SmtpError(f"{self._where()} does not offer STARTTLS")
                client.starttls(context=self._ssl_context())
                client.ehlo()
        except BaseException:
            client.close()
            raise
        return client

    def _send(
        self, client: smtplib.SMTP, recipients: list[str], data: bytes, *, utf8: bool
    ) -> dict[str, tuple[int, bytes]]:
        self._login(client)
        options: list[str] = []
        if utf8:
            if not client.has_extn("smtputf8"):
                raise SmtpError(
                    f"{self._where()} does not take UTF-8 addresses (SMTPUTF8), which this "
                    "message needs"
                )
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        return client.sendmail(self.sender.address, recipients, data, options)

    def _login(self, client: smtplib.SMTP) -> None:
        if self.username is None:
            return
        password = self._password
        if self.password_env is not None:
            password = os.environ.get(self.password_env)
            if not password:
                raise SmtpError(
                    f"channel {self.name!r}: the environment variable {self.password_env} "
                    "(password_env) is not set"
                )
        secret = password or ""
        client.ehlo_or_helo_if_needed()
        if not client.has_extn("auth"):
            raise SmtpError(f"{self._where()} does not offer AUTH, and a username is configured")
        if "PLAIN" in client.esmtp_features["auth"].upper().split():
            # PLAIN by hand: RFC 4616 credentials are UTF-8, which smtplib's login refuses.
            token = base64.b64encode(b"\0%s\0%s" % (self.username.encode(), secret.encode()))
            code, reply = client.docmd("AUTH", "PLAIN " + token.decode("ascii"))
            if code != 235:
                raise smtplib.SMTPAuthenticationError(code, reply)
            return
        client.login(self.username, secret)


def _refusals(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return ", ".join(
        f"{address} ({code} {reply.decode('utf-8', 'replace')})"
        for address, (code, reply) in refused.items()
    )


_OPTIONS: Final = (
    "host",
    "port",
    "security",
    "username",
    "password",
    "password_env",
    "timeout",
    "sender",
    "domain",
    "reply_to",
    "html",
    "ca_file",
    "local_hostname",
)


def smtp_channel_factory(options: Mapping[str, Any]) -> SmtpChannel:
    """Build an SMTP channel from its configuration table::

    [channels.email]
    type = "smtp"
    host = "smtp.example.com"
    port = 587                              # optional: 465 for ssl, 587 starttls, 25 none
    security = "starttls"                   # "ssl" | "starttls" | "none"
    username = "support@example.com"        # optional
    password_env = "HELPKIT_SMTP_PASSWORD"  # or password = "..."
    timeout = 30                            # seconds
    sender = "Support <support@example.com>"
    domain = "example.com"                  # optional: the Message-IDs' right part
    reply_to = "help@example.com"           # optional
    html = true                             # optional: an HTML alternative of the body
    ca_file = "/etc/ssl/my-ca.pem"          # optional: trust this CA instead of the system's
    """
    name = str(options.get("name", "smtp"))
    # "name", "type" and "blobs" (the desk's blob store) come from the desk, not the table.
    unknown = sorted(set(options) - {"name", "type", "blobs", *_OPTIONS})
    if unknown:
        raise ConfigError(
            f"channel {name!r} (smtp): unknown option {', '.join(unknown)} "
            f"(known: {', '.join(_OPTIONS)})"
        )
    missing = [key for key in ("host", "sender") if key not in options]
    if missing:
        raise ConfigError(f"channel {name!r} (smtp) needs {' and '.join(missing)}")
    for key in ("host", "sender", "security", "domain", "reply_to"):
        value = options.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"channel {name!r}: {key} must be text; got {value!r:.80}")
    return SmtpChannel(
        options["host"],
        sender=options["sender"],
        port=options.get("port"),
        security=options.get("security", "starttls"),
        username=options.get("username"),
        password=options.get("password"),
        password_env=options.get("password_env"),
        timeout=options.get("timeout", 30.0),
        domain=options.get("domain"),
        reply_to=options.get("reply_to"),
        html=options.get("html", True),
        ca_file=options.get("ca_file"),
        local_hostname=options.get("local_hostname"),
        name=name,
        blobs=blob_store_option(name, options.get("blobs")),
    )
