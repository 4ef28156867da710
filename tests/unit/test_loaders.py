"""File loaders: every format, every encoding, and every way a file can be bad.

All inputs are built here in ``tmp_path`` (no fixtures on disk), so each test shows its data.
"""

from __future__ import annotations

import codecs
import io
import pathlib
import random
import subprocess
import sys
from pathlib import Path

import pytest
from tests.helpers.corpus import make_pdf

from zhiku.errors import (
    CorruptFileError,
    DecodeError,
    EmptyFileError,
    FileTooLargeError,
    IngestError,
    NotFoundError,
    UnsupportedFormatError,
)
from zhiku.ingest.loaders import LoadedText, load_file, supported_extensions

MB = 1024 * 1024
LIMIT = 50 * MB

ZH = "知识库是一个本地优先的检索增强生成系统。\n第一条 本办法适用于全体员工，“年假”按工龄计算。\n"
EN = "Zhiku answers questions over your own documents.\nIt runs locally.\n"
MIXED = "混合文本 mixed text：BM25、Word2Vec 与 SBERT 的对比，2024年。\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def load(path: Path) -> LoadedText:
    return load_file(path, LIMIT)


# --- plain text and its encodings -----------------------------------------------------------


@pytest.mark.parametrize("original", [ZH, EN, MIXED], ids=["zh", "en", "mixed"])
@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s.encode("utf-8"),
        lambda s: codecs.BOM_UTF8 + s.encode("utf-8"),
        lambda s: s.encode("gb18030"),
        lambda s: s.encode("gbk"),
        lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le"),
        lambda s: codecs.BOM_UTF16_BE + s.encode("utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "gb18030", "gbk", "utf16le-bom", "utf16be-bom"],
)
def test_text_encodings_decode_to_the_original(tmp_path: Path, original: str, encode) -> None:
    loaded = load(write(tmp_path, "notes.txt", encode(original)))
    assert loaded == LoadedText(text=original, title="notes", format="text")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_bomless_utf16_is_detected_from_nul_pattern(tmp_path: Path, encoding: str) -> None:
    original = EN + "Mostly ASCII, a little 中文.\n"
    assert load(write(tmp_path, "win.txt", original.encode(encoding))).text == original


def test_crlf_line_endings_become_lf(tmp_path: Path) -> None:
    assert load(write(tmp_path, "dos.txt", "第一行\r\n第二行\r\n")).text == "第一行\n第二行\n"


def test_latin1_falls_back_to_charset_detection(tmp_path: Path) -> None:
    original = (
        "Le café de la gare est fermé. Nous sommes allés au marché, où nous avons acheté des pommes "
        "et du pain. La journée était très agréable, à côté de la rivière.\n"
    )
    assert load(write(tmp_path, "fr.txt", original.encode("latin-1"))).text == original


# --- markdown ----------------------------------------------------------------------------------


def test_markdown_keeps_markup_and_takes_first_h1(tmp_path: Path) -> None:
    source = "Intro line\n\n```bash\n# not a heading\n```\n\n# 员工手册\n\n## 第一章 总则\n\n正文。\n"
    loaded = load(write(tmp_path, "handbook.md", source))
    assert loaded == LoadedText(text=source, title="员工手册", format="markdown")


def test_markdown_front_matter_is_stripped_and_its_title_wins(tmp_path: Path) -> None:
    body = "# Heading\n\nBody text.\n"
    source = '---\ntitle: "Front Matter Title"\ntags: [a, b]\n---\n' + body
    loaded = load(write(tmp_path, "post.markdown", source))
    assert loaded == LoadedText(text=body, title="Front Matter Title", format="markdown")


def test_markdown_without_heading_uses_stem_and_decodes_gbk(tmp_path: Path) -> None:
    loaded = load(write(tmp_path, "笔记.md", ("---\nauthor: 张三\n---\n" + ZH).encode("gbk")))
    assert loaded == LoadedText(text=ZH, title="笔记", format="markdown")


# --- html --------------------------------------------------------------------------------------


