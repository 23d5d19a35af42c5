"""``page``/``pageSize`` query parameters and the ``page`` envelope (SPEC.md "API")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from api.errors import invalid
from domain.base import ApiModel

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# The largest row offset a page may start at: databases take OFFSET as a 32- or 64-bit integer,
# and no list comes near it (a larger page would only ever be empty).
MAX_OFFSET = 2**31 - 1


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _page_params(
    page: Annotated[int | None, Query()] = None,
    page_pascal: Annotated[int | None, Query(alias="Page", include_in_schema=False)] = None,
    page_size: Annotated[int | None, Query(alias="pageSize")] = None,
    page_size_pascal: Annotated[
        int | None, Query(alias="PageSize", include_in_schema=False)
    ] = None,
) -> PageParams:
    number = page if page is not None else page_pascal
    size = page_size if page_size is not None else page_size_pascal
    number = 1 if number is None else number
    size = DEFAULT_PAGE_SIZE if size is None else size
    if number < 1:
        raise invalid("page", "must be 1 or more")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid("pageSize", f"must be between 1 and {MAX_PAGE_SIZE}")
    if (number - 1) * size > MAX_OFFSET:
        raise invalid("page", f"is too large: (page - 1) * pageSize must not exceed {MAX_OFFSET}")
    return PageParams(number, size)


PageDep = Annotated[PageParams, Depends(_page_params)]


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
