"""The nightly cleanup with a real model: the real HTTP client against a local OpenAI-compatible
chat-completions server (starlette behind uvicorn on 127.0.0.1) that answers from a script per
test; and the offline classifier's acknowledgements in the platform's languages."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.cleanup import AcknowledgementClassifier, ClassifierFailed
from activities.reply_model import ChatCompletionsClassifier
from domain.chat import ChatRole, CleanupInput, PostMessageInput
from domain.enums import Party
from domain.tasks import TaskType
from settings import Settings
from tests.support import Actor, free_socket, post_in_relationship, serve
from tests.workflows.test_cleanup import run_cleanup, say, stale
from tests.workflows.test_intake import task_rows
from tests.workflows.test_lifecycle import accepted_case, state_of
from worker import build_worker
from workflows.case import CaseWorkflow

MODEL = "test-model"
NO_REPLY_REASON = "The other side only confirms; nothing is asked."
Answer = Callable[[dict[str, Any]], Awaitable[Response]]


def completion(content: str) -> Response:
    return JSONResponse(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
    )


def verdict(reply_expected: bool, confidence: float, reason: str) -> Response:
    return completion(
        json.dumps({"replyExpected": reply_expected, "confidence": confidence, "reason": reason})
    )


def last_message(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"]).rsplit("\n", 1)[-1]


def said(body: dict[str, Any]) -> str:
    """What the last message of the thread the model was shown says (without who and when)."""
    return last_message(body).rsplit(": ", 1)[-1]


async def by_content(body: dict[str, Any]) -> Response:
    """A sensible model: a question needs a reply, anything else does not."""
    if "?" in last_message(body):
        return verdict(True, 0.97, "The other side asks for a document.")
    return verdict(False, 0.95, NO_REPLY_REASON)


@dataclass
class ModelServer:
    url: str
    answer: Answer = by_content
    requests: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
async def model_server() -> AsyncIterator[ModelServer]:
    server = ModelServer(url="")

    async def chat_completions(request: Request) -> Response:
        body = await request.json()
        server.requests.append((dict(request.headers), body))
        return await server.answer(body)

    app = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
    async with serve(app, free_socket()) as base:
        server.url = f"{base}/v1"
        yield server


def classifier(server: ModelServer, **options: Any) -> ChatCompletionsClassifier:
    return ChatCompletionsClassifier(base_url=server.url, model=MODEL, api_key="sk-test", **options)


async def two_cases_and_a_pair(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    task_queue: str,
) -> tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any]]:
    """The partner thanks on one case and asks on another (two creditor tasks); the creditor
    thanks in the pair's general chat (a partner task); then they all go overdue."""
    thanked = await accepted_case(env, sessions, creditor, partner, ops, task_queue)
    asked = await accepted_case(env, sessions, creditor, partner, ops, task_queue)
    await say(thanked, CaseWorkflow.post_message, partner, Party.PARTNER, "Thanks, all clear")
    await say(asked, CaseWorkflow.post_message, partner, Party.PARTNER, "Can you send the invoice?")
    await post_in_relationship(
        env.client,
        sessions,
        task_queue,
        creditor,
        partner,
        PostMessageInput(
            party=Party.CREDITOR,
            org_id=creditor.org_id,
            user_id=creditor.principal.user_id,
            body="Thanks, all clear",
        ),
    )
    await env.sleep(dt.timedelta(days=6))
    return thanked, asked


