"""Signed file URLs: valid until they expire, bound to their file, absolute when configured."""

from __future__ import annotations

from lowart.security.signing import UrlSigner


def test_signed_urls_expire_and_are_bound_to_their_file() -> None:
    signer = UrlSigner(b"k" * 32, ttl_s=60)
    exp, sig = signer.sign("file_a", now=1000.0)
    assert exp == 1060
    assert signer.verify("file_a", str(exp), sig, now=1059.0)
    assert not signer.verify("file_a", str(exp), sig, now=1061.0)
    assert not signer.verify("file_b", str(exp), sig, now=1000.0)
    assert not signer.verify("file_a", str(exp + 1), sig, now=1000.0)
    assert not signer.verify("file_a", None, sig, now=1000.0)
    assert not UrlSigner(b"x" * 32, ttl_s=60).verify("file_a", str(exp), sig, now=1000.0)


def test_urls_are_relative_or_under_the_public_base() -> None:
    relative = UrlSigner(b"k" * 32, ttl_s=60).url("file_a", now=0.0)
    assert relative.startswith("/v1/files/file_a?exp=60&sig=")
    absolute = UrlSigner(b"k" * 32, 60, "https://gw.example/").url("file_a", now=0.0)
    assert absolute.startswith("https://gw.example/v1/files/file_a?exp=60&sig=")
