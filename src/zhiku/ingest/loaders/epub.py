"""E-books (.epub): the spine's XHTML documents, in reading order, through the HTML loader.

An EPUB is a ZIP package: ``META-INF/container.xml`` names the OPF file, whose manifest and spine
list the chapters. Reading them with the standard library (zipfile + ElementTree) needs no e-book
package; each chapter's headings become the heading path as in any HTML page.
"""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

from zhiku.errors import CorruptFileError
from zhiku.ingest.loaders import LOADERS, LoadOptions, LoadedText
from zhiku.ingest.loaders import html as html_loader
from zhiku.ingest.loaders.packages import open_package

_CONTAINER = "META-INF/container.xml"
_HTML_TYPES = frozenset({"application/xhtml+xml", "text/html"})


def load(path: Path, data: bytes, options: LoadOptions) -> LoadedText:
    package = open_package(path, data, "an EPUB e-book (.epub)")
    try:
        with package:
            opf_path = _rootfile(package)
            opf = ElementTree.fromstring(package.read(opf_path))
            title = _text(opf.find(".//{*}metadata/{*}title"))
            chapters = []
            for name in _spine(opf, posixpath.dirname(opf_path)):
                try:
                    raw = package.read(name)
                except KeyError:
                    continue  # a spine entry whose file is missing: the rest of the book is still good
                text = html_loader.load(Path(name), raw, options).text.strip()
                if text:
                    chapters.append(text)
    except (KeyError, ElementTree.ParseError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise CorruptFileError(
            f"{path} is not a readable EPUB: {e}", "convert it again, e.g. with Calibre"
        ) from e
    return LoadedText("\n\n".join(chapters), title or path.stem, "epub")


def _rootfile(package: zipfile.ZipFile) -> str:
    container = ElementTree.fromstring(package.read(_CONTAINER))
    rootfile = container.find(".//{*}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise ValueError("container.xml names no rootfile")
    return str(rootfile.get("full-path"))


def _spine(opf: ElementTree.Element, base: str) -> list[str]:
    manifest = {
        item.get("id"): item
        for item in opf.iterfind(".//{*}manifest/{*}item")
        if item.get("media-type") in _HTML_TYPES
    }
    names = []
    for ref in opf.iterfind(".//{*}spine/{*}itemref"):
        item = manifest.get(ref.get("idref"))
        if item is not None and item.get("href"):
            names.append(posixpath.normpath(posixpath.join(base, unquote(str(item.get("href"))))))
    return names


def _text(element: ElementTree.Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


LOADERS.add(".epub", load)
