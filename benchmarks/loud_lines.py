"""Which big lines of lettering the builtin describer counts as loud, and which it reads as headings.

For every page of the folders, archives or PDFs given (default: tests/data/pages and samples/), prints each loud line
(big for its page: sound effects, shouts, titles), what PP-OCR's recogniser read in it, and whether it is left out
of the loud lettering as a heading (a title, a credit, a sign: ordinary words, no "!" or "?" in its text region;
see manga2music/describers/text_recognition.py).  Use it to check the rule on your own pages: every line marked
"heading" should be one.

    python benchmarks/loud_lines.py [DIR ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def loud_lines(folders: list[Path]) -> dict:
    """``{"pages": [{"page", "lines": [{"text", "heading", "area"}]}], "loud": n, "read": n, "headings": n}``.

    Pages are found and decoded as ``run`` does (folders, archives, PDFs; a tall strip cut into tiles, each tile
    at most the builtin describer's ``page_side``), so the lines are the ones the describer weighs."""
    import numpy as np

    from manga2music.describers.builtin import BuiltinDescriber
    from manga2music.describers.text_detect import detect_text
    from manga2music.describers.text_recognition import headings
    from manga2music.errors import PageError
    from manga2music.pages import decode_page, probe_page
    from manga2music.reading import big_lines_read, loud_height
    from manga2music.sections import find_sections

    pages, loud_total, read_total, heading_total = [], 0, 0, 0
    for section in find_sections(folders):
        for page in section.pages:
            label = f"{section.name}/{page.name}"
            try:
                tiles = decode_page(probe_page(page), max_side=BuiltinDescriber.page_side)
            except PageError as err:
                print(f"skipped: {err}", file=sys.stderr)
                continue
            lines = []
            for tile in tiles:
                rgb = np.asarray(tile)
                boxes = big_lines_read(rgb, detect_text(rgb))
                loud = loud_height(boxes, tile.size)
                quiet = headings(boxes)
                area = float(rgb.shape[0] * rgb.shape[1])
                lines += [{"text": b.text, "heading": i in quiet, "area": round(b.width * b.height / area, 4)}
                          for i, b in enumerate(boxes) if b.thickness >= loud]
            loud_total += len(lines)
            read_total += sum(bool(line["text"]) for line in lines)
            heading_total += sum(line["heading"] for line in lines)
            if lines:
                pages.append({"page": label, "lines": lines})
    return {"pages": pages, "loud": loud_total, "read": read_total, "headings": heading_total}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path,
                        help="folders, archives or PDFs of pages, as for manga2music run")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    folders = args.folders or [REPO / "tests" / "data" / "pages", REPO / "samples"]
    missing = [str(f) for f in folders if not f.exists()]
    if missing:
        raise SystemExit(f"loud_lines: no such file or folder: {missing[0]}")
    result = loud_lines(folders)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    for page in result["pages"]:
        print(page["page"])
        for line in page["lines"]:
            verdict = "heading (not loud)" if line["heading"] else "loud"
            print(f"  {verdict:18s} {line['area']:.3f} of the page  {line['text'] or '(not read)'}")
    print(f"\n{result['loud']} loud lines, {result['read']} read, {result['headings']} left out as headings")


if __name__ == "__main__":
    main()