def test_html_headings_blocks_scripts_and_entities(tmp_path: Path) -> None:
    page = """<!DOCTYPE html><html><head><title>Page &amp; Title</title>
    <style>body { color: red }</style><script>var x = "<p>hidden</p>";</script></head>
    <body><noscript>enable js</noscript><h1>Main  heading</h1>
    <p>First   paragraph with <b>bold</b> &lt;tag&gt; &copy; 2024.</p>
    <h2>第二节</h2><div>中文段落&nbsp;内容</div>
    <ul><li>one</li><li>two</li></ul>
    <table><tr><th>Name</th><th>Age</th></tr><tr><td>Ann</td><td>30</td></tr></table>
    <pre>  code
    indented</pre></body></html>"""
    loaded = load(write(tmp_path, "page.html", page))
    assert loaded.title == "Page & Title"
    assert loaded.format == "html"
    assert loaded.text.startswith("# Main heading\n\nFirst paragraph with bold <tag> © 2024.\n\n## 第二节\n")
    assert "中文段落\u00a0内容" in loaded.text
    assert "- one\n- two" in loaded.text
    assert "| Name | Age |\n| --- | --- |\n| Ann | 30 |" in loaded.text  # a Markdown table
    assert "  code\n    indented" in loaded.text
    for hidden in ("color", "hidden", "enable js", "var x"):
        assert hidden not in loaded.text
    assert "\n\n\n" not in loaded.text


@pytest.mark.parametrize(
    "meta",
    ['<meta charset="gbk">', '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'],
)
def test_html_respects_meta_charset(tmp_path: Path, meta: str) -> None:
    page = f"<html><head>{meta}</head><body><h1>员工手册</h1><p>{ZH}</p></body></html>"
    loaded = load(write(tmp_path, "gbk.htm", page.encode("gb18030")))
    assert loaded.title == "员工手册"  # no <title>: the first h1
    assert loaded.text.startswith("# 员工手册\n\n知识库是一个本地优先的检索增强生成系统。 第一条")


def test_html_bom_wins_over_a_wrong_meta_charset(tmp_path: Path) -> None:
    page = '<meta charset="iso-8859-1"><p>中文</p>'
    loaded = load(write(tmp_path, "bom.html", codecs.BOM_UTF8 + page.encode("utf-8")))
    assert loaded.text == "中文"
    assert loaded.title == "bom"


# --- docx --------------------------------------------------------------------------------------


def make_docx(path: Path, title: str | None = None) -> Path:
    import docx

    document = docx.Document()
    if title is not None:
        document.core_properties.title = title
    document.add_paragraph("Preface text.")
    document.add_heading("员工手册", level=0)  # style "Title"
    document.add_heading("第一章 总则", level=1)
    document.add_paragraph("本办法适用于全体员工。")
    document.add_heading("Details", level=3)
    table = document.add_table(rows=2, cols=3)
    for row, values in zip(table.rows, [["姓名", "部门", "年假"], ["张三", "研发", "10"]], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_paragraph("")  # empty paragraphs are dropped
    document.add_paragraph("After the table.")
    document.save(path)
    return path


def test_docx_headings_and_tables_in_order(tmp_path: Path) -> None:
    loaded = load(make_docx(tmp_path / "handbook.docx"))
    assert loaded.format == "docx"
    assert loaded.title == "员工手册"  # no core title: first heading
    assert loaded.text == (
        "Preface text.\n\n# 员工手册\n\n# 第一章 总则\n\n本办法适用于全体员工。\n\n### Details\n\n"
        "| 姓名 | 部门 | 年假 |\n| --- | --- | --- |\n| 张三 | 研发 | 10 |\n\nAfter the table."
    )


def test_docx_core_title_wins(tmp_path: Path) -> None:
    assert load(make_docx(tmp_path / "h.docx", title="Core Title")).title == "Core Title"


# --- pdf ---------------------------------------------------------------------------------------


def test_pdf_text_layer_and_metadata_title(tmp_path: Path) -> None:
    data = make_pdf(["Hello PDF world.", "Second line."], title="Annual Report")
    loaded = load(write(tmp_path, "report.pdf", data))
    assert loaded.format == "pdf"
    assert loaded.title == "Annual Report"
    assert "Hello PDF world." in loaded.text and "Second line." in loaded.text


def test_pdf_without_title_uses_stem(tmp_path: Path) -> None:
    assert load(write(tmp_path, "plain.pdf", make_pdf(["Just text."]))).title == "plain"


def test_pdf_without_text_layer_is_empty_with_ocr_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "scan.pdf", make_pdf([]))
    with pytest.raises(EmptyFileError, match="scan.pdf") as info:
        load(path)
    assert "OCR" in (info.value.hint or "")


