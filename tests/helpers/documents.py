"""Sample files of every format zhiku reads, made by the tests themselves (no files on disk).

``SAMPLES`` maps each registered extension to a maker returning ``(bytes, phrase, heading)``: the
phrase must appear in the loaded text, the heading (when not "") in some chunk's heading path.
Images are rendered with a CJK font; ``cjk_font()`` finds one (Debian: fonts-wqy-zenhei).
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from collections.abc import Callable
from functools import lru_cache

from tests.helpers.corpus import make_pdf

Sample = tuple[bytes, str, str]


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    try:
        out = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return None
    files = sorted(line.split(":")[0].strip() for line in out.splitlines() if line.strip())
    return files[0] if files else None


def text_image(lines: list[str], width: int = 900, size: int = 40, fmt: str = "PNG") -> bytes:
    """Black Chinese text on white, as an image file of format ``fmt``."""
    from PIL import Image, ImageDraw, ImageFont

    font_path = cjk_font()
    if font_path is None:
        raise RuntimeError("no CJK font: apt-get install fonts-wqy-zenhei")
    font = ImageFont.truetype(font_path, size)
    image = Image.new("RGB", (width, 60 + len(lines) * size * 2), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 30 + i * size * 2), line, font=font, fill="black")
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def scanned_pdf(pages: list[list[str]]) -> bytes:
    """An image-only PDF (no text layer): each page a rendered image of its lines, like a scan."""
    from PIL import Image

    images = [
        Image.open(io.BytesIO(text_image(lines, width=1000, size=36))).convert("RGB") for lines in pages
    ]
    out = io.BytesIO()
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=150)
    return out.getvalue()


def docx_bytes() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("财务报告", level=1)
    d.add_paragraph("本报告列出各季度营业收入。")
    table = d.add_table(rows=3, cols=3)
    for r, row in enumerate(
        [["年份", "季度", "营业收入"], ["2023年", "第一季度", "1200"], ["2023年", "第二季度", "1350"]]
    ):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def xlsx_bytes() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "收入"
    for row in [["年份", "季度", "营业收入"], [2023, "第一季度", 1200], [2023, "第二季度", 1350.0]]:
        sheet.append(row)
    other = book.create_sheet("人员")
    other.append(["部门", "人数"])
    other.append(["研发部", 42])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def pptx_bytes() -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for title, body, notes in [
        ("项目概述", "知识库支持本地检索。", "讲者备注：强调离线运行。"),
        ("下一步计划", "第二季度上线扫描件识别。", ""),
    ]:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    table = deck.slides[1].shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for (r, c), value in {(0, 0): "指标", (0, 1): "目标", (1, 0): "准确率", (1, 1): "95%"}.items():
        table.cell(r, c).text = value
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def epub_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr(
            "META-INF/container.xml",
            '<?xml version="1.0"?><container version="1.0" '
            'xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
        z.writestr(
            "OEBPS/content.opf",
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>西游记选段</dc:title></metadata>'
            '<manifest><item id="c1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/>'
            '<item id="c2" href="text/ch2.xhtml" media-type="application/xhtml+xml"/></manifest>'
            '<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>',
        )
        for name, title, body in [
            ("ch1", "第一回 灵根育孕源流出", "花果山上有一块仙石，孕育出一只石猴。"),
            ("ch2", "第二回 悟彻菩提真妙理", "石猴拜师学艺，得名孙悟空。"),
        ]:
            z.writestr(
                f"OEBPS/text/{name}.xhtml",
                f'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                f"<head><title>{title}</title></head><body><h1>{title}</h1><p>{body}</p></body></html>",
            )
    return out.getvalue()


def _image(fmt: str) -> Callable[[], Sample]:
    return lambda: (text_image(["扫描件识别测试", "年休假五天"], fmt=fmt), "年休假五天", "")


SAMPLES: dict[str, Callable[[], Sample]] = {
    ".txt": lambda: ("第一条 本办法适用于全体员工。".encode("gb18030"), "适用于全体员工", ""),
    ".md": lambda: (
        "# 员工手册\n\n## 年假\n\n工作满一年的员工享受年休假。".encode(),
        "享受年休假",
        "员工手册 > 年假",
    ),
    ".markdown": lambda: ("# 指南\n\n正文内容。".encode(), "正文内容", "指南"),
    ".html": lambda: (
        "<h1>自行车保养</h1><p>每三百公里给链条上油。</p>".encode(),
        "给链条上油",
        "自行车保养",
    ),
    ".htm": lambda: ("<h2>轮胎</h2><p>每周检查胎压。</p>".encode("gb18030"), "每周检查胎压", "轮胎"),
    ".pdf": lambda: (make_pdf(["Printer manual.", "Replace the toner cartridge."]), "toner cartridge", ""),
    ".docx": lambda: (docx_bytes(), "| 2023年 | 第二季度 | 1350 |", "财务报告"),
    ".xlsx": lambda: (xlsx_bytes(), "| 2023 | 第二季度 | 1350 |", "收入"),
    ".csv": lambda: (
        "年份,季度,营业收入\n2023年,第二季度,1350\n".encode("gb18030"),
        "| 2023年 | 第二季度 | 1350 |",
        "",
    ),
    ".tsv": lambda: (
        "年份\t季度\t营业收入\n2023年\t第二季度\t1350\n".encode(),
        "| 2023年 | 第二季度 | 1350 |",
        "",
    ),
    ".pptx": lambda: (pptx_bytes(), "Notes: 讲者备注：强调离线运行。", "下一步计划"),
    ".epub": lambda: (epub_bytes(), "得名孙悟空", "第二回 悟彻菩提真妙理"),
    ".json": lambda: (
        json.dumps(
            [{"title": "问答一", "text": "年假按工龄计算。"}, {"text": "病假需要证明。"}], ensure_ascii=False
        ).encode(),
        "病假需要证明",
        "问答一",
    ),
    ".jsonl": lambda: (
        '{"title": "条目", "text": "数据每日备份一次。"}\n{"text": "离职账号当日注销。"}\n'.encode(),
        "数据每日备份一次",
        "条目",
    ),
    ".png": _image("PNG"),
    ".jpg": _image("JPEG"),
    ".jpeg": _image("JPEG"),
    ".tif": _image("TIFF"),
    ".tiff": _image("TIFF"),
    ".bmp": _image("BMP"),
    ".webp": _image("WEBP"),
}

# Bytes that are not a valid file of the kind: what a renamed or truncated file looks like.
PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40)


def bad_sample(suffix: str) -> bytes:
    if suffix in {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}:
        return b"this is not an image at all" * 4
    if suffix in {".docx", ".xlsx", ".pptx", ".epub"}:
        return b"PK\x03\x04" + bytes(200)  # a ZIP header with nothing behind it
    if suffix == ".json":
        return b'{"text": "unterminated'
    if suffix == ".jsonl":
        return b'{"text": "ok"}\n{broken\n'
    if suffix == ".pdf":
        return make_pdf(["Hello."])[:60]
    return PNG_HEADER  # text formats: a binary file under a text name


# --- tables -------------------------------------------------------------------------------------

QUARTERS = ["第一季度", "第二季度", "第三季度", "第四季度"]
HEADER = ["年份", "季度", "营业收入（万元）", "净利润（万元）"]


def revenue_rows(years: range = range(2020, 2024)) -> list[list[str]]:
    """A header and one row per quarter; each revenue figure is unique, so a test can name its row."""
    rows = [list(HEADER)]
    for y in years:
        for q, quarter in enumerate(QUARTERS):
            rows.append(
                [f"{y}年", quarter, f"{1000 + (y - 2020) * 400 + q * 37}", f"{100 + (y - 2020) * 40 + q * 3}"]
            )
    return rows


def table_docx(rows: list[list[str]]) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("年度财务报告", level=1)
    d.add_paragraph("下表列出各季度的营业收入与净利润。")
    table = d.add_table(rows=len(rows), cols=len(rows[0]))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    d.add_paragraph("数据未经审计。")
    out = io.BytesIO()
    d.save(out)
    return out.getvalue()


def table_html(rows: list[list[str]]) -> bytes:
    head = "".join(f"<th>{v}</th>" for v in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in rows[1:])
    return (
        "<html><head><title>年度财务报告</title></head><body><h1>年度财务报告</h1>"
        "<p>下表列出各季度的营业收入与净利润。</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>数据未经审计。</p></body></html>"
    ).encode()


def table_pdf(rows: list[list[str]], style: str = "grid", rows_per_page: int = 40) -> bytes:
    """A text-layer PDF (CJK font embedded by matplotlib) with the rows drawn as a table.

    ``style``: "grid" (every cell ruled), "rules" (horizontal rules only, the booktabs look),
    "none" (no lines, columns aligned by position), "merged" (grid, with the first column's
    repeated years merged into one cell per year).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager
    from matplotlib.backends.backend_pdf import PdfPages

    font_path = cjk_font()
    if font_path is None:
        raise RuntimeError("no CJK font: apt-get install fonts-wqy-zenhei")
    fp = font_manager.FontProperties(fname=font_path)
    out = io.BytesIO()
    widths = [18, 18, 22, 22]
    xs = [8 + sum(widths[:i]) for i in range(len(widths) + 1)]
    with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(out) as pdf:
        body = rows[1:]
        pages = [body[i : i + rows_per_page] for i in range(0, len(body), rows_per_page)] or [[]]
        for p, chunk in enumerate(pages):
            fig = plt.figure(figsize=(8.27, 11.69))
            ax = fig.add_axes((0, 0, 1, 1))
            ax.set_xlim(0, 100)
            ax.set_ylim(0, 100)
            ax.axis("off")
            if p == 0:
                ax.text(8, 95, "年度财务报告", fontproperties=fp, fontsize=14)
                ax.text(8, 91, "下表列出各季度的营业收入与净利润。", fontproperties=fp, fontsize=10)
            shown = ([rows[0]] if p == 0 else []) + chunk
            top, h = 87.0, 2.0
            for r, row in enumerate(shown):
                y = top - r * h
                for c, value in enumerate(row):
                    if style == "merged" and c == 0 and r > 1 and shown[r - 1][0] == value:
                        continue
                    ax.text(xs[c] + 1, y - 1.45, value, fontproperties=fp, fontsize=9)
            bottom = top - len(shown) * h
            if style in {"grid", "merged"}:
                for r in range(len(shown) + 1):
                    y = top - r * h
                    if style == "merged" and 1 < r < len(shown) and shown[r][0] == shown[r - 1][0]:
                        ax.plot([xs[1], xs[-1]], [y, y], color="black", lw=0.6)
                    else:
                        ax.plot([xs[0], xs[-1]], [y, y], color="black", lw=0.6)
                for x in xs:
                    ax.plot([x, x], [top, bottom], color="black", lw=0.6)
            elif style == "rules":
                for y in (top, top - h if p == 0 else top, bottom):
                    ax.plot([xs[0], xs[-1]], [y, y], color="black", lw=0.8)
            ax.text(
                8,
                bottom - 4,
                "数据未经审计。" if p == len(pages) - 1 else "（续下页）",
                fontproperties=fp,
                fontsize=10,
            )
            pdf.savefig(fig)
            plt.close(fig)
    return out.getvalue()
