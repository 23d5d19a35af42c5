"""The task catalogue is complete and is the single source the docs are generated from."""

from __future__ import annotations

from pathlib import Path

from domain.tasks import CATALOGUE, AccessLevel, Scope, TaskType
from domain.tasks_doc import render

DOC = Path(__file__).parents[2] / "docs" / "tasks.md"


def test_every_task_type_has_exactly_one_catalogue_entry() -> None:
    assert set(CATALOGUE) == set(TaskType)
    assert all(spec.type is key for key, spec in CATALOGUE.items())


def test_account_level_tasks_are_the_creditors_contract_and_bank_account() -> None:
    account = {t for t, spec in CATALOGUE.items() if spec.scope is Scope.ACCOUNT}
    assert account == {TaskType.SIGN_CONTRACT, TaskType.ASSIGN_BANK_ACCOUNT}
    assert all(CATALOGUE[t].access is AccessLevel.CREDITOR for t in account)


def test_docs_task_catalogue_is_generated_from_the_table() -> None:
    assert DOC.read_text() == render(), "run: .venv/bin/python -m domain.tasks_doc > docs/tasks.md"
