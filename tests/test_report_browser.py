"""The report in a real headless Chromium: it renders, fetches nothing, logs no error.

Chromium is Debian's package (``/usr/bin/chromium``; ``.ci/run`` installs it when it
is missing); without it these tests are skipped, saying so. ``tests/browser.py``
drives it through the DevTools protocol on a pipe.
"""

from __future__ import annotations

import struct

import pytest
from browser import chromium_path, render

pytestmark = pytest.mark.skipif(
    chromium_path() is None,
    reason="Chromium is not installed (apt-get install -y chromium; .ci/run installs it)",
)


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_report_renders_offline_without_errors(titanic_result, titanic, tmp_path):
    from titanicml.report import build_report

    report = build_report(
        titanic_result, rows=titanic, targets=["accuracy>=0.8"], sensitive=["Sex", "Pclass"]
    )
    page = report.write(tmp_path / "report.html")
    shot = tmp_path / "report.png"
    seen = render(page, shot)
    assert seen.external_requests == []
    assert seen.console_errors == [] and seen.errors == []
    assert seen.title.startswith("Model report")
    for heading in ("Scorecard", "Data checks", "Leaderboard", "Performance", "Explanations",
                    "Fairness", "Error cohorts"):  # fmt: skip
        assert heading in seen.text
    assert seen.text.index("Scorecard") < seen.text.index("Data checks")
    width, height = _png_size(shot)
    assert width == 1280 and height == seen.height > 2000  # the whole page, not one screen


def test_the_check_sees_an_external_request_and_a_console_error(tmp_path):
    """The browser check can fail: a page that fetches and logs an error is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>bad</title>"
        '<link rel="stylesheet" href="http://127.0.0.1:9/style.css"></head>'
        "<body><p>text</p><script>console.error('broken'); missing();</script></body></html>",
        encoding="utf-8",
    )
    seen = render(page)
    assert "http://127.0.0.1:9/style.css" in seen.external_requests
    assert any("broken" in text for text in seen.console_errors)
    assert seen.errors  # the uncaught ReferenceError
