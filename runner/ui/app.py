"""The dashboard application: routes (pages.py, api.py), static files, access, headers, errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from runner.errors import NotFoundError, RunnerError
from runner.ui import access, api, pages
from runner.ui.context import HERE, Dashboard, dashboard

SECURITY_HEADERS = {
    # scripts and styles from this server only: nothing a job wrote can run here
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
NEEDS_TOKEN = "a token is required: open the address `runner ui` printed, with its ?token=\n"

Next = Callable[[Request], Awaitable[Response]]


def create_app(
    board: Dashboard, *, token: str | None = None, allowed_hosts: Sequence[str] | None = None
) -> FastAPI:
    """token: required of every request when given. allowed_hosts: the Host names answered (all if None)."""
    app = FastAPI(title="runner", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.dashboard = board
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)

    @app.middleware("http")
    async def guard(request: Request, call_next: Next) -> Response:
        if token is not None:
            refused = check_token(request, token)
            if refused is not None:
                return refused
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    app.add_exception_handler(RunnerError, runner_error)  # type: ignore[arg-type]
    return app


def check_token(request: Request, token: str) -> Response | None:
    """None when the request may go on; else the answer: 401, or (a valid ?token= on a page a browser
    opens) a redirect that keeps the token in a cookie and out of the address bar."""
    given = access.token_given(request.query_params, request.cookies, request.headers)
    if not access.token_matches(token, given):
        return PlainTextResponse(NEEDS_TOKEN, 401)
    if "token" not in request.query_params or "text/html" not in request.headers.get("accept", ""):
        return None  # scripts and downloads may carry ?token= each time; browsers get the cookie
    rest = request.url.remove_query_params("token")
    response = RedirectResponse(rest.path + (f"?{rest.query}" if rest.query else ""), 303)
    response.set_cookie(access.COOKIE, token, httponly=True, samesite="strict")
    return response


async def runner_error(request: Request, error: RunnerError) -> Response:
    """A run that does not exist, a store that cannot be read: said as the commands say it."""
    status = 404 if isinstance(error, NotFoundError) else 500
    body = {"error": error.message, "hint": error.hint}
    if request.url.path.startswith("/api/"):
        return JSONResponse(body, status)
    context = {"error": body, "page": "error"}
    return dashboard(request).templates.TemplateResponse(request, "error.html", context, status_code=status)
