"""Render the task catalogue as Markdown (docs/tasks.md is this output; a test keeps it so).

.venv/bin/python -m domain.tasks_doc > docs/tasks.md
"""

from __future__ import annotations

from domain.tasks import CATALOGUE


def render() -> str:
    lines = [
        "# Task catalogue",
        "",
        "Generated from `domain/tasks.py` (`CATALOGUE`) by `python -m domain.tasks_doc`; do not edit",
        "by hand. bd = business days of the owning organisation's country (weekends and public",
        "holidays excluded), due at 23:59:59 in its time zone.",
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
        action = f"`{spec.action.method} {spec.action.path}`" if spec.action else "-"
        if spec.relationship_action:
            other = spec.relationship_action
            action += f"; relationship chat: `{other.method} {other.path}`"
        resolves = spec.resolves_when + (" (mark as done allowed)" if spec.mark_as_done else "")
        lines.append(
            f"| {spec.type.value} | {spec.label} | {spec.access.value if spec.access else 'either'} "
            f"| {spec.scope.value} | {deadline} | {resolves} | {action} | `{spec.solution_path}` |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
