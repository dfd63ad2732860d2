"""The pure parts: settings checks, the generated text (and nginx -t on it), the metrics parsers."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from live.cdn.config import Listen, NodeSettings, Role, TlsFiles, Upstream, render
from live.cdn.launcher import ClusterSettings, plan
from live.cdn.metrics import LogTail, NodeCounters, parse_log_line, parse_stub_status, render_prometheus
from live.cli import main

from .conftest import require_nginx

SHIELDS = (Upstream.parse("http://10.0.0.1:8080"), Upstream.parse("http://10.0.0.2:8080"))


def nginx_test(config: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    require_nginx()
    path = tmp_path / "nginx.conf"
    path.write_text(config)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(path), "-e",
                           str(tmp_path / "error.log")], capture_output=True, text=True)


def test_upstreams_and_listen_addresses_are_checked() -> None:
    assert Upstream.parse("127.0.0.1:8080") == Upstream("127.0.0.1", 8080, "http")
    assert Upstream.parse("https://[::1]:8443").address == "[::1]:8443"
    for bad in ("ftp://a:1", "http://a:1/hls", "http://a:1?x=1", "http://u:p@a:1", "http://a b:1"):
        with pytest.raises(ValueError):
            Upstream.parse(bad)
    assert Listen.parse("8090") == Listen("127.0.0.1", 8090)
    assert Listen.parse("0.0.0.0:443").address == "0.0.0.0:443"
    with pytest.raises(ValueError):
        Listen.parse("host:99999")


def test_settings_refuse_what_would_break_the_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one upstream"):
        NodeSettings(Role.EDGE, ())
    with pytest.raises(ValueError, match="same scheme"):
        NodeSettings(Role.EDGE, (SHIELDS[0], Upstream.parse("https://b:1")))
    with pytest.raises(ValueError, match="cache size"):
        NodeSettings(Role.EDGE, SHIELDS, cache_size="lots")
    with pytest.raises(ValueError, match="not allowed"):
        NodeSettings(Role.EDGE, SHIELDS, cache_dir=Path("/tmp/a;b"))
    with pytest.raises(ValueError, match="TLS terminates at the edge"):
        NodeSettings(Role.SHIELD, SHIELDS, tls=TlsFiles(tmp_path / "c", tmp_path / "k"))


def test_edge_config_carries_the_ll_hls_rules() -> None:
    text = render(NodeSettings(Role.EDGE, SHIELDS, target_duration_s=4))
    for line in (
        "hash $livetwin_channel consistent;",
        "proxy_cache_key $uri$livetwin_args$livetwin_reload_slot;",
        "proxy_cache_lock on;",
        "proxy_cache_lock_timeout 14s;",  # 3 x 4 s + 2
        "proxy_cache_lock_age 14s;",
        "proxy_read_timeout 16s;",
        "proxy_next_upstream error timeout http_502 http_503 http_504;",
        "proxy_cache_valid 404 410 1s;",
        "proxy_ignore_headers Vary;",
        "gzip on;",
        "stub_status;",
        "server 10.0.0.1:8080 max_fails=1 fail_timeout=2s;",
    ):
        assert line in text, line
    assert "$args" not in text and "$request_uri;" not in text


def test_shield_prefers_its_first_origin_and_does_not_gzip() -> None:
    text = render(NodeSettings(Role.SHIELD, SHIELDS))
    assert "server 10.0.0.1:8080 max_fails=1 fail_timeout=2s;" in text
    assert "server 10.0.0.2:8080 backup;" in text
    assert "hash " not in text and "gzip on;" not in text


@pytest.mark.parametrize("role", list(Role))
def test_generated_configs_pass_nginx_t(role: Role, tmp_path: Path) -> None:
    settings = NodeSettings(role, SHIELDS, cache_dir=tmp_path / "cache", run_dir=tmp_path,
                            user="root" if os.geteuid() == 0 else None)
    result = nginx_test(render(settings), tmp_path)
    assert result.returncode == 0, result.stderr


def test_tls_edge_config_passes_nginx_t(tmp_path: Path) -> None:
    require_nginx()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=edge", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    text = render(NodeSettings(Role.EDGE, SHIELDS, cache_dir=tmp_path / "cache", run_dir=tmp_path,
                               tls=TlsFiles(cert, key)))
    assert "listen 127.0.0.1:8090 ssl http2;" in text
    result = nginx_test(text, tmp_path)
    assert result.returncode == 0, result.stderr


def test_live_cdn_config_prints_a_config_nginx_accepts(tmp_path: Path) -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["cdn", "config", "--role", "edge", "--upstream", "http://127.0.0.1:8401",
                     "--listen", "127.0.0.1:8490", "--cache-dir", str(tmp_path / "cache"),
                     "--run-dir", str(tmp_path), "--cache-size", "2g"])
    assert code == 0
    assert "max_size=2g" in out.getvalue()
    result = nginx_test(out.getvalue(), tmp_path)
    assert result.returncode == 0, result.stderr


def test_plan_puts_shields_first_and_points_edges_at_every_shield(tmp_path: Path) -> None:
    nodes = plan(ClusterSettings(origins=(Upstream.parse("http://127.0.0.1:8080"),),
                                 data_dir=tmp_path, shields=2, edges=3, base_port=9000))
    assert [(n.name, n.settings.listen.port) for n in nodes] == [
        ("shield0", 9000), ("shield1", 9001), ("edge0", 9002), ("edge1", 9003), ("edge2", 9004)]
    assert nodes[2].settings.upstreams == (Upstream("127.0.0.1", 9000), Upstream("127.0.0.1", 9001))
    assert nodes[0].settings.upstreams == (Upstream("127.0.0.1", 8080),)
    assert nodes[4].directory == tmp_path / "edge2"


def test_stub_status_and_log_lines_parse() -> None:
    stub = parse_stub_status("Active connections: 3 \nserver accepts handled requests\n 10 10 42 \n"
                             "Reading: 0 Writing: 1 Waiting: 2 \n")
    assert (stub.active, stub.accepts, stub.requests, stub.waiting) == (3, 10, 42, 2)
    with pytest.raises(ValueError):
        parse_stub_status("<html>")
    line = parse_log_line("1.5\t200\tHIT\tGET\t/hls/a/b.m3u8?_HLS_msn=1\t300\t0.001\t-\t-")
    assert line is not None and (line.status, line.cache_status, line.upstream_addr) == (200, "HIT", "-")
    assert parse_log_line("torn\tline") is None


def test_log_tail_waits_for_whole_lines_and_counters_render(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("1\t200\tHIT\tGET\t/a\t1\t0\t-\t-\n1\t200\tMISS\tGET\t/b\t1\t0\tx:1\t200\n1\t2")
    tail = LogTail(log)
    lines = [parse_log_line(t) for t in tail.read_lines()]
    assert len(lines) == 2 and tail.read_lines() == []
    with log.open("a") as out:
        out.write("00\t-\tGET\t/c\t1\t0\t-\t-\n")
    assert [t.split("\t")[1] for t in tail.read_lines()] == ["200"]
    counters = NodeCounters("edge0", Role.EDGE)
    counters.add(line for line in lines if line is not None)
    text = render_prometheus([counters])
    assert 'livetwin_cdn_responses_total{node="edge0",role="edge",cache="HIT",status="2xx"} 1' in text
    assert 'livetwin_cdn_hit_ratio{node="edge0",role="edge"} 0.500000' in text
