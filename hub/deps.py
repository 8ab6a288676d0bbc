"""Request-scoped dependencies. Writes open `runtime.db.transaction()` in the endpoint itself,
so a failed commit is the response, never an error after it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
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
