"""Tokens, stream keys and password hashing."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import argon2
import pytest
from live.api.auth import Passwords, bearer_token, new_stream_key, new_token, token_hash
from live.api.repository import Repository
from live.config import ChannelSeed


def test_tokens_carry_256_random_bits_and_hash_with_plain_sha256() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)  # base64url of 32 bytes
        assert token_hash(token) == hashlib.sha256(token.encode()).digest()


def test_stream_keys_are_random_and_accepted_by_the_cli_seed_rule() -> None:
    keys = {new_stream_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert key.startswith("live_")
        assert ChannelSeed.parse(f"somechan={key}").stream_key == key


@pytest.mark.parametrize(("header", "token"), [
    ("Bearer abc", "abc"), ("bearer   abc  ", "abc"), ("BEARER abc", "abc"),
    (None, None), ("", None), ("Bearer", None), ("Bearer ", None), ("Basic abc", None),
    ("Bearer " + "a" * 257, None),
])
def test_bearer_header_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


async def test_passwords_verify_only_the_right_password() -> None:
    passwords = Passwords()
    stored = await passwords.hash("the right one")
    assert stored.startswith("$argon2id$")
    assert await passwords.verify(stored, "the right one")
    assert not await passwords.verify(stored, "the wrong one")
    assert not await passwords.verify("not a hash", "the right one")
    assert not await passwords.verify(None, "the right one")  # unknown user: work done, answer no
    assert not passwords.needs_rehash(stored)


async def test_a_weaker_stored_hash_is_upgraded_on_login(make_client: Any, repo: Repository) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    await repo.create_account("oldtimer", weak.hash("an old password"))
    client = await make_client()
    login = {"username": "oldtimer", "password": "an old password"}
    status, _ = await client.call("POST", "/sessions", json=login)
    assert status == 201
    found = await repo.account_by_username("oldtimer")
    assert found is not None
    assert not client.api.passwords.needs_rehash(found[1])
    assert argon2.PasswordHasher().verify(found[1], "an old password")
