"""ZIP packages that unpack to far more than they weigh (generated, never stored)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path


def docx_bomb(path: Path, unpacked_mb: int, in_text: bool = False) -> Path:
    """A valid .docx plus ``unpacked_mb`` MB of zeros: in a media part, or in the document text."""
    from tests.helpers.corpus import make_docx

    make_docx(path)
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            data = src.read(info)
            if in_text and info.filename == "word/document.xml":
                para = b"<w:p><w:r><w:t>" + b"a" * 1000 + b"</w:t></w:r></w:p>"
                n = unpacked_mb * 1024
                data = data.replace(b"<w:body>", b"<w:body>" + para * n, 1)
            z.writestr(info, data)
        if not in_text:
            with z.open("word/media/image1.png", "w", force_zip64=True) as f:
                block = b"\0" * (1 << 20)
                for _ in range(unpacked_mb):
                    f.write(block)
    path.write_bytes(out.getvalue())
    return path