async def test_thanks_all_clear_is_resolved_with_the_models_reason_and_a_question_stays_open(
    ts_env: WorkflowEnvironment,
    ts_leaves_no_workflows: None,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    model_server: ModelServer,
) -> None:
    async with build_worker(
        ts_env.client, task_queue=task_queue, sessions=sessions, classifier=classifier(model_server)
    ):
        thanked, asked = await two_cases_and_a_pair(
            ts_env, sessions, creditor, partner, ops, task_queue
        )
        report = await run_cleanup(ts_env, task_queue)
        thanked_id = (await state_of(thanked)).record.case_id
        asked_id = (await state_of(asked)).record.case_id
    assert (report.looked_at, report.resolved, report.left_open, report.classified) == (3, 2, 1, 3)

    by_case = {t.case_id: t for t in await task_rows(sessions, TaskType.REPLY_TO_CHAT)}
    dismissed = by_case[thanked_id]
    assert dismissed.status == "Solved"
    assert dismissed.resolved_by == {
        "kind": "system",
        "userId": None,
        "reason": f"nightly cleanup: {NO_REPLY_REASON} (model {MODEL}, confidence 0.95)",
    }
    assert by_case[asked_id].status == "Open"
    # The partner's task (the creditor wrote last in the general chat) is covered too.
    [general] = await task_rows(sessions, TaskType.NEW_MESSAGE)
    assert general.status == "Solved"

    # What was sent: the model, strict JSON asked for, the key as a bearer token, the thread.
    headers, body = model_server.requests[0]
    assert headers["authorization"] == "Bearer sk-test"
    assert (body["model"], body["response_format"]) == (MODEL, {"type": "json_object"})
    assert body["messages"][0]["role"] == "system"
    owners = sorted(
        str(b["messages"][-1]["content"]).split(";")[0] for _, b in model_server.requests
    )
    assert owners == [
        "The task owner is the Creditor",
        "The task owner is the Creditor",
        "The task owner is the Partner",
    ]
    assert sorted(last_message(b).split("] ", 1)[1] for _, b in model_server.requests) == [
        "Creditor: Thanks, all clear",
        "Partner: Can you send the invoice?",
        "Partner: Thanks, all clear",
    ]


async def test_a_model_that_times_out_leaves_every_task_open_and_counted(
    ts_env: WorkflowEnvironment,
    ts_leaves_no_workflows: None,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    model_server: ModelServer,
) -> None:
    async def too_slow(body: dict[str, Any]) -> Response:
        await asyncio.sleep(3)
        return await by_content(body)

    model_server.answer = too_slow
    slow = classifier(model_server, timeout_seconds=0.3)
    async with build_worker(
        ts_env.client, task_queue=task_queue, sessions=sessions, classifier=slow
    ):
        await two_cases_and_a_pair(ts_env, sessions, creditor, partner, ops, task_queue)
        report = await run_cleanup(ts_env, task_queue)
    assert (report.looked_at, report.resolved, report.left_open, report.failed) == (3, 0, 3, 3)
    assert {t.status for t in await task_rows(sessions, TaskType.REPLY_TO_CHAT)} == {"Open"}


async def test_the_nights_cap_bounds_model_calls_across_pages_and_the_rest_wait(
    ts_env: WorkflowEnvironment,
    ts_leaves_no_workflows: None,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    model_server: ModelServer,
) -> None:
    settings = Settings(
        cleanup_model_base_url=model_server.url,
        cleanup_model=MODEL,
        cleanup_model_api_key="azure-key",
        cleanup_model_api_key_header="api-key",
        cleanup_model_max_calls_per_night=2,
    )
    # The worker builds the model classifier from the settings (no classifier given).
    async with build_worker(
        ts_env.client, task_queue=task_queue, sessions=sessions, settings=settings
    ):
        await two_cases_and_a_pair(ts_env, sessions, creditor, partner, ops, task_queue)
        report = await run_cleanup(ts_env, task_queue, CleanupInput(page_size=1))
        assert len(model_server.requests) == 2
        assert (report.looked_at, report.classified, report.deferred) == (3, 2, 1)
        assert report.left_open == 1 + (2 - report.resolved)
        headers, _ = model_server.requests[0]
        assert headers["api-key"] == "azure-key" and "authorization" not in headers
        # The next night asks about what is still open and was not asked about (the deferred
        # task), within its own cap; the verdict on the unchanged question still stands.
        again = await run_cleanup(ts_env, task_queue, CleanupInput(page_size=1))
    assert again.looked_at == 3 - report.resolved
    assert again.remembered == report.classified - report.resolved
    assert again.classified == again.looked_at - again.remembered == report.deferred == 1
    assert len(model_server.requests) == 2 + again.classified


