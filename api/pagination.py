"""``page``/``pageSize`` query parameters, the ``after`` cursor of the big lists, and the
``page`` envelope (SPEC.md "API"; docs/api.md "Pagination")."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import SerializerFunctionWrapHandler, model_serializer

from api.errors import invalid
from domain.base import ApiModel
from store.cursor import Cursor, CursorError, decode_cursor

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# The largest row offset a page may start at: databases take OFFSET as a 32- or 64-bit integer,
# and no list comes near it (a larger page would only ever be empty).
MAX_OFFSET = 2**31 - 1
# The last page number: at any page size, its offset stays within MAX_OFFSET. The bounds are
# declared on the parameters, so the OpenAPI document states exactly what is enforced.
MAX_PAGE = MAX_OFFSET // MAX_PAGE_SIZE + 1
# ``GET /api/cases`` and ``GET /api/tasks`` count matches up to this many; past it they say
# "more than COUNT_LIMIT" (``totalResultsExact: false``) instead of counting every row.
COUNT_LIMIT = 1_000
MAX_CURSOR_LENGTH = 500

PageNumber = Annotated[int | None, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int | None, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)]


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _page_of(
    page: int | None,
    page_pascal: int | None,
    page_size: int | None,
    page_size_pascal: int | None,
    limit: int | None,
) -> PageParams:
    number = page if page is not None else page_pascal
    size = next((s for s in (page_size, page_size_pascal, limit) if s is not None), None)
    return PageParams(1 if number is None else number, DEFAULT_PAGE_SIZE if size is None else size)


# Seed 002's name for the page size (``GET /api/cases?status=...&limit=50``); ``pageSize`` and
# ``PageSize`` win over it. Like the PascalCase aliases, accepted but not listed.
LimitAlias = Annotated[
    int | None, Query(alias="limit", ge=1, le=MAX_PAGE_SIZE, include_in_schema=False)
]


# ``async def`` although they never wait: FastAPI runs a plain ``def`` dependency in a thread.
async def _page_params(
    page: PageNumber = None,
    page_pascal: Annotated[
        int | None, Query(alias="Page", ge=1, le=MAX_PAGE, include_in_schema=False)
    ] = None,
    page_size: PageSize = None,
    page_size_pascal: Annotated[
        int | None,
        Query(alias="PageSize", ge=1, le=MAX_PAGE_SIZE, include_in_schema=False),
    ] = None,
    limit: LimitAlias = None,
) -> PageParams:
    return _page_of(page, page_pascal, page_size, page_size_pascal, limit)


PageDep = Annotated[PageParams, Depends(_page_params)]


@dataclass(frozen=True)
class ListParams:
    """Where a page of a big list starts: at a page number, or after a cursor's position."""

    page: int | None  # None when the page starts after a cursor
    page_size: int
    after: Cursor | None

    @property
    def offset(self) -> int:
        return 0 if self.page is None else (self.page - 1) * self.page_size


async def _list_params(
    page: PageNumber = None,
    page_pascal: Annotated[
        int | None, Query(alias="Page", ge=1, le=MAX_PAGE, include_in_schema=False)
    ] = None,
    page_size: PageSize = None,
    page_size_pascal: Annotated[
        int | None,
        Query(alias="PageSize", ge=1, le=MAX_PAGE_SIZE, include_in_schema=False),
    ] = None,
    limit: LimitAlias = None,
    after: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR_LENGTH,
            description="Start after this position: the `nextCursor` of the page before (an "
            "opaque string; not together with `page`). A malformed cursor is a 422.",
        ),
    ] = None,
) -> ListParams:
    params = _page_of(page, page_pascal, page_size, page_size_pascal, limit)
    if after is None:
        return ListParams(params.page, params.page_size, None)
    if page is not None or page_pascal is not None:
        raise invalid("after", "cannot be combined with page")
    try:
        cursor = decode_cursor(after)
    except CursorError:
        raise invalid("after", BAD_CURSOR) from None
    return ListParams(None, params.page_size, cursor)


ListDep = Annotated[ListParams, Depends(_list_params)]

BAD_CURSOR = "is not a cursor of this list"


def position_after(params: ListParams, parse: Callable[[Cursor], T]) -> T | None:
    """The list's own position named by ``after`` (None without it); 422 if it is none."""
    if params.after is None:
        return None
    try:
        return parse(params.after)
    except CursorError:
        raise invalid("after", BAD_CURSOR) from None


class PageInfo(ApiModel):
    total_results: int
    page_size: int
    current_page: int
    response_count: int
    total_pages: int


def page_info(params: PageParams, *, total: int, count: int) -> PageInfo:
    return PageInfo(
        total_results=total,
        page_size=params.page_size,
        current_page=params.page,
        response_count=count,
        total_pages=math.ceil(total / params.page_size) if total else 0,
    )


class ListPageInfo(ApiModel):
    """The envelope of ``GET /api/cases`` and ``GET /api/tasks``: the five keys of every list,
    plus ``nextCursor`` when another page follows and ``totalResultsExact: false`` when the
    list holds more than COUNT_LIMIT matches (then ``totalResults`` says COUNT_LIMIT)."""

    total_results: int
    page_size: int
    current_page: int | None  # None on a page asked for with ``after``
    response_count: int
    total_pages: int
    total_results_exact: Literal[False] | None = None
    next_cursor: str | None = None

    @model_serializer(mode="wrap")
    def _drop_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        body: dict[str, Any] = handler(self)
        for key in ("totalResultsExact", "total_results_exact", "nextCursor", "next_cursor"):
            if key in body and body[key] is None:
                del body[key]
        return body


def list_page_info(
    params: ListParams, *, total: int, count: int, next_cursor: str | None
) -> ListPageInfo:
    """``total`` is the count up to COUNT_LIMIT + 1: more means "more than COUNT_LIMIT"."""
    shown = min(total, COUNT_LIMIT)
    return ListPageInfo(
        total_results=shown,
        total_results_exact=None if total <= COUNT_LIMIT else False,
        page_size=params.page_size,
        current_page=params.page,
        response_count=count,
        total_pages=math.ceil(shown / params.page_size) if shown else 0,
        next_cursor=next_cursor,
    )
