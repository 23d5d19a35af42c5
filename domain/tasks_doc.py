"""Render the task catalogue as Markdown (docs/tasks.md is this output; a test keeps it so).

.venv/bin/python -m domain.tasks_doc > docs/tasks.md
"""

from __future__ import annotations

import json

from domain.escalation import KINDS, WORKING_HOUR, Ladder
from domain.tasks import CATALOGUE, Action


def call(action: Action | None) -> str:
    """An action as the docs show it: method, path and the body to send (``{...}`` fields come
    from the task; ``message`` is what you write)."""
    if action is None:
        return "-"
    body = dict(action.body or {})
    if action.message:
        body["message"] = "<your message>"
    shown = f" `{json.dumps(body, ensure_ascii=False)}`" if body else " (no body)"
    return f"`{action.method} {action.path}`{shown}"


def ladder(steps: Ladder) -> str:
    """A task type's escalation ladder as the docs show it, step by step."""
    return "; ".join(step.describe() for step in steps) or "none"


def render() -> str:
    lines = [
        "# Task catalogue",
        "",
        "Generated from `domain/tasks.py` (`CATALOGUE`) by `python -m domain.tasks_doc`; do not edit",
        "by hand. bd = business days of the owning organisation's country (weekends and public",
        "holidays excluded), due at 23:59:59 in its time zone.",
        "",
        "action: the call that solves the task, made from the task alone, with exactly the body",
        "shown (`{field}`: filled in from the task; `message`: the text you write). `-`: the call",
        "needs a person's choice (a rating, a quote, an amount, corrected data), so the task's",
        "`action` is null and its solution page does it.",
        "",
        "ladder: the escalation ladder (`domain/escalation.py`), its steps in order. Each step",
        "fires once per deadline, is recorded in the task's `escalations`, emits its event and",
        "sends one e-mail to its audience: `assignee` (the task's assignee, else the owning",
        "organisation's active users), `organisation` (its active users) or `admins` (its",
        "admins: its active users, docs/decisions/0014-escalation-ladder.md). Every step comes",
        f"at {WORKING_HOUR:%H:%M} local time (the owning organisation's time zone) on a business",
        "day: a step n bd before the deadline on the n-th business day before the deadline's",
        "day, n bd after it (or after the task opened) on the n-th business day after, and",
        "the breach at the first such moment after the deadline (the next business day's, for",
        "a deadline at 23:59:59), while the task is overdue from the deadline itself.",
        "Postponing plans the ladder again for the new deadline.",
        "",
        "| step kind | event | e-mail category | template |",
        "|---|---|---|---|",
        *(
            f"| {kind.value} | {spec.event or '-'} | {spec.category.value} | `{spec.template}` |"
            for kind, spec in KINDS.items()
        ),
        "",
        "| type | label | for | scope | deadline | resolves when | action | solution page "
        "| ladder |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in CATALOGUE.values():
        deadline = (
            "none"
            if spec.deadline is None
            else f"{spec.deadline.days} {'days' if spec.deadline.calendar else 'bd'}"
        )
        action = call(spec.action)
        if spec.relationship_action:
            action += f"; relationship chat: {call(spec.relationship_action)}"
        resolves = spec.resolves_when + (" (mark as done allowed)" if spec.mark_as_done else "")
        lines.append(
            f"| {spec.type.value} | {spec.label} | {spec.access.value if spec.access else 'either'} "
            f"| {spec.scope.value} | {deadline} | {resolves} | {action} | `{spec.solution_path}` "
            f"| {ladder(spec.ladder)} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