async def test_a_cap_smaller_than_the_open_questions_reaches_every_task_night_after_night(
    ts_env: WorkflowEnvironment,
    ts_leaves_no_workflows: None,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    model_server: ModelServer,
) -> None:
    """With one call a night and two questions, the second night asks about the other one
    instead of the same oldest task again (its verdict stands while its thread is unchanged)."""
    settings = Settings(
        cleanup_model_base_url=model_server.url,
        cleanup_model=MODEL,
        cleanup_model_max_calls_per_night=1,
    )
    async with build_worker(
        ts_env.client, task_queue=task_queue, sessions=sessions, settings=settings
    ):
        first = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
        second = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
        await say(first, CaseWorkflow.post_message, partner, Party.PARTNER, "Invoice copy?")
        await say(second, CaseWorkflow.post_message, partner, Party.PARTNER, "Bank details?")
        await ts_env.sleep(dt.timedelta(days=6))
        nights = [await run_cleanup(ts_env, task_queue, CleanupInput()) for _ in range(3)]
    asked = [said(body) for _, body in model_server.requests]
    assert sorted(asked) == ["Bank details?", "Invoice copy?"]
    assert [n.classified for n in nights] == [1, 1, 0]
    assert [n.remembered for n in nights] == [0, 1, 2]
    assert [n.left_open for n in nights] == [2, 2, 2]


async def test_a_remembered_verdict_is_asked_again_when_the_thread_changes_or_it_is_old(
    ts_env: WorkflowEnvironment,
    ts_leaves_no_workflows: None,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    model_server: ModelServer,
) -> None:
    async with build_worker(
        ts_env.client, task_queue=task_queue, sessions=sessions, classifier=classifier(model_server)
    ):
        case = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
        await say(case, CaseWorkflow.post_message, partner, Party.PARTNER, "Invoice copy?")
        await ts_env.sleep(dt.timedelta(days=6))
        assert (await run_cleanup(ts_env, task_queue, CleanupInput())).classified == 1
        assert (await run_cleanup(ts_env, task_queue, CleanupInput())).remembered == 1
        # A new message in the thread: the standing verdict is about another conversation.
        await say(case, CaseWorkflow.post_message, partner, Party.PARTNER, "And the contract?")
        await ts_env.sleep(dt.timedelta(days=6))
        changed = await run_cleanup(ts_env, task_queue, CleanupInput())
        assert (changed.classified, changed.remembered) == (1, 0)
        # Thirty days on, unchanged, the model is asked again.
        await ts_env.sleep(dt.timedelta(days=31))
        old = await run_cleanup(ts_env, task_queue, CleanupInput())
        assert (old.classified, old.remembered) == (1, 0)
    assert [said(body) for _, body in model_server.requests] == [
        "Invoice copy?",
        "And the contract?",
        "And the contract?",
    ]


