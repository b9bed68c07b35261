"""Open report.html files in a real headless browser and check that they render with every figure.

    python scripts/check_report.py runs/reproduce-mnist-cpu/report.html [more.html ...]

Prints one JSON object per file (browser, title, images, images_ok, tables) and exits 1 when a
page fails to render or an image does not decode. Needs chromium or chrome on PATH (or
INTERPRETGAN_BROWSER).
"""

from __future__ import annotations

import argparse
import json
import sys

from interpretgan.errors import InterpretganError
from interpretgan.report.browser import check_in_browser


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+")
    args = parser.parse_args()
    ok = True
    for page in args.pages:
        try:
            seen = check_in_browser(page)
        except InterpretganError as err:
            print(f"check_report: error: {err}", file=sys.stderr)
            return 1
        ok &= seen["images_ok"] and seen["images"] > 0
        print(json.dumps({"page": page, **seen}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
