"""Verifying deliveries signed with the standardwebhooks library, and keeping secrets encrypted."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook

from services.errors import Problem
from services.source_secrets import (
    BadSignature,
    Secrets,
    decrypt,
    encrypt,
    new_secret,
    verify,
)

BODY = b'{"status": "resolved", "uptime": 99.95}'
NOW = datetime.now(UTC)
CURRENT, PREVIOUS, STRANGER = new_secret(), new_secret(), new_secret()


def signed(secret: str, body: bytes = BODY, at: datetime | None = None, msg_id: str = "msg_1"):
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def test_a_new_secret_is_whsec_and_32_random_bytes():
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert secret != new_secret()


def test_a_delivery_signed_with_the_sources_secret_verifies():
    verify(Secrets(CURRENT), BODY, signed(CURRENT), NOW)


def test_a_tampered_body_is_refused():
    with pytest.raises(BadSignature, match="No matching signature"):
        verify(Secrets(CURRENT), BODY.replace(b"99.95", b"99.99"), signed(CURRENT), NOW)


def test_another_secret_is_refused():
    with pytest.raises(BadSignature, match="No matching signature"):
        verify(Secrets(CURRENT), BODY, signed(STRANGER), NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_timestamp_more_than_five_minutes_off_is_refused(skew: timedelta):
    headers = signed(CURRENT, at=datetime.now(UTC) + skew)
    with pytest.raises(BadSignature, match=r"timestamp too (old|new)"):
        verify(Secrets(CURRENT), BODY, headers, NOW)


def test_a_timestamp_within_five_minutes_verifies():
    verify(
        Secrets(CURRENT), BODY, signed(CURRENT, at=datetime.now(UTC) - timedelta(minutes=4)), NOW
    )


def test_during_the_rotation_overlap_either_secret_verifies():
    keys = Secrets(CURRENT, PREVIOUS, NOW + timedelta(hours=24))
    verify(keys, BODY, signed(CURRENT), NOW)
    verify(keys, BODY, signed(PREVIOUS), NOW + timedelta(hours=23))


def test_after_the_rotation_overlap_only_the_new_secret_verifies():
    keys = Secrets(CURRENT, PREVIOUS, NOW + timedelta(hours=24))
    later = NOW + timedelta(hours=24, seconds=1)
    verify(keys, BODY, signed(CURRENT), later)
    with pytest.raises(BadSignature):
        verify(keys, BODY, signed(PREVIOUS), later)


def test_several_signatures_verify_when_any_one_matches():
    headers = signed(CURRENT)
    stranger = signed(STRANGER)["webhook-signature"]
    headers["webhook-signature"] = f"v2,abc {stranger} {headers['webhook-signature']}"
    verify(Secrets(CURRENT), BODY, headers, NOW)


@pytest.mark.parametrize(
    "broken",
    [
        {"webhook-signature": ""},
        {"webhook-id": ""},
        {"webhook-timestamp": "yesterday"},
        {"webhook-signature": "v1"},
        {"webhook-signature": "v1,not base64!"},
    ],
)
def test_missing_or_malformed_headers_are_refused(broken: dict[str, str]):
    with pytest.raises(BadSignature):
        verify(Secrets(CURRENT), BODY, {**signed(CURRENT), **broken}, NOW)


def test_a_body_that_is_not_utf8_is_refused():
    with pytest.raises(BadSignature):
        verify(Secrets(CURRENT), b"\xff\xfe", signed(CURRENT), NOW)


def test_secrets_are_stored_encrypted_and_read_back_with_the_same_link_secret():
    stored = encrypt("link-secret", CURRENT)
    assert CURRENT not in stored and CURRENT.removeprefix("whsec_") not in stored
    assert decrypt("link-secret", stored) == CURRENT


def test_a_changed_link_secret_cannot_read_stored_secrets():
    stored = encrypt("link-secret", CURRENT)
    with pytest.raises(Problem) as refused:
        decrypt("another-link-secret", stored)
    assert (refused.value.status, refused.value.slug) == (503, "source-secret-unreadable")


def test_without_a_link_secret_no_source_secret_is_kept():
    with pytest.raises(Problem) as refused:
        encrypt("", CURRENT)
    assert refused.value.status == 503
