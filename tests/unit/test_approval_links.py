"""Signed approval links carry who may decide what, until they expire, and cannot be forged."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.approval_links import (
    Grant,
    LinkExpired,
    LinkInvalid,
    NoLinkSecret,
    approval_url,
    form_token,
    form_token_valid,
    link_secret,
    read,
    sign,
)

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


def test_without_a_secret_nothing_is_signed():
    with pytest.raises(NoLinkSecret):
        sign("", GRANT)


def test_the_dev_stack_generates_a_secret_once_and_keeps_it_private(tmp_path: Path):
    first = link_secret("", tmp_path)
    assert link_secret("", tmp_path) == first
    assert (tmp_path / "link-secret").stat().st_mode & 0o777 == 0o600
    assert link_secret("configured", tmp_path) == "configured"


def test_a_form_token_is_good_only_for_the_link_it_was_rendered_for():
    link = sign("s3cret", GRANT)
    other = sign("s3cret", Grant("run-other", "client_ap", "prn_42", GRANT.expires_at))
    token = form_token("s3cret", link)
    assert form_token_valid("s3cret", link, token)
    assert not form_token_valid("s3cret", other, token)
    assert not form_token_valid("another", link, token)
    assert not form_token_valid("s3cret", link, "forged")
