"""Baseline for bench/locust_viewers.py: a plain FastHttpUser fetching the viewer's URLs
(multivariant, media playlist, init) at a fixed rate, with no player logic."""

from __future__ import annotations

import os

from locust import constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

MASTER_PATH = os.environ.get("LIVETWIN_HLS_MASTER", "/hls/demo/master.m3u8")
MEDIA_PATH = os.environ.get("LIVETWIN_PLAIN_MEDIA", "/hls/demo/160p30/index.m3u8")


class PlainFetcher(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("LIVETWIN_PLAIN_RPS", "6")))

    @task(1)
    def master(self) -> None:
        self.client.get(MASTER_PATH, name="multivariant")

    @task(10)
    def media(self) -> None:
        self.client.get(MEDIA_PATH, name="media-playlist")
