"""Signed approval links carry who may decide what, until they expire, and cannot be forged."""

from datetime import UTC, datetime, timedelta

import pytest

from services.approval_links import Grant, LinkExpired, LinkInvalid, approval_url, read, sign

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
GRANT = Grant("run-ms_1-abc", "client_ap", "prn_42", NOW + timedelta(days=30))


def test_a_link_reads_back_as_the_grant_it_was_signed_with():
    assert read("s3cret", sign("s3cret", GRANT), NOW) == GRANT


def test_a_link_signed_with_another_secret_or_edited_is_invalid():
    token = sign("s3cret", GRANT)
    with pytest.raises(LinkInvalid):
        read("other", token, NOW)
    with pytest.raises(LinkInvalid):
        read("s3cret", token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], NOW)
    with pytest.raises(LinkInvalid):
        read("s3cret", "not-a-link", NOW)


def test_a_link_is_expired_from_its_expiry_on():
    with pytest.raises(LinkExpired) as expired:
        read("s3cret", sign("s3cret", GRANT), GRANT.expires_at)
    assert expired.value.grant == GRANT


def test_the_url_is_on_the_public_address():
    url = approval_url("https://billing.example.com", "s3cret", GRANT)
    assert url.startswith("https://billing.example.com/approve/")
    assert read("s3cret", url.rsplit("/", 1)[1], NOW) == GRANT
