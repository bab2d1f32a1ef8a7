"""The debrief for slides: printed to PDF, and each chart as a PNG, by headless Chromium.

Debian's Chromium does both from the command line (`--print-to-pdf`, `--screenshot`), so
majlis needs no browser library at run time and never downloads a browser. Each chart is
photographed from a page of its own holding only its SVG, at twice the pixel density, so
the image is exactly the chart and sharp on a projector. Chromium runs with a fresh profile
in a temporary folder, offline (the pages load nothing), and a time limit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import UserError

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
]
SCALE = 2
TIMEOUT = 120
_CHART = re.compile(r'<svg [^>]*id="chart-([a-z]+)"[^>]*>.*?</svg>', re.DOTALL)
_SIZE = re.compile(r'width="(\d+)" height="(\d+)"')


def find_chromium() -> Path:
    """$MAJLIS_CHROMIUM, else the first Chromium or Chrome on the PATH; else a UserError."""
    given = os.environ.get("MAJLIS_CHROMIUM")
    found = given if given else next((p for n in NAMES if (p := shutil.which(n))), None)
    if not found or not Path(found).is_file():
        where = f" at {given} (MAJLIS_CHROMIUM)" if given else ""
        raise UserError(
            f"Chromium is needed for --pdf and --png and was not found{where}: "
            "install it (apt-get install chromium) or set MAJLIS_CHROMIUM to its path"
        )
    return Path(found)


def export_debrief(html_path: Path, pdf: bool = False, png: bool = False) -> list[Path]:
    """debrief.pdf and debrief-<chart>.png beside the debrief's HTML; the paths written."""
    if not (pdf or png):
        return []
    chromium = find_chromium()
    folder, written = html_path.parent, []
    if pdf:
        written.append(print_pdf(chromium, html_path, folder / f"{html_path.stem}.pdf"))
    if png:
        text = html_path.read_text(encoding="utf-8")
        for match in _CHART.finditer(text):
            out = folder / f"{html_path.stem}-{match.group(1)}.png"
            written.append(screenshot(chromium, match.group(0), out))
    return written


def print_pdf(chromium: Path, html_path: Path, out: Path) -> Path:
    _chromium(chromium, ["--no-pdf-header-footer", f"--print-to-pdf={out}"], html_path, out)
    return out


def screenshot(chromium: Path, svg: str, out: Path) -> Path:
    """One chart, alone on a page its own size, as a PNG."""
    size = _SIZE.search(svg)
    width, height = (int(size.group(1)), int(size.group(2))) if size else (720, 360)
    page = (  # nothing may load or run; one inline rule takes the body's margin away
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<style>body{{margin:0}}svg{{display:block}}</style></head><body>{svg}</body></html>"
    )
    with tempfile.TemporaryDirectory(prefix="majlis-chart-") as tmp:
        source = Path(tmp) / "chart.html"
        source.write_text(page, encoding="utf-8")
        args = [
            f"--window-size={width},{height}",
            f"--force-device-scale-factor={SCALE}",
            f"--screenshot={out}",
        ]
        _chromium(chromium, args, source, out)
    return out


def _chromium(chromium: Path, args: list[str], page: Path, out: Path) -> None:
    """Run Chromium on `page` and check that it wrote `out`; a UserError saying why not."""
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="majlis-chromium-") as profile:
        argv = [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            done = subprocess.run(
                [*argv, page.resolve().as_uri()], capture_output=True, text=True, timeout=TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise UserError(f"{chromium} took over {TIMEOUT}s to write {out}") from None
        except OSError as exc:
            raise UserError(f"cannot start {chromium}: {exc.strerror}") from None
    if not out.is_file() or out.stat().st_size == 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"{chromium} did not write {out} (exit {done.returncode}): {last}")
