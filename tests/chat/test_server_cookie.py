"""The chat node's reading of the session cookie from a handshake's ``Cookie`` headers."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from live.api.websession import SESSION_COOKIE, origin_host_matches
from live.chat.server import _cookie
from websockets.datastructures import Headers


def _session(*lines: str) -> str | None:
    return _cookie(Headers([("Cookie", line) for line in lines]), SESSION_COOKIE)


def test_the_session_cookie_is_found_among_others_and_across_headers() -> None:
    assert _session(f"a=1; {SESSION_COOKIE}=tok-en_1; b=2") == "tok-en_1"
    assert _session("a=1", f"{SESSION_COOKIE}=x") == "x"
    assert _session(f'{SESSION_COOKIE}="quoted"') == "quoted"
    assert _session(f"x{SESSION_COOKIE}=no; {SESSION_COOKIE}x=no") is None
    assert _session(f"{SESSION_COOKIE}=") is None
    assert _session() is None


_PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)


@given(st.lists(st.text(alphabet=_PRINTABLE, max_size=200), max_size=4))
def test_any_cookie_header_parses_or_finds_nothing(lines: list[str]) -> None:
    found = _session(*lines)
    assert found is None or (found and ";" not in found)


def test_the_origin_must_name_the_chat_nodes_host_any_port() -> None:
    assert origin_host_matches("http://127.0.0.1:8080", "127.0.0.1:8081")
    assert origin_host_matches("https://watch.example", "watch.example:8081")
    assert origin_host_matches("http://[::1]:8080", "[::1]:8081")
    assert not origin_host_matches("http://evil.example", "watch.example:8081")
    assert not origin_host_matches("http://watch.example.evil", "watch.example:8081")
    assert not origin_host_matches("null", "watch.example:8081")
    assert not origin_host_matches(None, "watch.example:8081")
    assert not origin_host_matches("http://watch.example", None)
