"""HTTP for connecting an account by signing in: the admin call that starts it, and the
callback the system's authorize page sends the owner back to (authenticated by its state)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from hub.connections import signin
from hub.deps import ActorDep, RuntimeDep

admin_router = APIRouter(prefix="/admin/connections", tags=["connections"])
callback_router = APIRouter(tags=["connections"])

CALLBACK = "connection_sign_in_callback"
BINDING_COOKIE = "hub_sign_in_"  # + a prefix of the state's digest: one per pending sign-in
CALLBACK_PATH = "/connections/"
CONSOLE_DONE = "/console/connections"


class AuthorizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"name": "shop-b"}})

    name: str = Field(
        min_length=1,
        max_length=63,
        description="the new connection's name: `depop/<name>`; an existing one is updated",
    )


class AuthorizeAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "authorization_url": "https://www.depop.com/settings/oauth/apps/?response_type="
                "code&client_id=app&redirect_uri=https%3A%2F%2Fhub.example.com%2Fconnections%2F"
                "depop%2Fcallback&scope=orders_read%20orders_write%20products_read%20"
                "products_write&state=kq3...&code_challenge=E9Mel...&code_challenge_method=S256",
                "connection": "depop/shop-b",
                "expires_at": "2026-12-01T00:10:00Z",
            }
        }
    )

    authorization_url: str
    connection: str
    expires_at: datetime


class CallbackAnswer(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {"connection": "depop/shop-b", "status": "connected", "created": True}
        }
    )

    connection: str
    status: str
    created: bool


def callback_url(request: Request, system: str) -> str:
    return str(request.url_for(CALLBACK, system=system))


def binding_cookie(state: str) -> str:
    return BINDING_COOKIE + signin.digest(state)[:16]


def set_binding(response: Response, request: Request, started: signin.Started) -> None:
    """The console's half of the binding: a cookie only this browser holds, sent back with
    the system's redirect (SameSite=Lax: a top-level navigation from another site)."""
    assert started.binding is not None
    response.set_cookie(
        binding_cookie(started.state),
        started.binding,
        max_age=int(signin.STATE_LIFETIME.total_seconds()),
        path=CALLBACK_PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


@admin_router.post(
    "/{system}/authorize",
    response_model=AuthorizeAnswer,
    responses={
        404: {"description": "The system has no sign-in (sign_in_not_supported)"},
        409: {"description": "The hub's OAuth app is not configured (sign_in_not_configured)"},
        422: {"description": "A bad connection name (invalid_connection)"},
    },
)
def authorize(
    system: str,
    body: AuthorizeRequest,
    request: Request,
    actor: ActorDep,
    runtime: RuntimeDep,
) -> AuthorizeAnswer:
    """Start connecting the account `system/name` by its owner signing in: send the owner's
    browser to `authorization_url` within ten minutes. The state in it is single-use."""
    started = signin.start(
        runtime,
        system=system,
        name=body.name,
        actor=actor,
        callback_url=callback_url(request, system),
        console=False,
    )
    return AuthorizeAnswer(
        authorization_url=started.authorization_url,
        connection=started.key,
        expires_at=started.expires_at,
    )


@callback_router.get(
    "/connections/{system}/callback",
    name=CALLBACK,
    response_model=CallbackAnswer,
    responses={
        400: {
            "description": "No state the hub issued (invalid_state), an expired one "
            "(state_expired), the owner declined (access_denied), or the system refused the "
            "code (code_exchange_refused, authorization_refused)"
        },
        403: {
            "description": "A console sign-in finished in another browser "
            "(state_not_bound_to_this_browser)"
        },
        409: {
            "description": "The state was already used (state_already_used), or another "
            "sign-in of the connection is finishing (sign_in_in_progress; retry the link)"
        },
        502: {"description": "The system did not answer the code exchange (code_exchange_failed)"},
    },
)
def callback(
    system: str,
    request: Request,
    runtime: RuntimeDep,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
    error_description: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Where the system sends the owner back: `code` and `state`, or `error` and `state`. No
    admin token: the single-use state the hub issued authenticates it."""
    cookie = binding_cookie(state) if state else None
    finished = signin.finish(
        runtime,
        system=system,
        state=state,
        code=code,
        error=error,
        error_description=error_description,
        binding=request.cookies.get(cookie) if cookie else None,
    )
    # This process builds the new connector now; the others within their refresh interval.
    runtime.connectors.reload()
    if finished.console:
        # Back to the console page the operator started from, which says what was connected.
        response: Response = RedirectResponse(
            f"{CONSOLE_DONE}?{urlencode({'connected': finished.key})}", status_code=303
        )
    else:
        response = JSONResponse(
            CallbackAnswer(
                connection=finished.key, status="connected", created=finished.created
            ).model_dump()
        )
    if cookie:
        response.delete_cookie(cookie, path=CALLBACK_PATH, httponly=True, samesite="lax")
    return response
