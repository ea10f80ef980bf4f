"""Which addresses webhooks may go to: public ones only, unless private targets are allowed; an
IPv6 address that carries an IPv4 one is judged by the IPv4 address; a name is judged by every
address it resolves to, and the post goes to the address that was checked."""

from ipaddress import ip_address

import httpx
import pytest

from config import Settings
from services.webhook_targets import (
    Target,
    TargetRefused,
    TargetUnresolved,
    pinned,
    refusal,
    resolve,
)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback address"),
        ("127.255.0.9", "loopback address"),
        ("10.1.2.3", "private address"),
        ("172.16.0.1", "private address"),
        ("192.168.1.20", "private address"),
        ("169.254.169.254", "link-local address"),  # the cloud metadata service
        ("0.0.0.0", "unspecified address"),
        ("224.0.0.1", "multicast address"),
        ("240.0.0.1", "reserved address"),
        ("100.64.0.1", "special-purpose address"),  # carrier-grade NAT
        ("192.0.2.10", "private address"),  # documentation
        ("::1", "loopback address"),
        ("::", "unspecified address"),
        ("fe80::1", "link-local address"),
        ("fe80::1%eth0", "link-local address"),
        ("fd00::5", "private address"),
        ("ff02::1", "multicast address"),
        ("2001:db8::1", "private address"),  # documentation
        ("::7f00:1", "reserved address"),  # IPv4-compatible, deprecated
        ("::ffff:127.0.0.1", "loopback address (127.0.0.1 inside ::ffff:7f00:1)"),
        ("::ffff:169.254.169.254", "link-local address (169.254.169.254 inside ::ffff:a9fe:a9fe)"),
        ("::ffff:10.0.0.1", "private address (10.0.0.1 inside ::ffff:a00:1)"),
        ("2002:7f00:1::1", "loopback address (127.0.0.1 inside 2002:7f00:1::1)"),  # 6to4
        ("64:ff9b::a00:1", "private address (10.0.0.1 inside 64:ff9b::a00:1)"),  # NAT64
    ],
)
def test_a_non_public_address_is_refused_naming_what_it_is(address: str, reason: str):
    assert refusal(ip_address(address)) == f"a {reason}"


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_a_public_address_may_receive_webhooks(address: str):
    assert refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://[::1]/x",
        "http://[::ffff:7f00:1]:8080/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/x",  # 127.0.0.1 written as one number, as resolvers read it
        "http://localhost:8000/x",  # a name that resolves to loopback
    ],
)
async def test_a_url_that_is_or_resolves_to_a_non_public_address_is_refused(url: str):
    with pytest.raises(TargetRefused, match="public addresses only"):
        await resolve(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/x", "file:///etc/passwd", "gopher://a/"])
async def test_only_http_and_https_urls_receive_webhooks_even_when_private_is_allowed(url: str):
    with pytest.raises(TargetRefused, match="only http and https"):
        await resolve(url, allow_private=True)


async def test_a_host_without_an_address_is_unresolved_not_refused():
    with pytest.raises(TargetUnresolved, match=r"nowhere\.invalid does not resolve"):
        await resolve("https://nowhere.invalid/hook", allow_private=False)


async def test_a_public_address_is_posted_to_as_written():
    target = await resolve("https://93.184.216.34:8443/hook?x=1", allow_private=False)
    assert target == Target(httpx.URL("https://93.184.216.34:8443/hook?x=1"))


async def test_allowing_private_targets_lets_a_local_receiver_through_without_a_lookup():
    target = await resolve("http://localhost:8000/hooks/a", allow_private=True)
    assert target == Target(httpx.URL("http://localhost:8000/hooks/a"))


def test_a_name_is_posted_to_the_checked_address_keeping_its_name_for_host_and_tls():
    target = pinned(httpx.URL("https://hooks.example.com:8443/t?a=1"), ip_address("93.184.216.34"))
    assert str(target.url) == "https://93.184.216.34:8443/t?a=1"
    assert target.headers == {"Host": "hooks.example.com:8443"}
    assert target.extensions == {"sni_hostname": "hooks.example.com"}

    v6 = pinned(httpx.URL("http://hooks.example.com/t"), ip_address("2606:4700::1111"))
    assert str(v6.url) == "http://[2606:4700::1111]/t"
    assert v6.headers == {"Host": "hooks.example.com"} and v6.extensions == {}


def test_private_targets_are_refused_unless_the_setting_allows_them(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("TOLLGATE_WEBHOOK_ALLOW_PRIVATE", raising=False)
    assert Settings().webhook_allow_private is False
    monkeypatch.setenv("TOLLGATE_WEBHOOK_ALLOW_PRIVATE", "true")
    assert Settings().webhook_allow_private is True
