"""The portal: server-rendered pages under /portal for creditor, partner and ops users.

``install`` adds its routes and static files to the API's app; pages read through the same store
queries and act through the same commands as ``api/`` (see docs/portal.md)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.errors import Problem
from portal.pages import account, auth, case_actions, cases, chat, preferences, task, tasks
from portal.rendering import render
from portal.security import PREFIX, Signer, SignInRequired
from settings import Settings

STATIC = Path(__file__).parent / "static"


def _problem_page(request: Request, problem: Problem) -> Response:
    if request.app.state.portal_signer is None:  # nothing to sign the page's forms with
        return HTMLResponse(
            f"<!doctype html><title>caseloop</title><p>{problem.detail}</p>",
            status_code=problem.status,
        )
    title = {401: "Please sign in", 403: "Not allowed", 404: "Not found"}.get(
        problem.status, "Something went wrong" if problem.status >= 500 else "Please check this"
    )
    response = render(
        request, "problem.html", status_code=problem.status, title=title, detail=problem.detail
    )
    for name, value in (problem.headers or {}).items():
        response.headers[name] = value
    return response


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the portal from ``app``: its pages, static files and HTML error pages."""
    app.state.portal_signer = Signer.from_settings(settings)
    app.state.html_problems = (PREFIX + "/", _problem_page)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        from urllib.parse import quote

        return RedirectResponse(f"{PREFIX}/sign-in?next={quote(exc.next_path)}", status_code=303)

    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("")
    async def home() -> Response:
        return RedirectResponse(PREFIX + "/tasks", status_code=303)

    router.include_router(auth.router)
    router.include_router(tasks.router)
    router.include_router(task.router)
    router.include_router(cases.router)
    router.include_router(account.router)
    router.include_router(chat.router)
    router.include_router(preferences.router)
    # Last: its /cases/{id}/{page} solution pages must not shadow the routes above.
    router.include_router(case_actions.router)
    app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC), name="portal-static")
