"""Webhook delivery (issue 12): how soon a subscriber hears of a status change, and whether
delivery keeps up with 1,000 events a minute without a growing backlog.

A creditor subscribes (``POST /api/webhooks``) to every event type with a receiver in this
process (``webhook_receiver.Receiver``, the one ``caseloop webhooks listen`` runs, verifying
each signature) on ``http://127.0.0.1:PORT/``; caseloop's processes run with
``WEBHOOKS_ALLOW_LOCALHOST=true``. Everything goes through the HTTP API; the backlog is counted
in the read model.

1. Latency, at concurrency 1: ``--webhook-changes`` status changes of one case, in batches
   interleaved with bare Temporal updates on the same dev server. Each change's delay is from
   the API's answer to the receiver getting that change's ``case.status.changed`` (a case's
   events arrive in order, so the k-th answer of a case is matched with its k-th event).
2. Throughput: status changes offered at ``--webhook-rate`` a minute for ``--webhook-minutes``
   over ``--webhook-cases`` cases (one change in flight per case). Every 5 s the undelivered
   deliveries of the subscription (``webhook_deliveries`` neither delivered nor given up) are
   counted and printed; the backlog's trend over the phase (least squares, events/min) says
   whether delivery keeps up. Then the backlog is drained.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import socket
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from sqlalchemy import func, select

from bench import bare
from bench.flows import STATUS_CYCLE, Api, Parties, case_in_collection, expect, parties
from bench.harness import Report, Stack, phase, stack, summary, timed
from domain.webhooks import CASE_STATUS_CHANGED, EVENT_TYPES
from store.models import WebhookDelivery
from webhook_receiver import Receiver, Verdict

NAME = "webhooks"
SAMPLE_SECONDS = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--webhook-changes", type=int, default=60, help="status changes timed one at a time"
    )
    parser.add_argument(
        "--webhook-rate", type=float, default=1000, help="status changes offered per minute"
    )
    parser.add_argument(
        "--webhook-minutes", type=float, default=3, help="length of the sustained phase"
    )
    parser.add_argument(
        "--webhook-cases", type=int, default=24, help="cases the sustained phase rotates over"
    )


@dataclass
class Arrivals:
    """What the receiver got: per case, each ``case.status.changed`` with its arrival time."""

    by_case: dict[str, list[tuple[float, int | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    events: int = 0
    unverified: int = 0
    webhook_ids: set[str] = field(default_factory=set)
    duplicates: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, verdict: Verdict, headers: Mapping[str, str]) -> None:
        now = time.perf_counter()
        self.events += 1
        if not verdict.verified:
            self.unverified += 1
        webhook_id = headers.get("webhook-id", "")
        if webhook_id in self.webhook_ids:
            self.duplicates += 1  # a retry of a delivery that had arrived: not a new event
            return
        self.webhook_ids.add(webhook_id)
        payload = verdict.payload if isinstance(verdict.payload, dict) else {}
        if payload.get("event") == CASE_STATUS_CHANGED:
            sequence = payload.get("sequence")
            self.by_case[str(payload.get("caseId"))].append(
                (now, sequence if isinstance(sequence, int) else None)
            )
            self.changed.set()

    async def nth(self, case_id: str, index: int, *, seconds: float = 60) -> float:
        """When the ``index``-th (0-based) status change event of ``case_id`` arrived."""
        deadline = time.perf_counter() + seconds
        while len(self.by_case[case_id]) <= index:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"status change {index} of case {case_id} never arrived")
            # The receiver runs in this event loop: nothing arrives between the check and here.
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), timeout=min(left, 1.0))
        return self.by_case[case_id][index][0]

    def out_of_order(self) -> int:
        """Status change events that arrived after a later one of the same case."""
        wrong = 0
        for arrivals in self.by_case.values():
            seqs = [s for _, s in arrivals if s is not None]
            wrong += sum(1 for a, b in itertools.pairwise(seqs) if b < a)
        return wrong


@dataclass
class Changer:
    """Status changes of one case, each answer's time kept in order."""

    api: Api
    who: Parties
    case_id: str
    answers: list[float] = field(default_factory=list)
    turn: itertools.count[int] = field(default_factory=itertools.count)
    busy: bool = False

    async def change(self) -> float:
        """One status change; how long the API took."""
        body = STATUS_CYCLE[next(self.turn) % len(STATUS_CYCLE)]
        self.busy = True
        try:
            started = time.perf_counter()
            await self.api.change_status(self.who.partner, self.case_id, **body)
            answered = time.perf_counter()
        finally:
            self.busy = False
        self.answers.append(answered)
        return answered - started


