"""Request-scoped dependencies. Writes open `runtime.db.transaction()` in the endpoint itself,
so a failed commit is the response, never an error after it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlmodel import Session

from hub.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_reader(request: Request) -> Iterator[Session]:
    with get_runtime(request).db.reader() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
ReaderDep = Annotated[Session, Depends(get_reader)]

# Row ids are INTEGER columns: a number past Postgres's int4 cannot name a row, and sent to the
# database it overflows the driver instead of finding nothing.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
RowCursor = Annotated[int | None, Query(ge=0, le=MAX_ROW_ID)]