async def test_a_message_that_comes_while_the_model_thinks_keeps_the_task_open(
    ts_env: WorkflowEnvironment,
    ts_leaves_no_workflows: None,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    model_server: ModelServer,
) -> None:
    cases: list[WorkflowHandle[Any, Any]] = []

    async def follow_up_then_no(body: dict[str, Any]) -> Response:
        # The partner writes again in the thanked case's chat before the model answers.
        if "Partner: Thanks, all clear" in last_message(body):
            await say(cases[0], CaseWorkflow.post_message, partner, Party.PARTNER, "One more thing")
        return verdict(False, 0.99, NO_REPLY_REASON)

    model_server.answer = follow_up_then_no
    async with build_worker(
        ts_env.client, task_queue=task_queue, sessions=sessions, classifier=classifier(model_server)
    ):
        thanked, _ = await two_cases_and_a_pair(
            ts_env, sessions, creditor, partner, ops, task_queue
        )
        cases.append(thanked)
        report = await run_cleanup(ts_env, task_queue)
        thanked_id = (await state_of(thanked)).record.case_id
    # The model said "no reply" to all three; the thanked case's thread moved on meanwhile.
    assert (report.resolved, report.changed, report.left_open) == (2, 1, 1)
    by_case = {t.case_id: t for t in await task_rows(sessions, TaskType.REPLY_TO_CHAT)}
    assert by_case[thanked_id].status == "Open"


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (completion("Sure! No reply is needed."), "not the JSON asked for"),
        (completion(json.dumps({"replyExpected": "no", "confidence": 0.9, "reason": "x"})), "JSON"),
        (
            completion(json.dumps({"replyExpected": False, "confidence": 1.5, "reason": "x"})),
            "JSON",
        ),
        (completion(json.dumps({"replyExpected": False, "confidence": 0.9})), "JSON"),
        (JSONResponse({"id": "x"}), "JSON"),
        (PlainTextResponse("overloaded", status_code=503), "HTTP 503"),
    ],
)
async def test_an_answer_that_is_not_the_strict_json_is_no_answer(
    model_server: ModelServer, answer: Response, why: str
) -> None:
    async def scripted(body: dict[str, Any]) -> Response:
        return answer

    model_server.answer = scripted
    with pytest.raises(ClassifierFailed, match=why):
        await classifier(model_server).classify(stale((ChatRole.PARTNER, "Thanks, all clear")))


async def test_a_confident_no_below_the_threshold_is_unsure(model_server: ModelServer) -> None:
    async def lukewarm(body: dict[str, Any]) -> Response:
        return verdict(False, 0.6, "Probably just thanks.")

    model_server.answer = lukewarm
    task = stale((ChatRole.PARTNER, "Thanks, all clear"))
    unsure = await classifier(model_server, min_confidence=0.8).classify(task)
    assert (unsure.reply_expected, unsure.confident) == (False, False)
    sure = await classifier(model_server, min_confidence=0.5).classify(task)
    assert (sure.reply_expected, sure.confident) == (False, True)


async def test_an_unreachable_model_is_no_answer() -> None:
    with free_socket() as sock:  # bound, never listening: connection refused
        port = sock.getsockname()[1]
        model = ChatCompletionsClassifier(base_url=f"http://127.0.0.1:{port}/v1", model=MODEL)
        with pytest.raises(ClassifierFailed, match="could not be reached"):
            await model.classify(stale((ChatRole.PARTNER, "Thanks")))


@pytest.mark.parametrize(
    "last",
    [
        "Tak",
        "Mange tak!",
        "Tak for det",
        "Danke",
        "Vielen Dank!",
        "Danke schön, alles klar",
        "Tack",
        "Tack så mycket",
        "Takk",
        "Tusen takk",
        "Bedankt",
        "Dank je wel",
        "Thanks",
        "Thank you!",
        "OK",
        "👍",
        "🙏",
        "👍🏽🙏",
        "🙌",
    ],
)
async def test_the_offline_classifier_knows_acknowledgements_in_six_languages(last: str) -> None:
    verdict = await AcknowledgementClassifier().classify(stale((ChatRole.PARTNER, last)))
    assert (verdict.reply_expected, verdict.confident) == (False, True)


@pytest.mark.parametrize(
    "last",
    [
        "Tak, kan I sende fakturaen?",
        "Danke, bitte schicken Sie die Rechnung",
        "Tack, skicka fakturan",
        "Takk?",
        "Bedankt, maar het bedrag klopt niet",
        "Thanks, please send the invoice",
        "👍?",
        "❓",
    ],
)
async def test_the_offline_classifier_keeps_questions_and_requests_open(last: str) -> None:
    verdict = await AcknowledgementClassifier().classify(stale((ChatRole.PARTNER, last)))
    assert not (verdict.confident and not verdict.reply_expected)
