"""Playlist parsing and the fetch plan: every part played once, in order, whatever the reload timing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.selftest.hls_client import (
    ByteRange,
    Cursor,
    PlaylistError,
    Variant,
    blocking_reload_url,
    is_multivariant,
    parse_attributes,
    parse_media,
    parse_multivariant,
    pick_variant,
    plan,
    start_cursor,
)

BASE = "http://origin.test/hls/chan/"
names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-", min_size=1, max_size=12)
quoted = st.text(alphabet=st.characters(blacklist_characters='"\r\n', blacklist_categories=("Cs",)),
                 max_size=30)
tokens = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-x@", min_size=1,
                 max_size=12)


@given(st.dictionaries(names, st.one_of(quoted.map(lambda s: ("q", s)), tokens.map(lambda s: ("t", s))),
                       min_size=1, max_size=8))
@settings(max_examples=200)
def test_attribute_lists_round_trip_with_commas_inside_quotes(attrs: dict[str, tuple[str, str]]) -> None:
    text = ",".join(f'{k}="{v}"' if kind == "q" else f"{k}={v}" for k, (kind, v) in attrs.items())
    assert parse_attributes(text) == {k: v for k, (_, v) in attrs.items()}


@pytest.mark.parametrize("text", ["BANDWIDTH", 'URI="unterminated', "=5", "lower=1"])
def test_malformed_attribute_lists_are_the_servers_fault(text: str) -> None:
    with pytest.raises(PlaylistError):
        parse_attributes(text)


@pytest.mark.parametrize("text", ["", "not a playlist", "#EXTM3U\n#EXTINF:1,\n"])
def test_media_playlists_without_header_or_target_duration_are_refused(text: str) -> None:
    with pytest.raises(PlaylistError):
        parse_media(text, BASE)


def test_blocking_reload_url_sets_msn_and_part_and_keeps_other_query() -> None:
    url = blocking_reload_url("http://o/hls/c/720p.m3u8?token=abc&_HLS_msn=1", 41, 3)
    assert url == "http://o/hls/c/720p.m3u8?token=abc&_HLS_msn=41&_HLS_part=3"
    assert blocking_reload_url("http://o/a.m3u8", 7, None) == "http://o/a.m3u8?_HLS_msn=7"


def test_multivariant_variants_resolve_and_pick_by_bandwidth_name_or_height() -> None:
    text = ("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n"
            '#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"\n'
            "720p.m3u8\n"
            '#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=284x160,CODECS="avc1.42c00c,mp4a.40.2"\n'
            "160p.m3u8\n"
            '#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2"\naudio.m3u8\n')
    assert is_multivariant(text)
    variants = parse_multivariant(text, BASE + "master.m3u8")
    assert variants[0] == Variant(BASE + "720p.m3u8", 3_000_000, (1280, 720), "avc1.64001f,mp4a.40.2", "720p")
    assert pick_variant(variants, None).name == "160p"  # audio-only is never the "lowest" picture
    assert pick_variant(variants, "highest").name == "720p"
    assert pick_variant(variants, "160p").uri == BASE + "160p.m3u8"
    assert pick_variant(variants, "audio").name == "audio"
    with pytest.raises(LookupError):
        pick_variant(variants, "1080p")


def test_byte_ranges_without_offset_continue_the_previous_range() -> None:
    text = ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"all.mp4\",BYTERANGE=\"700@0\"\n"
            "#EXTINF:2,\n#EXT-X-BYTERANGE:1000@700\nall.mp4\n#EXTINF:2,\n#EXT-X-BYTERANGE:500\nall.mp4\n"
            "#EXT-X-ENDLIST\n")
    playlist = parse_media(text, BASE)
    assert [s.byterange for s in playlist.segments] == [ByteRange(700, 1000), ByteRange(1700, 500)]
    assert ByteRange(1700, 500).header() == "bytes=1700-2199"


# --- a model live LL-HLS stream, rendered the way an origin renders it ----------------------

@dataclass(frozen=True)
class Stream:
    parts_per_segment: tuple[int, ...]
    window: int  # segments listed
    part_window: int  # newest segments whose parts are listed

    @property
    def order(self) -> list[tuple[int, int]]:
        return [(m, i) for m, n in enumerate(self.parts_per_segment) for i in range(n)]

    def render(self, produced: int, ended: bool) -> str:
        """The playlist once the first ``produced`` parts exist (ended: no hint, ENDLIST)."""
        done = self.order[:produced]
        complete = [m for m, n in enumerate(self.parts_per_segment) if (m, n - 1) in done]
        partial = [i for m, i in done if m == len(complete)]
        listed = list(range(max(0, len(complete) - self.window + (1 if partial else 0)), len(complete)))
        first = listed[0] if listed else len(complete)
        lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:2", "#EXT-X-PART-INF:PART-TARGET=0.5",
                 "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}", '#EXT-X-MAP:URI="init.mp4"']
        newest = len(complete) + (1 if partial else 0)
        for m in [*listed, *([len(complete)] if partial else [])]:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:2026-11-24T10:00:{m * 2:02d}.000Z")
            count = self.parts_per_segment[m] if m in complete else len(partial)
            if m >= newest - self.part_window:
                for i in range(count):
                    indep = ",INDEPENDENT=YES" if i == 0 else ""
                    lines.append(f'#EXT-X-PART:DURATION=0.5,URI="{m}.{i}.m4s"{indep}')
            if m in complete:
                lines += ["#EXTINF:2.0,", f"{m}.m4s"]
        if ended:
            lines.append("#EXT-X-ENDLIST")
        elif produced < len(self.order):
            m, i = self.order[produced]
            lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{m}.{i}.m4s"')
        return "\n".join(lines) + "\n"


streams = st.builds(
    Stream,
    st.lists(st.integers(1, 4), min_size=1, max_size=8).map(tuple),
    st.integers(2, 6),
    st.integers(1, 3),
)


@given(streams, st.data())
@settings(max_examples=200, deadline=None)
def test_every_listed_part_parses_with_its_sequence_number(stream: Stream, data: st.DataObject) -> None:
    produced = data.draw(st.integers(1, len(stream.order)))
    playlist = parse_media(stream.render(produced, ended=False), BASE + "v.m3u8")
    last_m, last_i = stream.order[produced - 1]
    last = playlist.segments[-1]
    assert last.msn == last_m
    assert playlist.can_block_reload and playlist.part_target == 0.5
    if last.uri is None:
        assert len(last.parts) == last_i + 1 and playlist.next_position == (last_m, last_i + 1)
    else:
        assert last.uri == f"{BASE}{last_m}.m4s" and playlist.next_position == (last_m + 1, 0)
    for seg in playlist.segments:
        assert all(p.uri == f"{BASE}{seg.msn}.{i}.m4s" for i, p in enumerate(seg.parts))
        assert seg.map_uri == BASE + "init.mp4"
    msns = [s.msn for s in playlist.segments]
    assert msns == list(range(msns[0], msns[0] + len(msns)))
    if produced < len(stream.order):
        hint = playlist.preload_hint
        assert hint is not None and hint.uri == "{}{}.{}.m4s".format(BASE, *stream.order[produced])


def expand(stream: Stream, msn: int, part: int | None) -> list[tuple[int, int]]:
    if part is None:
        return [(msn, i) for i in range(stream.parts_per_segment[msn])]
    return [(msn, part)]


@given(streams, st.data())
@settings(max_examples=200, deadline=None)
def test_a_player_plays_every_part_once_in_order_however_reloads_and_hints_interleave(
    stream: Stream, data: st.DataObject
) -> None:
    """Reload at arbitrary moments, sometimes taking the preload hint: no repeats, no holes."""
    total = len(stream.order)
    produced = data.draw(st.integers(1, total))
    playlist = parse_media(stream.render(produced, ended=False), BASE)
    cursor = start_cursor(playlist)
    start = stream.order.index((cursor.msn, cursor.part))
    played: list[tuple[int, int]] = []
    hinted: dict[str, tuple[int, int]] = {}
    skipped = 0
    while True:
        steps = plan(playlist, cursor, hinted)
        skipped += steps.skipped_segments
        cursor = steps.cursor
        for item in steps.fetches:
            if not item.is_marker and item.uri not in hinted:
                played += expand(stream, item.msn, item.part)
            cursor = cursor.after(item)
        if playlist.endlist:
            break
        took_hint = playlist.preload_hint is not None and data.draw(st.booleans(), label="take hint")
        if took_hint:
            assert playlist.preload_hint is not None
            position = stream.order[produced]
            hinted[playlist.preload_hint.uri] = position
            played.append(position)
        # the blocking reload returns once the next part exists; a slow player sees more
        produced = min(total, produced + data.draw(st.integers(1, 1 if took_hint else 4), label="advance"))
        playlist = parse_media(stream.render(produced, ended=produced == total), BASE)
    assert played == sorted(set(played)), "a part played twice or out of order"
    remaining = stream.order[start:]
    assert set(played) <= set(remaining), "a part played that the stream never had"
    lost = {msn for msn, part in remaining if (msn, part) not in set(played)}
    assert len(lost) <= skipped, f"holes in segments {sorted(lost)} but {skipped} counted as skipped"


def test_a_finished_stream_starts_at_its_first_segment_and_a_live_one_at_its_newest_independent_part(
) -> None:
    stream = Stream((3, 3, 3), window=6, part_window=2)
    assert start_cursor(parse_media(stream.render(9, ended=True), BASE)) == Cursor(0, 0)
    assert start_cursor(parse_media(stream.render(7, ended=False), BASE)) == Cursor(2, 0)
    assert start_cursor(parse_media(stream.render(6, ended=False), BASE)) == Cursor(1, 0)


def test_a_player_that_fell_out_of_the_window_counts_the_segments_it_lost() -> None:
    stream = Stream((2,) * 8, window=2, part_window=1)
    playlist = parse_media(stream.render(16, ended=False), BASE)
    steps = plan(playlist, Cursor(3, 1), set())
    assert steps.skipped_segments == 3
    assert [(f.msn, f.part) for f in steps.fetches] == [(6, None), (7, None)]


def test_program_date_time_of_a_part_is_its_segments_plus_earlier_parts() -> None:
    stream = Stream((4, 4), window=3, part_window=2)
    playlist = parse_media(stream.render(6, ended=False), BASE)
    steps = plan(playlist, Cursor(1, 1), set())
    segment_start = playlist.segments[1].program_date_time
    assert segment_start is not None
    assert [(f.part, f.program_date_time) for f in steps.fetches] == [(1, segment_start + 0.5)]


GAPPED = """#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:10
#EXTINF:1.0,
10.m4s
#EXT-X-PART:DURATION=0.5,URI="11.0.m4s",GAP=YES
#EXT-X-PART:DURATION=0.5,URI="11.1.m4s",GAP=YES
#EXT-X-GAP
#EXTINF:1.0,
11.m4s
#EXT-X-PART:DURATION=0.5,URI="12.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="12.1.m4s"
"""


def test_gap_segments_and_parts_are_stepped_over_never_fetched() -> None:
    playlist = parse_media(GAPPED, BASE)
    assert [s.gap for s in playlist.segments] == [False, True, False]
    assert all(p.gap for p in playlist.segments[1].parts)
    whole = plan(playlist, Cursor(10), ())
    assert [(f.msn, f.part, f.uri.rsplit("/", 1)[-1]) for f in whole.fetches] == [
        (10, None, "10.m4s"), (11, None, ""), (12, 0, "12.0.m4s"), (12, 1, "12.1.m4s")]
    mid = plan(playlist, Cursor(11, 1), ())  # a player that had reached into the gap by parts
    assert [(f.msn, f.part, f.is_marker) for f in mid.fetches] == [
        (11, 1, True), (12, 0, False), (12, 1, False)]
    cursor = Cursor(11, 1)
    for fetch in mid.fetches:
        cursor = cursor.after(fetch)
    assert cursor == Cursor(12, 2)
