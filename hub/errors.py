"""Every error the HTTP API answers is JSON `{"error": code, "detail": sentence}`.

A domain's error subclasses `DomainError` and carries its own status and code, so this module
maps the base and knows no domain; the state machine's `IllegalTransition` (a package of its
own, which knows nothing of HTTP) is the one other error mapped by name."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from state_machines.order import IllegalTransition


class ErrorBody(BaseModel):
    """The shape of every error the API answers."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "error": "illegal_transition",
                "detail": "cannot cancel an order that is completed",
            }
        }
    )

    error: str
    detail: str


class DomainError(Exception):
    """An error a service raises that the API answers as `status` with
    `{"error": code, "detail": str(error)}`; subclasses set `status` and `code`."""

    status: int = 400
    code: str = "bad_request"


class ApiError(DomainError):
    """An error an endpoint answers as it is: `status` with `{"error": code, "detail": detail}`."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(error_body(exc.code, str(exc)), exc.status, headers=headers)

    @app.exception_handler(IllegalTransition)
    async def _illegal(_: Request, exc: IllegalTransition) -> JSONResponse:
        return JSONResponse(error_body("illegal_transition", str(exc)), 409)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        )
        return JSONResponse(error_body("invalid_request", problems or "invalid request"), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code)

    @app.exception_handler(DataError)
    async def _unstorable(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the request carried (a NUL character in a text, a
        # number out of a column's range): the request is at fault, and nothing was written.
        return JSONResponse(
            error_body("invalid_request", "the request holds a value the database cannot store"),
            422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # The exception's text may quote anything (a URL, a remote answer): it goes to the log
        # (the server logs the traceback), never into the body.
        return JSONResponse(
            error_body("internal_error", f"an unexpected {type(exc).__name__}; see the hub's log"),
            500,
        )
