"""A ``ReplyClassifier`` that asks a model behind any OpenAI-compatible chat-completions endpoint
(OpenAI, Azure OpenAI, Ollama, vLLM; docs/operations.md "Scheduled jobs").

It sends the model a system prompt and the end of the task's thread (``StaleChatTask.thread``,
the last ``THREAD_LINES`` messages: personal data leaves the platform) and asks for strict JSON
``{"replyExpected": bool, "confidence": 0..1, "reason": str}``. The verdict is confident only at
or above the confidence threshold; anything else (a timeout, an HTTP error, an answer that is not
that JSON) raises ``ClassifierFailed``, and the cleanup leaves the task open.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activities.cleanup import ClassifierFailed
from domain.chat import ChatRole, ReplyVerdict, StaleChatTask

MAX_REASON_CHARS = 300

SYSTEM_PROMPT = """\
You triage the chat of a debt-collection platform between a creditor and a collection partner.
A chat task asks one side (the task owner) to reply to the other. Decide whether the task owner
still owes a reply to the last messages of the thread. No reply is expected when the other side
only acknowledges, thanks or confirms, or when the owner wrote last. A reply is expected when
anything asks a question, requests a document, an action or a decision, disputes something, or
is unclear. When in doubt, a reply is expected. Messages may be in Danish, German, Swedish,
Norwegian, Dutch or English.
Answer with one JSON object and nothing else:
{"replyExpected": true or false, "confidence": a number from 0 to 1, "reason": "one short sentence
in English"}"""


class ModelAnswer(BaseModel):
    """The JSON the model must answer with; anything else is no answer."""

    model_config = ConfigDict(strict=True, extra="ignore")

    reply_expected: bool = Field(alias="replyExpected")
    confidence: float = Field(ge=0, le=1)
    reason: str = Field(min_length=1)


class ChatCompletionsClassifier:
    """Asks ``{base_url}/chat/completions`` (a query in the base URL, e.g. Azure's
    ``api-version``, is kept). The key goes in ``Authorization: Bearer``, or as is in another
    header (``api_key_header="api-key"`` for Azure OpenAI)."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        api_key_header: str = "Authorization",
        timeout_seconds: float = 30.0,
        min_confidence: float = 0.8,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        self._url = url.copy_with(path=url.path.rstrip("/") + "/chat/completions")
        self._model = model
        self._min_confidence = min_confidence
        # What the cleanup's remembered verdicts are keyed by (activities/cleanup.py): another
        # model, endpoint or threshold asks again. Never the key.
        self.verdict_key = f"{model} at {self._url.host}{self._url.path} ≥ {min_confidence}"[:200]
        headers = {}
        if api_key:
            if api_key_header.lower() == "authorization":
                headers["Authorization"] = f"Bearer {api_key}"
            else:
                headers[api_key_header] = api_key
        self._http = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout_seconds), transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def request_body(self, task: StaleChatTask) -> dict[str, Any]:
        """What is sent: the model, the system prompt, who owns the task and the thread's end."""
        other = ChatRole.PARTNER if task.owner_role is ChatRole.CREDITOR else ChatRole.CREDITOR
        lines = "\n".join(
            f"[{line.created_at.isoformat()}] {line.role.value}: {line.body}"
            for line in task.thread
        )
        user = (
            f"The task owner is the {task.owner_role.value}; the other side is the "
            f"{other.value}.\nThe thread's last messages, oldest first:\n{lines}"
        )
        return {
            "model": self._model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user},
            ],
            "response_format": {"type": "json_object"},
            "temperature": 0,
        }

    async def classify(self, task: StaleChatTask) -> ReplyVerdict:
        if not task.thread:
            raise ClassifierFailed("no message to classify")
        try:
            response = await self._http.post(self._url, json=self.request_body(task))
        except httpx.TimeoutException:
            raise ClassifierFailed("the model did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ClassifierFailed(
                f"the model could not be reached ({type(exc).__name__})"
            ) from None
        if response.status_code != 200:
            raise ClassifierFailed(f"the model answered HTTP {response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
            answer = ModelAnswer.model_validate(json.loads(content))
        except (ValueError, KeyError, IndexError, TypeError, ValidationError):
            raise ClassifierFailed("the model's answer is not the JSON asked for") from None
        reason = " ".join(answer.reason.split())
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 3] + "..."
        return ReplyVerdict(
            reply_expected=answer.reply_expected,
            confident=answer.confidence >= self._min_confidence,
            reason=f"{reason} (model {self._model}, confidence {answer.confidence:.2f})",
        )
