"""Small real documents the tests write themselves: Chinese, English, mixed, in every format."""

from __future__ import annotations

from pathlib import Path

from zhiku.config import KBConfig, MethodConfig, default_methods

ZH_REGULATION = """# 示例农业保险办法

## 第一章 总则

第一条 为了规范农业保险活动，保护农业保险活动当事人的合法权益，制定本办法。

第二条 本办法所称农业保险，是指保险机构根据农业保险合同，对被保险人在种植业、林业、畜牧业和渔业生产中的财产损失承担赔偿责任的保险活动。

## 第二章 农业保险合同

第三条 在农业保险合同有效期内，合同当事人不得因保险标的的危险程度发生变化增加保险费或者解除农业保险合同。

第四条 保险机构应当在与被保险人达成赔偿协议后十日内，将应赔偿的保险金支付给被保险人。
"""

ZH_NOTES = """员工手册

公司实行弹性工作制，员工每天工作八小时。年假按照工龄计算，工作满一年不满十年的，年休假五天。

数据每日备份一次，备份保留三十日。离职员工的账号应当在一个工作日内注销。
"""

EN_GUIDE = """# Gardening guide

## Tomatoes

Tomatoes need at least six hours of direct sunlight every day. Water them deeply twice a week.

## Roses

Prune roses in late winter, before new growth starts. Remove dead wood first.
"""

EN_HTML = """<!doctype html><html><head><title>Bicycle care</title><style>p{color:red}</style></head>
<body><h1>Bicycle care</h1><h2>Chains</h2><p>Clean and oil the chain every 300 kilometres.</p>
<h2>Tyres</h2><p>Check tyre pressure once a week; most road tyres need 6 to 8 bar.</p>
<script>var hidden = "should not be indexed";</script></body></html>
"""


def make_pdf(lines: list[str], title: str | None = None) -> bytes:
    """A minimal valid one-page PDF with a Helvetica text layer, offsets computed by hand."""
    ops = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    content = f"BT /F1 12 Tf 72 720 Td {ops} ET" if lines else ""
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Length {len(content)} >>\nstream\n{content}\nendstream",
        f"<< /Title ({title or ''}) >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    info = f" /Info {len(objects)} 0 R" if title else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.add_heading("Coffee brewing", level=1)
    d.add_paragraph("Use water just off the boil, about 94 degrees Celsius, for pour-over coffee.")
    d.add_heading("咖啡研磨", level=2)
    d.add_paragraph("手冲咖啡使用中细研磨，法压壶使用粗研磨。")
    d.save(str(path))
    return path


def write_corpus(root: Path) -> Path:
    """A folder with every supported format and several encodings."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "zh").mkdir(exist_ok=True)
    (root / "zh" / "农业保险办法.md").write_text(ZH_REGULATION, encoding="utf-8")
    (root / "zh" / "员工手册_gbk.txt").write_bytes(ZH_NOTES.encode("gb18030"))
    (root / "zh" / "utf16.txt").write_bytes("会议纪要：下周三下午三点召开季度总结会议。".encode("utf-16"))
    (root / "en").mkdir(exist_ok=True)
    (root / "en" / "garden.md").write_bytes(b"\xef\xbb\xbf" + EN_GUIDE.encode("utf-8"))
    (root / "en" / "bike.html").write_text(EN_HTML, encoding="utf-8")
    (root / "en" / "manual.pdf").write_bytes(
        make_pdf(
            ["Printer manual.", "Replace the toner cartridge when the red light blinks."], "Printer manual"
        )
    )
    make_docx(root / "coffee.docx")
    (root / "notes.xyz").write_text("not a supported type", encoding="utf-8")
    return root


def fast_config(**changes: object) -> KBConfig:
    """A KB config whose dense methods use the deterministic hashing embedder (no model load)."""
    methods = dict(default_methods())
    methods["dense"] = MethodConfig(kind="dense", enabled=True, options={"embedder": "hashing", "dim": 128})
    # the defaults' English-only MiniLM, without loading it: built in English and mixed KBs only
    methods["minilm"] = MethodConfig(
        kind="dense", options={"embedder": "hashing", "dim": 64, "languages": ["en"]}
    )
    return KBConfig(methods=methods, **changes)  # type: ignore[arg-type]
