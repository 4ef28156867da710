"""Ingest costs added by issue 12, measured on files made here (nothing downloaded, no shared data
needed except the optional law corpus for the folding measurement).

    .venv/bin/python benchmarks/ingest_formats.py [--pages 4] [--laws ../shared/data/cn-laws-lawrefbook]

1. OCR: an image-only A4 PDF (150 dpi scans of 30 lines of Chinese each): pages/s and the share of
   lines recognised exactly.
2. PDF tables: the same 6-page text-layer PDF with ruled tables, read without and with the
   pdfplumber table pass (side by side, same run).
3. Traditional→Simplified folding: tokenising the law corpus (Simplified) and its s2t conversion,
   with ``fold_traditional`` off and on.
Prints one Markdown table per measurement, with the load average.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers.documents import revenue_rows, table_pdf, text_image  # noqa: E402

from zhiku.ingest.loaders import LoadOptions, load_bytes  # noqa: E402

LINE = "第{n}条 农业保险合同有效期内，保险机构应当及时支付保险金，年休假按照工龄计算。"


def scanned(pages: int, lines: int) -> tuple[bytes, list[list[str]]]:
    from PIL import Image

    texts = [[LINE.format(n=p * lines + i + 1) for i in range(lines)] for p in range(pages)]
    images = [Image.open(io.BytesIO(text_image(t, width=1240, size=26))).convert("RGB") for t in texts]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=150)
    return out.getvalue(), texts


def ocr(pages: int) -> None:
    from zhiku.ingest.ocr import _engine

    t = time.perf_counter()
    _engine()
    load_s = time.perf_counter() - t
    data, texts = scanned(pages, 30)
    t, cpu = time.perf_counter(), time.process_time()
    loaded = load_bytes(Path("scan.pdf"), data, LoadOptions())
    secs, cpu = time.perf_counter() - t, time.process_time() - cpu
    # The recogniser drops the space in "第1条 农业…"; every other character is compared.
    got = {line.replace(" ", "") for line in loaded.text.split("\n")}
    exact = sum(line.replace(" ", "") in got for page in texts for line in page) / sum(len(p) for p in texts)
    print(
        f"| OCR | {pages} A4 page(s), 30 lines each, 150 dpi scan | {pages / secs:.3f} pages/s "
        f"({secs / pages:.1f} s/page wall, {cpu / pages:.1f} CPU-s/page) | lines exact: {exact:.1%} "
        f"| engine load {load_s:.1f} s |"
    )


def tables() -> None:
    from zhiku.ingest.loaders import pdf

    data = table_pdf(revenue_rows(range(2000, 2024)), "grid", rows_per_page=16)
    real = pdf._table_pages
    times = {}
    for name in ("pypdf text only", "with pdfplumber tables", "pypdf text only ", "with pdfplumber tables "):
        pdf._table_pages = real if "pdfplumber" in name else (lambda *a: {})  # type: ignore[assignment]
        t = time.perf_counter()
        loaded = load_bytes(Path("t.pdf"), data, LoadOptions(ocr=False))
        times.setdefault(name.strip(), []).append(time.perf_counter() - t)
    pdf._table_pages = real  # type: ignore[assignment]
    n = len(loaded.pages)
    base, plumb = min(times["pypdf text only"]), min(times["with pdfplumber tables"])
    print(
        f"| PDF tables | {n} text-layer pages with ruled tables | {n / base:.1f} pages/s without, "
        f"{n / plumb:.1f} pages/s with the table pass ({plumb / base:.1f}x the time) | | |"
    )


def folding(laws: Path) -> None:
    import opencc

    from zhiku.text.tokenize import make_tokenizer

    files = sorted(laws.rglob("*.md"))[:60]
    simplified = "\n".join(f.read_text(encoding="utf-8") for f in files)
    traditional = opencc.OpenCC("s2t").convert(simplified)
    paragraphs = {"Simplified": simplified.split("\n\n"), "Traditional (s2t)": traditional.split("\n\n")}
    make_tokenizer()("预热")
    for name, paras in paragraphs.items():
        secs = {}
        for fold in (False, True, False, True):
            tok = make_tokenizer(fold_traditional=fold)
            t = time.perf_counter()
            for p in paras:
                tok(p)
            secs.setdefault(fold, []).append(time.perf_counter() - t)
        off, on = min(secs[False]), min(secs[True])
        chars = sum(map(len, paras))
        print(
            f"| folding | {name}, {chars:,} chars of law text | {chars / off / 1e3:.0f}k chars/s off, "
            f"{chars / on / 1e3:.0f}k chars/s on | +{(on / off - 1):.0%} time | |"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--laws", type=Path, default=ROOT.parent / "shared" / "data" / "cn-laws-lawrefbook")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| what | input | speed | | |\n|---|---|---|---|---|")
    tables()
    if args.laws.exists():
        folding(args.laws)
    ocr(args.pages)


if __name__ == "__main__":
    main()
