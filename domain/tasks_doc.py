"""Render the task catalogue as Markdown (docs/tasks.md is this output; a test keeps it so).

.venv/bin/python -m domain.tasks_doc > docs/tasks.md
"""

from __future__ import annotations

import json

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
        "| type | label | for | scope | deadline | resolves when | action | solution page |",
        "|---|---|---|---|---|---|---|---|",
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
            f"| {spec.scope.value} | {deadline} | {resolves} | {action} | `{spec.solution_path}` |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
