"""A trigger URL's token names its URL, signed; anything else is refused, whoever made it."""

from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import URLSafeSerializer
from pydantic import ValidationError

from db.trigger_urls import TriggerUrl
from services import approval_links
from services.trigger_urls import SALT, TokenInvalid, TriggerUrlIn, read, sign, status

SECRET = "s3cret"
URL_ID = "tu_0123456789abcdef0123"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_a_token_reads_back_as_the_url_it_was_signed_for():
    token = sign(SECRET, URL_ID)
    assert read(SECRET, token) == URL_ID


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


@pytest.mark.parametrize("where", ["payload", "signature"])
def test_a_tampered_token_is_refused(where: str):
    token = sign(SECRET, URL_ID)
    at = 1 if where == "payload" else len(token) - 2
    with pytest.raises(TokenInvalid):
        read(SECRET, _flip(token, at))


def test_a_token_for_another_url_cannot_be_made_by_editing_the_id():
    token = sign(SECRET, URL_ID)
    other = sign(SECRET, "tu_ffffffffffffffffffff")
    forged = other.split(".")[0] + "." + token.split(".")[1]
    with pytest.raises(TokenInvalid):
        read(SECRET, forged)


@pytest.mark.parametrize(
    "token",
    [
        sign("another secret", URL_ID),
        URLSafeSerializer(SECRET).dumps(URL_ID),  # no salt
        approval_links.sign(
            SECRET,
            approval_links.Grant("run", "client_ap", "prn_1", NOW + timedelta(days=1)),
        ),
        URLSafeSerializer(SECRET, salt=SALT).dumps(["tu_1", "x"]),  # signed, but not an id
        URLSafeSerializer(SECRET, salt=SALT).dumps("eng_0123"),  # signed, but not a URL's id
        "",
        "not-a-token",
        URL_ID,
    ],
    ids=[
        "another secret",
        "no salt",
        "an approval link",
        "a list",
        "another kind of id",
        "empty",
        "garbage",
        "a bare id",
    ],
)
def test_tokens_this_server_did_not_sign_for_a_trigger_url_are_refused(token: str):
    with pytest.raises(TokenInvalid):
        read(SECRET, token)


def url(**kw: object) -> TriggerUrl:
    fields = {"expires_at": NOW + timedelta(hours=1), "max_uses": None, "uses": 0}
    return TriggerUrl(**{**fields, "revoked_at": None, **kw})


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (url(), "active"),
        (url(max_uses=2, uses=1), "active"),
        (url(max_uses=2, uses=2), "used-up"),
        (url(expires_at=NOW), "expired"),
        (url(expires_at=NOW, max_uses=1, uses=1), "expired"),
        (url(revoked_at=NOW, expires_at=NOW), "revoked"),
    ],
)
def test_a_url_is_dead_once_revoked_expired_or_used_up_in_that_order(
    row: TriggerUrl, expected: str
):
    assert status(row, NOW) == expected


@pytest.mark.parametrize(
    "body",
    [
        {"milestone": "phase-1", "expires_at": 1900000000},
        {"milestone": "phase-1", "expires_at": "2027-01-01T00:00:00"},  # no time zone
        {"milestone": "phase-1", "expires_at": "next week"},
        {"milestone": "phase-1", "expires_at": "2027-01-01T00:00:00Z", "max_uses": 0},
        {"milestone": "phase-1", "expires_at": "2027-01-01T00:00:00Z", "max_uses": True},
        {"milestone": "phase-1", "expires_at": "2027-01-01T00:00:00Z", "max_uses": "3"},
        {"milestone": "phase-1", "expires_at": "2027-01-01T00:00:00Z", "max_uses": 10**6},
        {"milestone": "", "expires_at": "2027-01-01T00:00:00Z"},
        {"milestone": "phase-1", "expires_at": "2027-01-01T00:00:00Z", "secret": "x"},
    ],
)
def test_a_trigger_url_request_is_refused_unless_its_fields_are_exact(body: dict):
    with pytest.raises(ValidationError):
        TriggerUrlIn.model_validate(body)


def test_a_trigger_url_request_takes_an_rfc_3339_instant_in_any_offset():
    body = TriggerUrlIn.model_validate(
        {"milestone": "phase-1", "expires_at": "2027-01-01T02:00:00+02:00", "max_uses": 3}
    )
    assert body.expires_at == datetime(2027, 1, 1, tzinfo=UTC)
