"""Standard Webhooks signing and verification (helpkit.channels.standard_webhooks): the spec's
reference test vectors, Hypothesis properties (a genuine message verifies; any change of body,
id, timestamp or secret fails; the tolerance boundaries are exact), and replay protection."""

from __future__ import annotations

import base64
import email.message
import hashlib
import hmac
import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpkit import ConfigError
from helpkit.channels.standard_webhooks import (
    DEFAULT_TOLERANCE,
    MemorySeenIds,
    Reason,
    SeenIds,
    WebhookVerificationError,
    generate_secret,
    parse_secret,
    sign,
    signature_header,
    verify,
)

# The reference libraries' test vector (standard-webhooks, libraries/python/tests).
REF_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REF_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
REF_TIMESTAMP = 1614265330
REF_BODY = '{"test": 2432232314}'
REF_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _at(timestamp: int, microseconds: int = 0) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        seconds=timestamp, microseconds=microseconds
    )


def _headers(msg_id: str, timestamp: int | str, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


REF_HEADERS = _headers(REF_ID, REF_TIMESTAMP, REF_SIGNATURE)
REF_NOW = _at(REF_TIMESTAMP)


def _refused(reason: Reason, *args: object, **kwargs: object) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(*args, **kwargs)  # type: ignore[arg-type]
    assert caught.value.reason is reason, caught.value
    assert isinstance(caught.value, ValueError)
    return caught.value


# ---------------------------------------------------------------- reference vectors


def test_the_reference_signature() -> None:
    assert sign(REF_SECRET, REF_ID, REF_TIMESTAMP, REF_BODY) == REF_SIGNATURE
    key = base64.b64decode(REF_SECRET.removeprefix("whsec_"))
    assert sign(key, REF_ID, REF_TIMESTAMP, REF_BODY.encode()) == REF_SIGNATURE
    assert verify(REF_SECRET, REF_HEADERS, REF_BODY, now=REF_NOW) == REF_ID


def test_the_reference_refusals() -> None:
    wrong = _headers(REF_ID, REF_TIMESTAMP, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")
    _refused(Reason.BAD_SIGNATURE, REF_SECRET, wrong, REF_BODY, now=REF_NOW)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        partial = {k: v for k, v in REF_HEADERS.items() if k != name}
        _refused(Reason.MISSING_HEADER, REF_SECRET, partial, REF_BODY, now=REF_NOW)
    hello = {**REF_HEADERS, "webhook-timestamp": "hello"}
    _refused(Reason.BAD_TIMESTAMP, REF_SECRET, hello, REF_BODY, now=REF_NOW)
    late = REF_NOW + DEFAULT_TOLERANCE + timedelta(seconds=1)
    _refused(Reason.TOO_OLD, REF_SECRET, REF_HEADERS, REF_BODY, now=late)
    early = REF_NOW - DEFAULT_TOLERANCE - timedelta(seconds=1)
    _refused(Reason.TOO_NEW, REF_SECRET, REF_HEADERS, REF_BODY, now=early)


def test_any_of_several_signatures_verifies() -> None:
    others = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    many = f"{others} v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {REF_SIGNATURE} {others}"
    headers = _headers(REF_ID, REF_TIMESTAMP, many)
    assert verify(REF_SECRET, headers, REF_BODY, now=REF_NOW) == REF_ID
    # A signature of another scheme (v1a, asymmetric) is not taken for a v1 one.
    v1a = _headers(REF_ID, REF_TIMESTAMP, "v1a," + REF_SIGNATURE[3:])
    _refused(Reason.BAD_SIGNATURE, REF_SECRET, v1a, REF_BODY, now=REF_NOW)


def test_header_names_in_any_case_and_an_http_message() -> None:
    upper = {k.title(): v for k, v in REF_HEADERS.items()}
    assert verify(REF_SECRET, upper, REF_BODY, now=REF_NOW) == REF_ID
    message = email.message.Message()  # what http.server gives a handler
    for name, value in upper.items():
        message[name] = value
    assert verify(REF_SECRET, message, REF_BODY.encode(), now=REF_NOW) == REF_ID


def test_secrets() -> None:
    made = generate_secret()
    assert made.startswith("whsec_") and len(parse_secret(made)) == 32
    assert len(parse_secret(generate_secret(24))) == 24
    for bad in ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_aGk=", "whsec_é"):
        with pytest.raises(ConfigError) as caught:
            parse_secret(bad)
        assert bad[6:] not in str(caught.value) or bad[6:] == ""
    with pytest.raises(ConfigError):
        parse_secret(b"short")
    with pytest.raises(ConfigError):
        generate_secret(8)
    with pytest.raises(ConfigError):
        verify([], REF_HEADERS, REF_BODY, now=REF_NOW)


def test_ids_a_receiver_would_refuse_are_not_signed_nor_accepted() -> None:
    for bad in ("a.b", "a b", "", "x" * 257, "ñ", "a\nb"):
        with pytest.raises(ValueError):
            sign(REF_SECRET, bad, REF_TIMESTAMP, REF_BODY)
    dotted = _headers("msg.1", REF_TIMESTAMP, REF_SIGNATURE)
    _refused(Reason.BAD_ID, REF_SECRET, dotted, REF_BODY, now=REF_NOW)


@pytest.mark.parametrize("stamp", ["-1614265330", "+1614265330", "1614265330.0", "1e9", "١٢٣"])
def test_timestamps_are_plain_digits(stamp: str) -> None:
    headers = _headers(REF_ID, stamp, REF_SIGNATURE)
    _refused(Reason.BAD_TIMESTAMP, REF_SECRET, headers, REF_BODY, now=REF_NOW)


# ---------------------------------------------------------------- properties

ids = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="."),
    min_size=1,
    max_size=40,
)
timestamps = st.integers(min_value=0, max_value=10**11)
bodies = st.binary(max_size=300)
keys = st.binary(min_size=24, max_size=64)


