"""The browser suites share two cores between Chromium, the transcoder and the publisher.

A player's timing on such a machine depends on what else ran that second, so every test that
drives Chromium gets one rerun: a rerun is reported (``R`` in the summary, ``RERUN`` with -rA),
so a flaky test stays visible, while a real regression fails both runs. Known gaps that fail
every run are marked ``xfail`` in their own module, with the open issue that tracks them.
"""

from __future__ import annotations

import pytest

#: Modules whose tests play in headless Chromium.
BROWSER_MODULES = ("test_browser_playback", "test_browser_ads", "test_cdn_playback", "test_dash_playback",
                   "test_dvr_rewind", "test_srt_playback", "test_webrtc_browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        name = module.__name__.rsplit(".", 1)[-1] if module is not None else ""
        if name in BROWSER_MODULES:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))
