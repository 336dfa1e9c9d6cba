"""The KPI page renders in a real browser: headless Chromium screenshots it, and the picture is not blank."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from reports.html import write
from reports.kpi import compute
from tests.unit.test_kpi import NOW, ROWS, THRESHOLDS

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not Path(CHROMIUM).exists() and not shutil.which("chromium"),
                                 reason="Debian chromium (/usr/bin/chromium) is not installed")]


def png_colours(data: bytes, sample_rows: int = 400) -> int:
    """Distinct RGB colours in up to sample_rows rows of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, "unexpected PNG format"
    bpp = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    previous, colours = bytearray(stride), set()
    step = max(1, height // sample_rows)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):  # undo the PNG row filter
            a = line[i - bpp] if i >= bpp else 0
            b, c = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        if y % step == 0:
            colours.update(bytes(line[x:x + 3]) for x in range(0, stride, bpp))
        previous = line
    return len(colours)


def test_report_page_renders_in_chromium(tmp_path: Path) -> None:
    page = write(compute(ROWS, NOW, csat_thresholds=THRESHOLDS), tmp_path / "report.html")
    html = page.read_text(encoding="utf-8")
    for chart in ("trend", "heatmap", "backlog"):
        assert f'<svg id="{chart}"' in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html  # self-contained: no external assets

    shot = tmp_path / "report.png"
    chromium = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=1280,2000", f"--screenshot={shot}", page.as_uri()],
                   check=True, capture_output=True, timeout=300)
    assert shot.exists()
    data = shot.read_bytes()
    assert len(data) > 40_000  # a blank 1280x2000 page compresses to a few KB
    assert png_colours(data) > 50  # text, bars, heatmap cells and cards, not one flat colour
