"""What one page costs the builtin describer: text detection plus pixel measurements, per page.

Times ``manga2music.reading.read_page`` on every page of tests/data/pages (850 x 1200
JPEGs) and on samples/, in a fresh process: the first page also pays the imports and
the text model's loading.  The baseline, measured in the same run on the same pages,
is the pixel measurements alone (no text detection).  ``read_pages_per_page_s`` is the
same pages read as one section, the way the describer reads them (the tiles read on
threads, one per core: ``reading.iter_readings``), with no reading kept between runs;
``read_pages_keeping_per_page_s`` the same with readings kept (read, hashed, written) and
``read_pages_found_per_page_s`` read once more, every reading found (``found_ratio_vs_read``
against the first).  ``detector_median_s`` is the text detector
alone on each page, as it runs (denormal floats flushed to zero on its thread), and
``detector_denormals_kept_median_s`` the same network run as it was before 2026-12-01,
alternated page by page (see ``manga2music/describers/denormals.py``).  Target (issue
#15): under 1.5 s a page on 2 CPU cores.

    python benchmarks/page_cost.py
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    os.environ["MANGA2MUSIC_READING_CACHE"] = "off"  # every page read, as timed; kept readings: cache_costs()
    t0 = time.perf_counter()
    from PIL import Image

    from manga2music.describers import denormals
    from manga2music.describers.page_features import measure_page
    from manga2music.pages import tile_strip
    from manga2music.reading import read_page, read_pages

    import_s = time.perf_counter() - t0
    images = []
    for path in sorted((REPO / "tests" / "data" / "pages").glob("*/*.jpg")) + sorted((REPO / "samples").glob("*/*")):
        with Image.open(path) as raw:
            images += [(path.name, tile) for tile in tile_strip(raw.convert("RGB"))]
    first_t = time.perf_counter()
    read_page(images[0][1], images[0][0])
    first_s = time.perf_counter() - first_t
    full, pixels = [], []
    for name, image in images:
        t = time.perf_counter()
        measure_page(image)
        pixels.append(time.perf_counter() - t)
        t = time.perf_counter()
        read_page(image, name)
        full.append(time.perf_counter() - t)
    t = time.perf_counter()
    read_pages(images)  # what the describer does: the tiles read on threads, one per core
    section_s = (time.perf_counter() - t) / len(images)
    keeping_s, found_s = cache_costs(images)
    flushed, kept = detector_costs([image for _, image in images])
    med_full, med_pix = statistics.median(full), statistics.median(pixels)
    print(json.dumps({
        "pages": len(images), "import_s": round(import_s, 3), "first_page_s": round(first_s, 3),
        "read_page_median_s": round(med_full, 3), "read_page_max_s": round(max(full), 3),
        "read_pages_per_page_s": round(section_s, 3),
        "read_pages_keeping_per_page_s": round(keeping_s, 3),
        "read_pages_found_per_page_s": round(found_s, 4),
        "found_ratio_vs_read": round(found_s / section_s, 3),
        "pixels_only_median_s": round(med_pix, 3), "ratio_vs_pixels_only": round(med_full / med_pix, 2),
        "detector_median_s": round(statistics.median(flushed), 3),
        "detector_denormals_kept_median_s": round(statistics.median(kept), 3),
        "detector_ratio_vs_denormals_kept": round(statistics.median(flushed) / statistics.median(kept), 2),
        "denormals_flushed_here": denormals.supported(),
        "target_s": 1.5,
    }, indent=2))


def cache_costs(images) -> tuple[float, float]:
    """Seconds a page for the same section read with readings kept (:mod:`manga2music.reading_cache`, in an empty
    folder: each page read, hashed and written), then read again (each reading found)."""
    from manga2music import reading_cache
    from manga2music.reading import read_pages

    with tempfile.TemporaryDirectory() as folder:
        os.environ["MANGA2MUSIC_READING_CACHE"] = folder
        try:
            t = time.perf_counter()
            read_pages(images)
            keeping = time.perf_counter() - t
            t = time.perf_counter()
            read_pages(images)
            found = time.perf_counter() - t
            assert len(list(Path(folder).glob("*/*.json"))) == len({reading_cache.page_key([im]) for _, im in images})
        finally:
            os.environ["MANGA2MUSIC_READING_CACHE"] = "off"
    return keeping / len(images), found / len(images)


def detector_costs(images) -> tuple[list[float], list[float]]:
    """The text detector on each page at its detection scale (text_detect's own steps, without the box rules that
    follow): as it runs, and with denormals kept."""
    import contextlib

    import numpy as np

    from manga2music.describers import denormals, text_detect

    engine, real = text_detect.detector(), denormals.flushed
    flushed, kept = [], []
    for image in images:
        rgb = np.asarray(image)
        scale = text_detect.detection_scale(rgb.shape)
        for times, context in ((flushed, real), (kept, contextlib.nullcontext)):
            denormals.flushed = context
            try:
                t = time.perf_counter()
                text_detect._detect_at(engine, rgb, scale)
                times.append(time.perf_counter() - t)
            finally:
                denormals.flushed = real
    return flushed, kept


if __name__ == "__main__":
    main()
