"""``page``/``pageSize`` query parameters and the ``page`` envelope (SPEC.md "API")."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from domain.base import ApiModel

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# The largest row offset a page may start at: databases take OFFSET as a 32- or 64-bit integer,
# and no list comes near it (a larger page would only ever be empty).
MAX_OFFSET = 2**31 - 1
# The last page number: at any page size, its offset stays within MAX_OFFSET. The bounds are
# declared on the parameters, so the OpenAPI document states exactly what is enforced.
MAX_PAGE = MAX_OFFSET // MAX_PAGE_SIZE + 1

PageNumber = Annotated[int | None, Query(ge=1, le=MAX_PAGE)]
PageSize = Annotated[int | None, Query(alias="pageSize", ge=1, le=MAX_PAGE_SIZE)]


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def _page_params(
    page: PageNumber = None,
    page_pascal: Annotated[
        int | None, Query(alias="Page", ge=1, le=MAX_PAGE, include_in_schema=False)
    ] = None,
    page_size: PageSize = None,
    page_size_pascal: Annotated[
        int | None,
        Query(alias="PageSize", ge=1, le=MAX_PAGE_SIZE, include_in_schema=False),
    ] = None,
) -> PageParams:
    number = page if page is not None else page_pascal
    size = page_size if page_size is not None else page_size_pascal
    return PageParams(1 if number is None else number, DEFAULT_PAGE_SIZE if size is None else size)


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