def _secret(key: bytes) -> str:
    return "whsec_" + base64.b64encode(key).decode()


@given(keys, ids, timestamps, bodies)
def test_a_signed_message_verifies_and_matches_a_plain_hmac(
    key: bytes, msg_id: str, timestamp: int, body: bytes
) -> None:
    signature = sign(_secret(key), msg_id, timestamp, body)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert signature == "v1," + digest
    headers = _headers(msg_id, timestamp, signature)
    assert verify(_secret(key), headers, body, now=_at(timestamp)) == msg_id


@given(keys, ids, timestamps, bodies, st.data())
def test_any_change_fails(
    key: bytes, msg_id: str, timestamp: int, body: bytes, data: st.DataObject
) -> None:
    signature = sign(_secret(key), msg_id, timestamp, body)
    what = data.draw(st.sampled_from(["body", "id", "timestamp", "secret"]))
    secret, headers = _secret(key), _headers(msg_id, timestamp, signature)
    now = _at(timestamp)
    if what == "body":
        other = data.draw(bodies.filter(lambda b: b != body))
        _refused(Reason.BAD_SIGNATURE, secret, headers, other, now=now)
    elif what == "id":
        other_id = data.draw(ids.filter(lambda i: i != msg_id))
        headers["webhook-id"] = other_id
        _refused(Reason.BAD_SIGNATURE, secret, headers, body, now=now)
    elif what == "timestamp":
        other_stamp = data.draw(timestamps.filter(lambda t: t != timestamp))
        headers["webhook-timestamp"] = str(other_stamp)
        _refused(Reason.BAD_SIGNATURE, secret, headers, body, now=_at(other_stamp))
    else:
        other_key = data.draw(keys.filter(lambda k: k != key))
        _refused(Reason.BAD_SIGNATURE, _secret(other_key), headers, body, now=now)


@given(keys, keys, ids, timestamps, bodies)
def test_rotation_signs_with_each_secret_and_either_verifies(
    new: bytes, old: bytes, msg_id: str, timestamp: int, body: bytes
) -> None:
    header = signature_header([_secret(new), _secret(old)], msg_id, timestamp, body)
    assert header.split(" ") == [
        sign(_secret(new), msg_id, timestamp, body),
        sign(_secret(old), msg_id, timestamp, body),
    ]
    headers = _headers(msg_id, timestamp, header)
    for receiver_keys in ([new], [old], [generate_secret(), _secret(old)]):
        secrets = [k if isinstance(k, str) else _secret(k) for k in receiver_keys]
        assert verify(secrets, headers, body, now=_at(timestamp)) == msg_id


