"""Open a report in a real headless browser (Chromium or Chrome) and read back what it rendered.

``report.html`` marks its ``<body>`` with ``data-images`` (how many images the page has) and
``data-images-ok`` (whether every one decoded) once loaded; this module runs the browser with
``--dump-dom`` and parses those attributes and the title from the DOM it printed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from interpretgan.errors import RunError

#: Executable names tried in order (``INTERPRETGAN_BROWSER`` overrides).
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    """The headless-capable browser to use: ``$INTERPRETGAN_BROWSER`` or the first of :data:`BROWSERS` on PATH."""
    explicit = os.environ.get("INTERPRETGAN_BROWSER")
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def check_in_browser(path: str | Path, *, browser: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Render ``path`` headless; return ``{"browser", "title", "images", "images_ok", "tables", "bytes"}``.

    Raises RunError when no browser is found or the page could not be rendered.
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise RunError(f"{path} does not exist; expected a report.html")
    exe = browser or find_browser()
    if exe is None:
        raise RunError("no headless browser found; install chromium or set INTERPRETGAN_BROWSER to one")
    with tempfile.TemporaryDirectory() as profile:  # a fresh profile: no state shared with a user's browser
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
               "--virtual-time-budget=5000", "--dump-dom", path.as_uri()]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RunError(f"{exe} did not render {path} within {timeout:.0f} s") from None
    dom = proc.stdout
    body = re.search(r"<body([^>]*)>", dom)
    if proc.returncode != 0 or body is None:
        raise RunError(f"{exe} could not render {path} (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    return {"browser": exe, "title": title.group(1) if title else None,
            "images": int(attrs.get("data-images", -1)), "images_ok": attrs.get("data-images-ok") == "true",
            "tables": dom.count("<table"), "bytes": path.stat().st_size}
