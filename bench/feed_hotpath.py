"""One process's share of bench/bench_feed.py's "cost of versions" rows: the embedded SQLite
store through the binding, on whichever `edgekv` is first on `sys.path` (the tree under test,
or a checkout of the code before versions), printing one JSON object of summaries.

    python -m bench.feed_hotpath DIR SECONDS
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path

import edgekv
from bench.harness import ameasure

KEYS = 20_000
CONCURRENCY = 64


def key(i: int) -> str:
    return f"user:{i:08d}"


async def main(directory: Path, seconds: float) -> dict[str, object]:
    value = b"v" * 100
    async with edgekv.open(directory) as kv:
        ns = await kv.create_namespace("hot")
        for start in range(0, KEYS, 10_000):
            await ns.put_many([(key(i), value) for i in range(start, start + 10_000)])
        nxt = itertools.cycle([key(i) for i in range(0, KEYS, 7)]).__next__
        get = await ameasure(lambda: ns.get(nxt()), seconds=seconds, warmup=1000)
        put = await ameasure(lambda: ns.put(nxt(), value), seconds=seconds)

        async def puts() -> None:
            await asyncio.gather(*(ns.put(nxt(), value) for _ in range(CONCURRENCY)))

        concurrent = await ameasure(puts, seconds=seconds, items=CONCURRENCY)
    return {
        "edgekv": edgekv.__file__,
        "get": get.summary(),
        "put": put.summary(),
        "put64": concurrent.summary(),
    }


if __name__ == "__main__":
    result = asyncio.run(main(Path(sys.argv[1]), float(sys.argv[2])))
    print(json.dumps(result))