async def subscribe(api: Api, who: Parties, url: str) -> tuple[uuid.UUID, str]:
    """The creditor subscribes to every event (``POST /api/webhooks``); its id and secret."""
    created = expect(
        await api.http.post(
            "/api/webhooks",
            json={"url": url, "events": list(EVENT_TYPES)},
            headers=who.creditor.headers,
        ),
        201,
    )
    return uuid.UUID(created["id"]), str(created["secret"])


async def counts(s: Stack, subscription_id: uuid.UUID) -> tuple[int, int, int]:
    """Deliveries of the subscription: written, delivered, undelivered (the backlog)."""
    rows = WebhookDelivery.__table__
    async with s.sessions() as session:
        found = (
            await session.execute(
                select(
                    func.count(),
                    func.count(rows.c.delivered_at),
                    func.count().filter(rows.c.delivered_at.is_(None), rows.c.failed_at.is_(None)),
                ).where(rows.c.subscription_id == subscription_id)
            )
        ).one()
    return int(found[0]), int(found[1]), int(found[2])


def slope_per_minute(samples: list[tuple[float, int]]) -> float:
    """The least-squares trend of (seconds, backlog) samples, in events per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_b = sum(b for _, b in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (b - mean_b) for t, b in samples)
    return 60 * cov / var if var else 0.0


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        NAME,
        {
            "changes": args.webhook_changes,
            "rate_per_minute": args.webhook_rate,
            "minutes": args.webhook_minutes,
            "cases": args.webhook_cases,
        },
    )
    arrivals = Arrivals()
    async with stack(database=args.database, extra_env={"WEBHOOKS_ALLOW_LOCALHOST": "true"}) as s:
        api = Api(s.http)
        with phase("setup"):
            who = await parties(s)
            cases = [await case_in_collection(api, who) for _ in range(args.webhook_cases)]
            handle = await bare.start(s.bare_client, s.bare_task_queue, {"status": "Created"})
            serial = itertools.count()

            async def bare_update() -> None:
                await bare.change(handle, {"message": f"Message {next(serial)}"})

            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        # The receiver's secret is only known once subscribed: build it, then serve it.
        subscription_id, secret = await subscribe(api, who, url)
        receiver = Receiver(secret=secret, echo=None, on_delivery=arrivals)
        server = uvicorn.Server(
            uvicorn.Config(receiver, log_level="warning", access_log=False, lifespan="off")
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            latency = await _latency(args, s, api, who, cases[0], arrivals, bare_update)
            sustained = await _sustained(args, s, api, who, cases[1:], arrivals, subscription_id)
        finally:
            server.should_exit = True
            await serving
            sock.close()
        s.check()

    ms = {k: summary([v * 1000 for v in values]) for k, values in latency.items()}
    report.data = {
        "latency_ms": ms,
        "sustained": sustained,
        "receiver": {
            "events": arrivals.events,
            "unverified": arrivals.unverified,
            "repeated_deliveries": arrivals.duplicates,
            "status_changes_out_of_order": arrivals.out_of_order(),
        },
    }
    b = ms["bare update"]
    report.figure(
        "status change → webhook p50",
        ms["webhook after answer"]["p50"],
        unit="ms",
        at_most=2000,
    )
    report.figure(
        "status change → webhook p99",
        ms["webhook after answer"]["p99"],
        unit="ms",
        note="(no target)",
    )
    report.figure(
        "request start → webhook p50",
        ms["webhook after request"]["p50"],
        b["p50"],
        unit="ms",
        note="vs a bare update (no target)",
    )
    report.figure("status change request p50", ms["status change"]["p50"], b["p50"], unit="ms")
    report.figure(
        "events offered / min",
        sustained["offered_per_minute"],
        unit="/min",
        at_least=0.95 * args.webhook_rate,
    )
    report.figure(
        "events delivered / min",
        sustained["delivered_per_minute"],
        unit="/min",
        at_least=0.95 * args.webhook_rate,
    )
    report.figure(
        "backlog trend",
        sustained["backlog_slope_per_minute"],
        unit="/min",
        at_most=0.01 * args.webhook_rate,
        note="undelivered rows, least squares",
    )
    report.figure("backlog max", float(sustained["backlog_max"]), unit="rows", note="(no target)")
    report.figure("drain after load", sustained["drain_seconds"], unit="s", note="(no target)")
    report.figure(
        "webhook after answer p50 under load",
        sustained["webhook_after_answer_ms"]["p50"],
        unit="ms",
        note="(no target)",
    )
    report.figure("signatures not verified", float(arrivals.unverified), unit="", at_most=0)
    report.figure(
        "status changes out of case order", float(arrivals.out_of_order()), unit="", at_most=0
    )
    return report


async def _latency(
    args: argparse.Namespace,
    s: Stack,
    api: Api,
    who: Parties,
    case_id: str,
    arrivals: Arrivals,
    bare_update: Any,
) -> dict[str, list[float]]:
    changer = Changer(api, who, case_id)
    samples: dict[str, list[float]] = defaultdict(list)
    batch = 5
    with phase(f"latency: {args.webhook_changes} status changes, interleaved with bare updates"):
        for _ in range(3):  # warm up both paths
            await changer.change()
            await arrivals.nth(case_id, len(changer.answers) - 1)
            await bare_update()
        done = 0
        while done < args.webhook_changes:
            for _ in range(min(batch, args.webhook_changes - done)):
                started = time.perf_counter()
                samples["status change"].append(await changer.change())
                answered = changer.answers[-1]
                arrived = await arrivals.nth(case_id, len(changer.answers) - 1)
                samples["webhook after answer"].append(arrived - answered)
                samples["webhook after request"].append(arrived - started)
                done += 1
            for _ in range(batch):
                samples["bare update"].append(await timed(bare_update))
        s.check()
    return samples


async def _sustained(
    args: argparse.Namespace,
    s: Stack,
    api: Api,
    who: Parties,
    cases: list[str],
    arrivals: Arrivals,
    subscription_id: uuid.UUID,
) -> dict[str, Any]:
    changers = [Changer(api, who, c) for c in cases]
    interval = 60 / args.webhook_rate
    seconds = args.webhook_minutes * 60
    in_flight: set[asyncio.Task[float]] = set()
    offered = skipped = failed = 0
    samples: list[dict[str, float]] = []
    backlog: list[tuple[float, int]] = []
    rotation = itertools.cycle(changers)
    written_before, delivered_before, _ = await counts(s, subscription_id)

    async def sample(started: float) -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            at = time.perf_counter() - started
            written, delivered, undelivered = await counts(s, subscription_id)
            samples.append(
                {"t": at, "written": written, "delivered": delivered, "backlog": undelivered}
            )
            backlog.append((at, undelivered))
            print(
                f"bench: t={at:5.0f} s  written {written - written_before:6d}  "
                f"delivered {delivered - delivered_before:6d}  backlog {undelivered:5d}",
                file=sys.stderr,
                flush=True,
            )

    def finished(task: asyncio.Task[float]) -> None:
        nonlocal failed
        in_flight.discard(task)
        if task.exception() is not None:
            failed += 1

    with phase(
        f"sustained: {args.webhook_rate:g} status changes/min for {args.webhook_minutes:g} min"
    ):
        started = time.perf_counter()
        sampler = asyncio.create_task(sample(started))
        try:
            for tick in itertools.count():
                due = started + tick * interval
                if due - started >= seconds:
                    break
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                changer = None
                for _ in changers:
                    candidate = next(rotation)
                    if not candidate.busy:
                        changer = candidate
                        break
                if changer is None:
                    skipped += 1  # every case has a change in flight: the API is behind
                    continue
                changer.busy = True  # taken now, before its task runs
                task = asyncio.create_task(changer.change())
                task.add_done_callback(finished)
                in_flight.add(task)
                offered += 1
            if in_flight:
                await asyncio.wait(in_flight)
            elapsed = time.perf_counter() - started
            written_end, delivered_end, _ = await counts(s, subscription_id)
            drain_started = time.perf_counter()
            while (await counts(s, subscription_id))[2] > 0:
                if time.perf_counter() - drain_started > 300:
                    break
                await asyncio.sleep(0.2)
            drain = time.perf_counter() - drain_started
            _, delivered_drained, _ = await counts(s, subscription_id)
        finally:
            sampler.cancel()
        s.check()
    after_answer: list[float] = []
    for changer in changers:
        for index, answered in enumerate(changer.answers):
            arrived = await arrivals.nth(changer.case_id, index, seconds=30)
            after_answer.append((arrived - answered) * 1000)
    phase_written = written_end - written_before
    phase_delivered = delivered_end - delivered_before
    return {
        "offered": offered,
        "skipped_all_cases_busy": skipped,
        "failed_requests": failed,
        "seconds": elapsed,
        "offered_per_minute": 60 * offered / seconds,
        "written": phase_written,
        "delivered_during_phase": phase_delivered,
        # Everything the phase made, delivered, over the time from its start until then.
        "delivered_per_minute": 60 * (delivered_drained - delivered_before) / (elapsed + drain),
        # The trend while changes were offered (not the tail's last answers).
        "backlog_slope_per_minute": slope_per_minute([(t, b) for t, b in backlog if t <= seconds]),
        "backlog_max": max((b for _, b in backlog), default=0),
        "drain_seconds": drain,
        "webhook_after_answer_ms": summary(after_answer),
        "samples": samples,
    }
