"""API keys (format, hash, prefix) and the SecretBox that encrypts stored vendor keys."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from lowart.security.keys import (
    digests_match,
    display_prefix,
    generate_key,
    hash_key,
    new_id,
)
from lowart.security.secretbox import SecretBox, SecretDecryptError, generate_master_key

MASTER = "master-key-for-tests-0123456789abcdef"
OTHER_MASTER = "another-master-key-0123456789abcdefgh"
KEY_FORMAT = re.compile(r"lw-[A-Za-z0-9_-]{43}")


# --- API keys ------------------------------------------------------------------------------


def test_key_format() -> None:
    key = generate_key()
    assert KEY_FORMAT.fullmatch(key), key
    assert len(key) == 46


def test_key_carries_256_random_bits() -> None:
    body = generate_key().removeprefix("lw-")
    assert len(base64.urlsafe_b64decode(body + "=")) == 32


def test_keys_are_unique() -> None:
    keys = {generate_key() for _ in range(1000)}
    assert len(keys) == 1000


def test_hash_is_sha256_hex() -> None:
    key = "lw-" + "x" * 43
    digest = hash_key(key)
    assert digest == hashlib.sha256(key.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", digest)


def test_hash_differs_between_keys() -> None:
    assert hash_key(generate_key()) != hash_key(generate_key())


def test_hash_of_non_ascii_key_does_not_raise() -> None:
    # A presented key is untrusted text: hashing it must never fail, even with a lone surrogate.
    assert len(hash_key("lw-\ud800é")) == 64


def test_display_prefix_is_seven_characters() -> None:
    key = "lw-abcdEFGH" + "z" * 35
    assert display_prefix(key) == "lw-abcd"
    assert len(display_prefix(generate_key())) == 7


def test_digests_match() -> None:
    digest = hash_key("lw-one")
    assert digests_match(digest, hash_key("lw-one"))
    assert not digests_match(digest, hash_key("lw-two"))
    assert not digests_match(digest, digest[:-1])


def test_new_id() -> None:
    first, second = new_id("key"), new_id("key")
    assert re.fullmatch(r"key_[0-9a-f]{24}", first)
    assert first != second


# --- SecretBox -----------------------------------------------------------------------------


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(MASTER)


@pytest.mark.parametrize("plaintext", ["sk-live-abc123", "", "ключ 🔑", "x" * 10_000])
def test_round_trip(box: SecretBox, plaintext: str) -> None:
    sealed = box.encrypt(plaintext, "models.api_key:gpt")
    assert box.decrypt(sealed, "models.api_key:gpt") == plaintext


def test_same_master_key_decrypts_in_another_instance(box: SecretBox) -> None:
    sealed = box.encrypt("sk-shared", "ctx")
    assert SecretBox(MASTER).decrypt(sealed, "ctx") == "sk-shared"


def test_ciphertext_format_hides_the_plaintext(box: SecretBox) -> None:
    sealed = box.encrypt("sk-very-secret-value", "ctx")
    assert sealed.startswith("enc:v1:")
    assert "sk-very-secret-value" not in sealed
    assert "secret" not in sealed


def test_two_encryptions_differ(box: SecretBox) -> None:
    first = box.encrypt("sk-same", "ctx")
    second = box.encrypt("sk-same", "ctx")
    assert first != second
    raw_first = base64.urlsafe_b64decode(first.removeprefix("enc:v1:"))
    raw_second = base64.urlsafe_b64decode(second.removeprefix("enc:v1:"))
    assert raw_first[:12] != raw_second[:12]  # a fresh nonce each time


def test_wrong_master_key_is_refused(box: SecretBox) -> None:
    sealed = box.encrypt("sk-abc", "ctx")
    with pytest.raises(SecretDecryptError):
        SecretBox(OTHER_MASTER).decrypt(sealed, "ctx")


def test_wrong_context_is_refused(box: SecretBox) -> None:
    sealed = box.encrypt("sk-abc", "models.api_key:a")
    with pytest.raises(SecretDecryptError):
        box.decrypt(sealed, "models.api_key:b")


def test_tampered_ciphertext_is_refused(box: SecretBox) -> None:
    sealed = box.encrypt("sk-abc", "ctx")
    raw = bytearray(base64.urlsafe_b64decode(sealed.removeprefix("enc:v1:")))
    raw[-1] ^= 1
    tampered = "enc:v1:" + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SecretDecryptError):
        box.decrypt(tampered, "ctx")


@pytest.mark.parametrize(
    "stored",
    ["enc:v2:AAAA", "enc:", "enc:v1", "enc:v1:", "enc:v1:AAAA", "enc:v1:!!not-base64!!"],
)
def test_malformed_encrypted_values_are_refused(box: SecretBox, stored: str) -> None:
    with pytest.raises(SecretDecryptError):
        box.decrypt(stored, "ctx")


@pytest.mark.parametrize("plain", ["sk-plain-key", "", "ENC:not-ours", "v1:abc"])
def test_plain_value_is_returned_as_is(box: SecretBox, plain: str) -> None:
    assert box.decrypt(plain, "ctx") == plain


def test_signing_key_is_derived_and_distinct() -> None:
    first, again, other = SecretBox(MASTER), SecretBox(MASTER), SecretBox(OTHER_MASTER)
    assert len(first.signing_key) == 32
    assert first.signing_key == again.signing_key
    assert first.signing_key != other.signing_key


def test_generated_master_key_is_long_enough() -> None:
    key = generate_master_key()
    assert len(key) >= 32
    assert key != generate_master_key()
