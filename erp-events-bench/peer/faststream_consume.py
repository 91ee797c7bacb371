"""The bench's "peer" side: a faststream (aiokafka) subscriber, measured like our listener.

Run by `erp-events-bench peer` (see `measure_side` in ../src/main.rs) as

    python faststream_consume.py --bootstrap HOST:PORT --events N --live M --topic TOPIC --partitions P --redis URL

against the bench's embedded broker, where the parent has already published N envelopes to TOPIC.
It does what the Rust consumer sides do (`Tally` / `run_phases` in ../src/sides.rs):

1. Backlog: a KafkaBroker subscriber in a consumer group reads TOPIC from the earliest offset and
   decodes each JSON envelope into pydantic models. Throughput = N / (time the N-th message was
   handled - time the first one was handled).
2. It then prints `LIVE` on stdout; the parent publishes M more envelopes at a steady pace.
3. Latency: for each of those M, now (epoch ms) - the envelope's `timestamp`.
4. It prints one JSON line {"throughput", "p50_ms", "p99_ms", "peak_rss_mib"} and exits 0.

Only `LIVE` and the JSON line go to stdout (the parent parses it); logs go to stderr.
`--partitions` and `--redis` are accepted and ignored (the parent passes them to every side).
"""

import argparse
import asyncio
import json
import logging
import resource
import sys
import time
from datetime import datetime
from enum import Enum
from uuid import UUID

from faststream.kafka import KafkaBroker, Topic
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

GROUP_ID = "faststream-bench"


class CamelModel(BaseModel):
    """Fields are camelCase on the wire, snake_case here."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class MovementAction(str, Enum):
    RECEIVED = "RECEIVED"
    SHIPPED = "SHIPPED"
    TRANSFERRED = "TRANSFERRED"


class InventoryMovement(CamelModel):
    product_id: str
    warehouse: str
    action: MovementAction
    quantity: int
    to_warehouse: str | None = None


class Envelope(CamelModel):
    """The erp-events envelope, as `Envelope<InventoryMovement>` in Rust."""

    event_id: UUID
    event_type: str
    source: str
    timestamp: datetime
    trace_id: str | None = None
    user_id: str | None = None
    version: int
    payload: InventoryMovement


def percentile(samples: list[float], p: float) -> float:
    """As `percentile` in ../src/measure.rs: sorted, rank = round(p/100 * (len-1)), half away from 0."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = int(p / 100.0 * (len(ordered) - 1) + 0.5)
    return ordered[min(rank, len(ordered) - 1)]


class Tally:
    """Counts handled events: the backlog's throughput, then the live events' latency."""

    def __init__(self, backlog: int, live: int) -> None:
        self.backlog = backlog
        self.total = backlog + live
        self.handled = 0
        self.first: float | None = None
        self.backlog_done: float | None = None
        self.latencies: list[float] = []
        self.backlog_reached = asyncio.Event()
        self.all_reached = asyncio.Event()

    def record(self, published_ms: float) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.handled += 1
        if self.handled > self.backlog:
            self.latencies.append(time.time_ns() / 1e6 - published_ms)
        if self.handled == self.backlog:
            self.backlog_done = now
            self.backlog_reached.set()
        if self.handled == self.total:
            self.all_reached.set()

    async def run_phases(self) -> dict[str, float]:
        await self.backlog_reached.wait()
        print("LIVE", flush=True)
        await self.all_reached.wait()
        elapsed = max(self.backlog_done - self.first, 1e-9)
        return {
            "throughput": self.backlog / elapsed,
            "p50_ms": percentile(self.latencies, 50.0),
            "p99_ms": percentile(self.latencies, 99.0),
            # ru_maxrss is in KiB on Linux.
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--live", type=int, default=0)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int, default=0)
    parser.add_argument("--redis", default="")
    args = parser.parse_args()

    # faststream logs "Received"/"Processed" per message to stdout at INFO by default; log to
    # stderr, warnings and errors only, as a production deployment would.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    logger = logging.getLogger("faststream-bench")

    tally = Tally(args.events, args.live)
    broker = KafkaBroker(args.bootstrap, logger=logger)

    # faststream's default commit behaviour is kept: AckPolicy.ACK_FIRST, i.e. aiokafka's
    # enable_auto_commit=True, offsets committed in the background every 5 s (at most once).
    # fetch_max_wait_ms=10 matches the Rust sides' `fetch.wait.max.ms` (MOCK_CONSUMER_SETTINGS):
    # the mock cluster holds an empty fetch for the whole wait (aiokafka's default is 500 ms).
    # declare=False: the parent created the topic (and aiokafka's admin client cannot create
    # topics on the mock cluster anyway: it reports no controller).
    @broker.subscriber(
        Topic(args.topic, declare=False),
        group_id=GROUP_ID,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    async def handle(event: Envelope) -> None:
        tally.record(event.timestamp.timestamp() * 1e3)

    await broker.start()
    try:
        measurement = await tally.run_phases()
        print(json.dumps(measurement), flush=True)
    finally:
        try:
            await asyncio.wait_for(broker.stop(), timeout=10)
        except Exception as error:  # noqa: BLE001 - the measurement is already printed
            print(f"faststream_consume: broker.stop(): {error!r}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
