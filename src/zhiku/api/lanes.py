"""Which threads run a request: a small lane for the server's CPU work, the default pool for waiting.

FastAPI runs every plain ``def`` route in one pool of 40 threads. Searches and offline answers are
pure CPU under one GIL, so 32 busy clients meant up to 32 runnable threads taking turns every few
milliseconds: each search's few milliseconds of Python were spread over the turns of everyone else,
and the one holding a KB's read lock was preempted while the others queued behind it. Measured on
the laws KB (`benchmarks/load_locust.py`, 32 users, 60-s runs, 2 cores, load 1–3.4; docs/load.md):
the mix's search p99 was 230 ms with 40 threads, 170 ms with the whole pool cut to 8 and 150 ms with
4, and the mixed rate held (321, 319, 347 req/s).

The pool cannot simply be made small: a request that waits (on an LLM for seconds, a rerank server,
a job with ``wait=true``, an SSE stream) would then hold one of a few threads and stall every other
request. So only requests known to be CPU-bound take a lane (``CPU_THREADS`` threads, first come first
served): searches, and non-streamed answers by the offline answerer, of a KB whose every method and
reranker computes in this process (``cpu_bound``: a list of kinds known to, and no server address
in their options). Everything else keeps the default pool. Each KB has a lane of its own, so a KB
that stalls its readers for a while (its reader reopened, a model loading) cannot fill the lane of
another.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from zhiku.config import KBConfig, MethodConfig

T = TypeVar("T")

#: threads of a CPU lane. Whole pool cut to 40, 8, 4: 4 was best (the module docstring); the lane at
#: 2, 3, 4 (docs/load.md): 3 beat 4 in each of four pairs, on both the mixed rate and search p99.
CPU_THREADS = 3
#: method kinds that search in this process (their parts are methods of the KB, checked themselves)
LOCAL_METHODS = frozenset(
    {
        "bm25",
        "bm25-expand",
        "tfidf",
        "w2v-cbow",
        "w2v-sg",
        "d2v-dm",
        "d2v-dbow",
        "dense",
        "hybrid",
        "routed",
        "adapted",
    }
)
#: embedders of a ``dense`` method that compute in this process (not ``ollama``, ``openai``…)
LOCAL_EMBEDDERS = frozenset({"e5", "sbert", "hashing", "word2vec", "doc2vec", "prompt-llm"})
#: option names that point at a server (Qdrant's ``url``, an LLM's ``base_url``…)
SERVER_OPTIONS = frozenset({"url", "urls", "base_url", "host", "llm"})
#: rerankers that compute in this process (a plugin's, a server's or an LLM's may wait on the network)
LOCAL_RERANKERS = frozenset({"cross-encoder"})
#: the answerer that needs no language model
OFFLINE_GENERATOR = "extractive"

# Per event loop, per KB: a limiter's waiters belong to the loop they wait in (tests run several
# apps, each TestClient in a loop of its own), and a KB's lane is its own (the module docstring).
_lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, anyio.CapacityLimiter]] = (
    weakref.WeakKeyDictionary()
)


def cpu_lane(kb: str) -> anyio.CapacityLimiter:
    """The CPU lane of knowledge base ``kb`` in the running event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    lanes = _lanes.setdefault(loop, {})
    lane = lanes.get(kb)
    if lane is None:
        lane = lanes[kb] = anyio.CapacityLimiter(CPU_THREADS)
    return lane


def _names_a_server(options: Mapping[str, Any]) -> bool:
    for key, value in options.items():
        if isinstance(value, Mapping) and _names_a_server(value):
            return True
        if (key in SERVER_OPTIONS and value) or (isinstance(value, str) and "://" in value):
            return True  # a Milvus Lite ``uri`` is a file path: no "://"
    return False


def _computes_here(method: MethodConfig) -> bool:
    if method.kind not in LOCAL_METHODS or _names_a_server(method.options):
        return False
    return method.kind != "dense" or method.options.get("embedder", "sbert") in LOCAL_EMBEDDERS


def cpu_bound(config: KBConfig | None, answers: bool) -> bool:
    """Whether a search (``answers=False``) or a non-streamed answer of a KB with these settings
    only computes in this process; ``None`` (settings that cannot be read): no, the default pool."""
    if config is None or not all(_computes_here(m) for m in config.methods.values()):
        return False
    if config.rerank.kind is not None and config.rerank.kind not in LOCAL_RERANKERS:
        return False
    return not answers or config.generator.kind == OFFLINE_GENERATOR


async def run(fn: Callable[[], T], kb: str, cpu: bool) -> T:
    """``fn()`` in a worker thread: of ``kb``'s CPU lane when ``cpu``, else of the default pool."""
    return await anyio.to_thread.run_sync(fn, limiter=cpu_lane(kb) if cpu else None)