@given(
    timestamps,
    st.integers(min_value=0, max_value=10**10),  # tolerance in microseconds
    st.integers(min_value=-(10**10), max_value=10**10),  # now - timestamp, in microseconds
)
def test_the_tolerance_boundaries_are_exact(timestamp: int, tolerance: int, offset: int) -> None:
    headers = _headers(REF_ID, timestamp, sign(REF_SECRET, REF_ID, timestamp, REF_BODY))
    now = _at(timestamp, offset)
    window = timedelta(microseconds=tolerance)
    if abs(offset) <= tolerance:
        assert verify(REF_SECRET, headers, REF_BODY, now=now, tolerance=window) == REF_ID
    else:
        reason = Reason.TOO_OLD if offset > 0 else Reason.TOO_NEW
        _refused(reason, REF_SECRET, headers, REF_BODY, now=now, tolerance=window)


@given(timestamps, st.integers(min_value=0, max_value=10**6))
def test_at_the_boundary_and_one_microsecond_past(timestamp: int, seconds: int) -> None:
    headers = _headers(REF_ID, timestamp, sign(REF_SECRET, REF_ID, timestamp, REF_BODY))
    window = timedelta(seconds=seconds)
    edge = _at(timestamp) + window
    assert verify(REF_SECRET, headers, REF_BODY, now=edge, tolerance=window) == REF_ID
    assert verify(REF_SECRET, headers, REF_BODY, now=_at(timestamp) - window, tolerance=window)
    past = timedelta(microseconds=1)
    _refused(Reason.TOO_OLD, REF_SECRET, headers, REF_BODY, now=edge + past, tolerance=window)
    before = _at(timestamp) - window - past
    _refused(Reason.TOO_NEW, REF_SECRET, headers, REF_BODY, now=before, tolerance=window)


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=5), st.binary())
def test_arbitrary_headers_verify_or_raise_the_typed_error(
    headers: dict[str, str], body: bytes
) -> None:
    with pytest.raises(WebhookVerificationError) as caught:
        verify(REF_SECRET, headers, body, now=REF_NOW)
    assert isinstance(caught.value.reason, Reason)


# ---------------------------------------------------------------- replay protection


def test_a_replay_is_refused_until_its_timestamp_expires() -> None:
    seen = MemorySeenIds()
    assert isinstance(seen, SeenIds)
    assert verify(REF_SECRET, REF_HEADERS, REF_BODY, now=REF_NOW, seen=seen) == REF_ID
    later = REF_NOW + timedelta(minutes=4)
    _refused(Reason.REPLAYED, REF_SECRET, REF_HEADERS, REF_BODY, now=later, seen=seen)
    # Once the timestamp is out of the window the timestamp check refuses it; the id is
    # forgotten then, so the store does not grow without end.
    gone = REF_NOW + DEFAULT_TOLERANCE + timedelta(microseconds=1)
    _refused(Reason.TOO_OLD, REF_SECRET, REF_HEADERS, REF_BODY, now=gone, seen=seen)
    assert seen.add(REF_ID, now=gone, expires=gone + timedelta(seconds=1))


def test_a_forgery_does_not_poison_the_seen_ids() -> None:
    seen = MemorySeenIds()
    forged = {**REF_HEADERS, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
    _refused(Reason.BAD_SIGNATURE, REF_SECRET, forged, REF_BODY, now=REF_NOW, seen=seen)
    assert len(seen) == 0
    assert verify(REF_SECRET, REF_HEADERS, REF_BODY, now=REF_NOW, seen=seen) == REF_ID


def test_concurrent_deliveries_of_one_id_are_accepted_once() -> None:
    seen = MemorySeenIds()
    accepted: list[str] = []
    refused: list[Reason] = []
    barrier = threading.Barrier(8)

    def receive() -> None:
        barrier.wait()
        try:
            accepted.append(verify(REF_SECRET, REF_HEADERS, REF_BODY, now=REF_NOW, seen=seen))
        except WebhookVerificationError as exc:
            refused.append(exc.reason)

    threads = [threading.Thread(target=receive) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert accepted == [REF_ID] and refused == [Reason.REPLAYED] * 7


def test_the_memory_store_is_bounded() -> None:
    seen = MemorySeenIds(limit=3)
    now = REF_NOW
    for i in range(5):
        assert seen.add(f"id{i}", now=now, expires=now + timedelta(minutes=5))
    assert len(seen) == 3
    assert seen.add("id0", now=now, expires=now + timedelta(minutes=5))  # the oldest went
    assert not seen.add("id4", now=now, expires=now + timedelta(minutes=5))
