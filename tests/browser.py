"""A real headless Chromium for the HTML report's tests, started offline, and a PNG
reader (zlib only) to tell a screenshot from a blank page.

Chromium comes from Debian's ``chromium`` package (.ci/run installs it); the tests
that need it skip, saying so, only where it cannot be found.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

# The flags the issue asks for: no network, no first-run work, a new empty profile.
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Appended to a copy of a report: after load, says how many chains the browser laid
# out with a size (every step box and every hop line drawn), for --dump-dom to show.
PROBE = """<script>
(function(){
  var drawn=0, all=document.querySelectorAll('svg.chain');
  all.forEach(function(svg){
    var r=svg.getBoundingClientRect();
    var boxes=svg.querySelectorAll('g.step rect');
    var ok=r.width>0&&r.height>0&&boxes.length>0;
    boxes.forEach(function(b){var bb=b.getBBox(); ok=ok&&bb.width>0&&bb.height>0;});
    svg.querySelectorAll('g.hop line').forEach(function(l){ok=ok&&l.getBBox().height>0;});
    if(ok)drawn++;
  });
  document.body.setAttribute('data-chains',all.length);
  document.body.setAttribute('data-drawn',drawn);
})();
</script>"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _run(page: Path, *flags: str, timeout: int = 120,
         fragment: str = "") -> subprocess.CompletedProcess[str]:
    exe = chromium()
    assert exe is not None
    with tempfile.TemporaryDirectory(prefix="nofslint-chromium-") as profile:
        return subprocess.run(
            [exe, *OFFLINE, f"--user-data-dir={profile}", *flags,
             page.resolve().as_uri() + (f"#{fragment}" if fragment else "")],
            capture_output=True, text=True, timeout=timeout, check=True,
            env={**os.environ, "HOME": profile})


def dump_dom(page: Path, fragment: str = "") -> str:
    """The DOM after load (scripts run), the page opened at ``#fragment`` if given."""
    return _run(page, "--dump-dom", fragment=fragment).stdout


def screenshot(page: Path, out: Path, width: int = 1000, height: int = 1200,
               scale: float = 1.0) -> bytes:
    """A PNG of the page's first screen, ``width`` x ``height`` CSS pixels drawn at
    ``scale`` (0.8: a smaller file that still shows a whole chain)."""
    _run(page, f"--screenshot={out.resolve()}", f"--window-size={width},{height}",
         f"--force-device-scale-factor={scale}", "--hide-scrollbars")
    return out.read_bytes()


def png_colours(data: bytes, limit: int = 64) -> set[tuple[int, ...]]:
    """The distinct pixel colours of an 8-bit RGB(A) PNG (at most ``limit`` collected)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert header is not None
    width, height, depth, colour_type = header[:4]
    assert depth == 8 and colour_type in (2, 6), f"unexpected PNG format {header}"
    channels = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[tuple[int, ...]] = set()
    for y in range(height):
        row = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        line = _unfilter(row[0], bytearray(row[1:]), previous, channels)
        for x in range(0, stride, channels * 7):  # every 7th pixel: enough to see a page
            colours.add(tuple(line[x:x + channels]))
            if len(colours) >= limit:
                return colours
        previous = line
    return colours


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    if kind == 0:
        return line
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up = prev[i]
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
        elif kind == 4:
            corner = prev[i - bpp] if i >= bpp else 0
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + pred) & 0xFF
    return line