def encrypt_pdf(data: bytes, user_password: str) -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    # RC4 is implemented by pypdf itself; AES would need the optional cryptography package.
    writer.encrypt(user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_pdf_encrypted_with_a_password_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.pdf", encrypt_pdf(make_pdf(["Top secret."]), "pw"))
    with pytest.raises(CorruptFileError, match=r"secret\.pdf is encrypted") as info:
        load(path)
    assert "decrypt" in (info.value.hint or "")


def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "open.pdf", encrypt_pdf(make_pdf(["Readable anyway."]), ""))
    assert "Readable anyway." in load(path).text


# --- bad inputs --------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nowhere.txt"):
        load(tmp_path / "nowhere.txt")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()
    with pytest.raises(NotFoundError, match="folder.md"):
        load(tmp_path / "folder.md")


def test_unsupported_extension_lists_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match=r"sheet\.numbers.*'\.numbers'") as info:
        load(write(tmp_path, "sheet.numbers", b"PK\x03\x04"))
    for suffix in supported_extensions():
        assert suffix in (info.value.hint or "")


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    assert load(write(tmp_path, "LOUD.TXT", EN)).format == "text"


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.html", "empty.pdf", "empty.docx"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    with pytest.raises(EmptyFileError, match=name):
        load(write(tmp_path, name, b""))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("blank.txt", " \n\t\n  \u3000\n"),
        ("blank.md", "---\ntitle: Only metadata\n---\n\n"),
        ("blank.html", "<html><head><title>T</title><script>x()</script></head><body> </body></html>"),
    ],
)
def test_whitespace_only_is_empty(tmp_path: Path, name: str, data: str) -> None:
    with pytest.raises(EmptyFileError, match=name):
        load(write(tmp_path, name, data))


@pytest.mark.parametrize("name", ["image.txt", "image.md", "image.html"])
def test_png_bytes_with_text_extension_are_corrupt(tmp_path: Path, name: str) -> None:
    with pytest.raises(CorruptFileError, match=name):
        load(write(tmp_path, name, PNG + bytes(200)))


@pytest.mark.parametrize("name", ["noise.txt", "noise.html", "noise.pdf", "noise.docx"])
def test_random_bytes_are_refused(tmp_path: Path, name: str) -> None:
    data = random.Random(42).randbytes(4096)
    with pytest.raises((CorruptFileError, DecodeError), match=name):
        load(write(tmp_path, name, data))


def test_control_characters_without_nul_are_not_text(tmp_path: Path) -> None:
    data = bytes(range(1, 32)) * 50
    with pytest.raises(DecodeError, match="ctl.txt"):
        load(write(tmp_path, "ctl.txt", data))


def test_text_named_pdf_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptFileError, match="fake.pdf") as info:
        load(write(tmp_path, "fake.pdf", EN))
    assert info.value.hint


def test_truncated_pdf_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(CorruptFileError, match="cut.pdf"):
        load(write(tmp_path, "cut.pdf", make_pdf(["Hello."])[:60]))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("fake.docx", EN.encode()),
        ("zip.docx", b"PK\x03\x04" + bytes(100)),
        ("old.docx", b"\xd0\xcf\x11\xe0" + bytes(100)),
    ],
)
def test_not_a_docx_is_corrupt(tmp_path: Path, name: str, data: bytes) -> None:
    with pytest.raises(CorruptFileError, match=name):
        load(write(tmp_path, name, data))


def test_file_over_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "big.txt", "x" * 2000)
    with pytest.raises(FileTooLargeError, match="big.txt") as info:
        load_file(path, max_bytes=1000)
    assert "max_file_mb" in (info.value.hint or "")
    assert load_file(path, max_bytes=2000).text == "x" * 2000  # the limit itself is allowed


def test_size_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as f:
        f.truncate(300 * MB)  # sparse: takes no disk space

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(pathlib.Path, "open", refuse)
    monkeypatch.setattr(pathlib.Path, "read_bytes", refuse)
    with pytest.raises(FileTooLargeError, match=r"huge\.txt is 300\.0 MB, over the 50\.0 MB limit"):
        load_file(path, max_bytes=50 * MB)


def test_errors_are_ingest_errors_with_one_line_messages(tmp_path: Path) -> None:
    for path in (write(tmp_path, "a.txt", PNG), write(tmp_path, "b.xyz", "x"), write(tmp_path, "c.txt", "")):
        with pytest.raises(IngestError) as info:
            load(path)
        assert "\n" not in info.value.one_line() and info.value.hint


# --- import cost -------------------------------------------------------------------------------


def test_importing_loaders_does_not_import_heavy_parsers() -> None:
    code = (
        "import sys, zhiku.ingest.loaders; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pypdf', 'docx', 'charset_normalizer'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
