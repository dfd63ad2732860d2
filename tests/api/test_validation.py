"""Request-body parsing: any bytes give a value or a 4xx ApiError, never another exception."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.api.errors import ApiError, ValidationError
from live.api.validation import (
    NAME_PATTERN,
    PASSWORD_MAX,
    PASSWORD_MIN,
    TITLE_MAX,
    channel_name_from_path,
    check_title,
    parse_channel_create,
    parse_channel_update,
    parse_credentials,
    parse_json,
    parse_page,
)

LIMIT = 16 * 1024
names = st.from_regex(re.compile(NAME_PATTERN), fullmatch=True)
passwords = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                    min_size=PASSWORD_MIN, max_size=PASSWORD_MAX)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_parse_or_fail_as_a_client_error(raw: bytes) -> None:
    try:
        body = parse_json(raw, LIMIT)
    except ApiError as error:
        assert 400 <= error.status < 500
        return
    for parse in (parse_credentials, parse_channel_create, parse_channel_update):
        try:
            parse(body)
        except ValidationError as error:
            assert error.status == 400 and error.field


@settings(max_examples=200)
@given(json_values)
def test_any_json_document_is_parsed_or_refused_with_a_named_field(value: object) -> None:
    body = parse_json(json.dumps(value).encode(), LIMIT)
    assert body == value
    for parse in (parse_credentials, parse_channel_create, parse_channel_update):
        try:
            parse(body)
        except ValidationError as error:
            assert error.body()["field"] == error.field and error.body()["error"] == "invalid_field"


@settings(max_examples=100)
@given(names, passwords)
def test_valid_credentials_round_trip(username: str, password: str) -> None:
    raw = json.dumps({"username": username, "password": password}).encode()
    credentials = parse_credentials(parse_json(raw, LIMIT))
    assert (credentials.username, credentials.password) == (username, password)


@settings(max_examples=100)
@given(names)
def test_channel_names_are_stored_lower_case_and_found_in_any_case(name: str) -> None:
    created = parse_channel_create({"name": name})
    assert created.name == name.lower()
    assert channel_name_from_path(name.upper()) == created.name


@pytest.mark.parametrize("name", ["ab", "a" * 26, "has-dash", "dot.name", "ümlaut", "sp ace", "", "abc\n"])
def test_names_outside_the_rule_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_credentials({"username": name, "password": "long enough"})
    assert caught.value.field == "username"
    assert channel_name_from_path(name) is None


def test_bodies_over_the_limit_are_413_even_if_well_formed() -> None:
    with pytest.raises(ApiError) as caught:
        parse_json(b'{"a": "' + b"x" * LIMIT + b'"}', LIMIT)
    assert caught.value.status == 413


@pytest.mark.parametrize(("raw", "reason"), [
    (b"[" * 3000 + b"]" * 3000, "nests too deeply"),
    (b'{"a": Infinity}', "malformed"),
    (b"\xff", "not UTF-8"),
    (b"   ", "required"),
])
def test_hostile_json_is_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_json(raw, LIMIT)
    assert caught.value.field == "body" and reason in caught.value.message


def test_titles_are_trimmed_bounded_and_free_of_control_characters() -> None:
    assert check_title("  Speedrun  ") == "Speedrun"
    assert check_title("é" * TITLE_MAX) == "é" * TITLE_MAX
    for bad in ("x" * (TITLE_MAX + 1), " " * (TITLE_MAX + 1), "bell\x07", "nul\x00", "c1\x85", "lone \ud800",
                "trailing newline\n"):
        with pytest.raises(ValidationError):
            check_title(bad)


def test_passwords_with_nul_or_lone_surrogates_are_refused() -> None:
    for bad in ("abc\x00defgh", "abcdefgh\udc00"):
        with pytest.raises(ValidationError) as caught:
            parse_credentials({"username": "someone", "password": bad})
        assert caught.value.field == "password"


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["limit", "after", "other"]), st.text(max_size=30)))
def test_page_queries_parse_within_bounds_or_name_the_bad_parameter(query: dict[str, str]) -> None:
    try:
        page = parse_page(query)
    except ValidationError as error:
        assert error.field in ("limit", "after")
        return
    assert 1 <= page.limit <= 100
    assert page.after is None or page.after == page.after.lower()
