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
request. So only requests known to be CPU-bound take the lane (``CPU_THREADS`` threads, first come
first served): searches, and non-streamed answers by the offline answerer, of a KB whose reranker,
if any, runs in this process. Everything else keeps the default pool.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    import asyncio

    from zhiku.config import KBConfig

T = TypeVar("T")

#: threads of the CPU lane; 4 measured best of 4, 8 and 40 (the module docstring)
CPU_THREADS = 4
#: rerankers that compute in this process (a plugin's, a server's or an LLM's may wait on the network)
LOCAL_RERANKERS = frozenset({"cross-encoder"})
#: the answerer that needs no language model
OFFLINE_GENERATOR = "extractive"

# One lane per event loop: a limiter's waiters belong to the loop they wait in, and tests run
# several apps, each TestClient in a loop of its own.
_lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def cpu_lane() -> anyio.CapacityLimiter:
    """The CPU lane of the running event loop (made on first use)."""
    import asyncio

    loop = asyncio.get_running_loop()
    lane = _lanes.get(loop)
    if lane is None:
        lane = _lanes[loop] = anyio.CapacityLimiter(CPU_THREADS)
    return lane


def cpu_bound(config: KBConfig | None, answers: bool) -> bool:
    """Whether a search (``answers=False``) or a non-streamed answer of a KB with these settings
    only computes in this process; ``None`` (settings that cannot be read): no, the default pool."""
    if config is None:
        return False
    if config.rerank.kind is not None and config.rerank.kind not in LOCAL_RERANKERS:
        return False
    return not answers or config.generator.kind == OFFLINE_GENERATOR


async def run(fn: Callable[[], T], cpu: bool) -> T:
    """``fn()`` in a worker thread: of the CPU lane when ``cpu``, else of the default pool."""
    return await anyio.to_thread.run_sync(fn, limiter=cpu_lane() if cpu else None)
