"""The HTTP service over a :class:`~graphrec.serve.live.LiveModel` (FastAPI; ``graphrec serve RUN_DIR``).

Endpoints (OpenAPI docs at ``/docs``):

* ``GET /recommend?user=U&k=10[&diversity=0.3][&exclude=I1,I2]``, and
  ``POST /recommend`` with ``{"history": [...], "k": 10}`` for a user the
  model has never seen (folded in; nothing stored);
* ``GET /explain?user=U&item=I[&format=json|png|html]``;
* ``GET /similar?item=I&k=10``;
* ``GET /search?q=TEXT[&user=U]&k=10[&personal_weight=0.05]``;
* ``POST /events`` ``[{"user": U, "item": I, "timestamp": T}, ...]`` and
  ``POST /items`` ``[{"item": I, "text": "...", "title": "..."}]``: writes,
  durable before the response, seen by the next request; they need
  ``Authorization: Bearer <token>`` when ``GRAPHREC_API_TOKEN`` is set;
* ``GET /health``, ``GET /metrics`` (Prometheus), ``GET /`` (a page).

Every list of items has one shape: ``{"user": U, "items": [{"item": I,
"score": 4.21, "title": "..."}]}``. Errors are JSON ``{"detail": "..."}``:
404 for an unknown user or item (named), 422 for a malformed request or a
value out of range, 415 for a body sent without a JSON content-type
(curl's ``-d`` without ``-H 'content-type: application/json'``), 409 for a
conflict, 401 without the token, 503 where the text encoder is missing;
never a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from graphrec.errors import ConfigError, GraphrecError, UnknownIdError
from graphrec.serve.live import MAX_TITLE_CHARS, ItemExists, LiveModel, NotExplainable, Recommendation, TextUnavailable

log = logging.getLogger(__name__)

#: request limits (a request beyond them is a 422 naming the limit)
MAX_K = 1000
MAX_QUERY_CHARS = 500
MAX_BATCH = 10_000
MAX_TEXT_CHARS = 5_000
#: the largest request body read (a 413 beyond): 1,000 new items of the longest text fit
MAX_BODY_BYTES = 16 * 2**20

Id = int | str
#: an id in a request body: a JSON integer or string (strict: ``true`` is not user 1, ``1.0`` not item 1)
InId = StrictInt | StrictStr
K = Annotated[int, Query(ge=1, le=MAX_K, description="list length")]


#: the HTTP status of each error a request can cause (the message is the error's)
ERROR_STATUS: dict[type[Exception], int] = {UnknownIdError: 404, ConfigError: 422, NotExplainable: 409, ItemExists: 409,
                                            TextUnavailable: 503}


class ItemOut(BaseModel):
    item: Id
    score: float
    title: str


class ItemList(BaseModel):
    """The one shape of every response that lists items."""

    user: Id | None
    items: list[ItemOut]


class HistoryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    history: list[InId] = Field(min_length=1, max_length=MAX_BATCH, description="items the user interacted with")
    k: StrictInt = Field(10, ge=1, le=MAX_K)
    exclude: list[InId] = Field(default_factory=list, max_length=MAX_BATCH)
    diversity: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False, strict=True)


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: InId
    item: InId
    timestamp: float | None = Field(None, ge=0, lt=1e11, allow_inf_nan=False, strict=True,
                                    description="seconds since the epoch (default: when received)")


class NewItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: InId
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="encoded with the run's text model")
    title: str | None = Field(None, max_length=MAX_TITLE_CHARS,
                              description=f"default: the text's first {MAX_TITLE_CHARS} characters")


class Accepted(BaseModel):
    accepted: int
    events: int = Field(description="events applied in this server since its bundle was trained")


class _Metrics:
    """Prometheus metrics (one registry per app; across ``--workers`` through prometheus_client's multiprocess
    mode, which ``graphrec serve`` turns on)."""

    def __init__(self, live: LiveModel) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("graphrec_requests", "HTTP requests", ["endpoint", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("graphrec_request_seconds", "request latency", ["endpoint"], registry=self.registry,
                                 buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10))
        self.events = Counter("graphrec_events_ingested", "interactions accepted by POST /events",
                              registry=self.registry)
        self.items = Counter("graphrec_items_added", "items accepted by POST /items", registry=self.registry)
        info = Gauge("graphrec_model_info", "the model served (value 1)", ["model", "version"], registry=self.registry,
                     multiprocess_mode="max")
        info.labels(live.deployed.name, live.version).set(1)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _items(user: object, recs: list[Recommendation]) -> Response:
    """The list shape (:class:`ItemList`), serialised by orjson straight from the results (no model validation:
    these are the server's own values)."""
    import orjson

    body = {"user": user, "items": [{"item": r.item, "score": r.score, "title": r.title} for r in recs]}
    return Response(orjson.dumps(body), media_type="application/json")


def _is_json(content_type: str) -> bool:
    """Whether a request's media type (``"application/json"``, ``"application/problem+json"``) holds JSON."""
    return content_type == "application/json" or (content_type.startswith("application/") and content_type.endswith("+json"))


def _split_ids(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def create_app(live: LiveModel, token: str | None = None) -> FastAPI:
    """The service for ``live``. ``token``: required by the write endpoints (default ``$GRAPHREC_API_TOKEN``)."""
    token = token if token is not None else (os.environ.get("GRAPHREC_API_TOKEN") or None)
    app = FastAPI(title="graphrec", version=_version(),
                  description=f"Recommendations, explanations and search from a trained {live.deployed.name} run, "
                              "updated by every interaction it receives.")
    metrics = _Metrics(live)
    app.state.live, app.state.metrics = live, metrics

    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(_Measure, metrics=metrics)

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    def answer_with(status: int) -> Any:
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            return error(status, str(exc))

        return handler

    for exc_type, status in ERROR_STATUS.items():
        app.add_exception_handler(exc_type, answer_with(status))

    def token_ok(request: Request) -> bool:
        if token is None:
            return True
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else request.headers.get("x-api-token", "")
        return hmac.compare_digest(given.encode(), token.encode())

    def authorised(request: Request) -> None:
        if not token_ok(request):
            raise _Unauthorised()

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI parses a body before it runs the route's dependencies: without the token, say that first
        route = request.scope.get("route")
        dependant = getattr(route, "dependant", None)
        if dependant is not None and any(d.call is authorised for d in dependant.dependencies) and not token_ok(request):
            return await unauthorised(request, _Unauthorised())
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not _is_json(kind) and any(tuple(e.get("loc", ()))[:1] == ("body",) for e in exc.errors()):
            # FastAPI (strict_content_type) reads a body without a JSON content-type as no JSON at all:
            # "Input should be a valid list" would mislead
            return error(415, f"the body must be JSON, sent with the header content-type: application/json "
                              f"(this request's content-type: {kind or 'none'})")
        parts = []
        for e in exc.errors()[:5]:
            loc = tuple(e.get("loc", ()))
            if e.get("type") == "json_invalid":  # loc is ("body", the character where parsing failed)
                reason = (e.get("ctx") or {}).get("error", "")
                parts.append(f"the body is not valid JSON (at character {loc[-1] if len(loc) > 1 else 0}"
                             f"{': ' + reason if reason else ''})")
                continue
            where = ".".join(str(x) for x in loc if x != "body") or "body"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return error(422, "; ".join(parts))

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    @app.exception_handler(_Unauthorised)
    async def unauthorised(_: Request, exc: _Unauthorised) -> JSONResponse:
        return JSONResponse({"detail": "this endpoint needs 'Authorization: Bearer <GRAPHREC_API_TOKEN>'"},
                            status_code=401, headers={"WWW-Authenticate": "Bearer"})

    @app.get("/recommend", response_model=ItemList, summary="top-k for a user (trained or added)")
    async def recommend(user: Annotated[str, Query(max_length=200)], k: K = 10,
                        diversity: Annotated[float, Query(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0,
                        exclude: Annotated[list[str], Query(description="item ids, repeated or comma-separated")] = [],  # noqa: B006
                        ) -> Response:
        recs = live.recommend(user, k=k, exclude=_split_ids(exclude) if exclude else (), diversity=diversity)
        return _items(live.user_id(live.user_index(user)), recs)

    @app.post("/recommend", response_model=ItemList, summary="top-k for a new user from their history (fold-in)")
    def recommend_history(body: HistoryRequest) -> Response:
        return _items(None, live.recommend_for_history(body.history, k=body.k, exclude=body.exclude,
                                                       diversity=body.diversity))

    @app.get("/similar", response_model=ItemList, summary="items nearest to an item in the model's space")
    async def similar(item: Annotated[str, Query(max_length=200)], k: K = 10) -> Response:
        return _items(None, live.similar(item, k=k))

    @app.get("/search", response_model=ItemList, summary="items by text, optionally blended with a user's scores")
    def search(q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)], k: K = 10,
               user: Annotated[str | None, Query(max_length=200)] = None,
               personal_weight: Annotated[float, Query(ge=0.0, le=10.0, allow_inf_nan=False)] = 0.05) -> Response:
        recs = live.search(q, k=k, user=user, personal_weight=personal_weight)
        return _items(live.user_id(live.user_index(user)) if user is not None else None, recs)

    @app.get("/explain", summary="why an item scores for a user (the trained model's explanation)",
             responses={200: {"content": {"application/json": {}, "image/png": {}, "text/html": {}}}})
    def explain(user: Annotated[str, Query(max_length=200)], item: Annotated[str, Query(max_length=200)],
                format: Literal["json", "png", "html"] = "json") -> Response:
        ex = live.explain(user, item)
        if format == "png":
            with tempfile.TemporaryDirectory() as tmp:
                path = ex.draw(Path(tmp) / "why.png")
                return Response(path.read_bytes(), media_type="image/png")
        if format == "html":
            return HTMLResponse(ex.to_html())
        added = live.added_items(live.user_index(user))
        body = {**ex.to_dict(), "sentence": ex.text(),
                "note": (f"explains the trained model; the {len(added)} interaction(s) this user added since are "
                         "not in it" if added else None)}
        return JSONResponse(_plain(body))

    @app.post("/events", response_model=Accepted, dependencies=[Depends(authorised)],
              summary="record interactions (durable before the response; new users are created)")
    def events(body: Annotated[list[Event], Field(min_length=1, max_length=MAX_BATCH)]) -> Accepted:
        n = live.add_events([e.model_dump() for e in body])
        metrics.events.inc(n)
        return Accepted(accepted=n, events=live.events)

    @app.post("/items", response_model=Accepted, dependencies=[Depends(authorised)],
              summary="add catalogue items from their text (recommendable at once)")
    def items(body: Annotated[list[NewItem], Field(min_length=1, max_length=1000)]) -> Accepted:
        ids = live.add_items([x.model_dump() for x in body])
        metrics.items.inc(len(ids))
        return Accepted(accepted=len(ids), events=live.events)

    @app.get("/users", summary="some user ids (for the page)")
    async def users(limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, list[Id]]:
        return {"users": [live.user_id(i) for i in range(min(limit, live.users_count))]}  # type: ignore[misc]

    @app.get("/health", summary="liveness and what is served")
    async def health() -> dict[str, Any]:
        live.refresh()
        return {"status": "ok", **live.stats(), "auth": token is not None, "pid": os.getpid(),
                "text": live.item_text is not None and live._encode is not None}

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body, media = metrics.render()
        return Response(body, media_type=media)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        from graphrec.serve.page import PAGE

        return HTMLResponse(PAGE.replace("{{MODEL}}", live.deployed.name))

    return app


class _Unauthorised(Exception):
    pass


class _BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413, before anything reads it whole (by its
    content-length where it gives one, else as it arrives)."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._too_large(send)
            return
        seen, answered = [0], [False]

        async def counted() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request" and not answered[0]:
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.limit:  # answer now; to the app the client has gone
                    answered[0] = True
                    await self._too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def sending(message: dict[str, Any]) -> None:
            if not answered[0]:  # the app's own answer to the "disconnect" is dropped
                await send(message)

        await self.app(scope, counted, sending)

    async def _too_large(self, send: Any) -> None:
        body = json.dumps({"detail": f"the request body is over {self.limit // 2**20} MiB"}).encode()
        await send({"type": "http.response.start", "status": 413,  # closed: the rest of the body is not read
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _Measure:
    """ASGI middleware: each request's count (by endpoint, method, status) and latency, into the metrics.

    Plain ASGI rather than ``@app.middleware("http")``, whose request/response wrapping costs more than a
    ``/recommend`` itself."""

    def __init__(self, app: Any, metrics: _Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", "other")
            self.metrics.requests.labels(endpoint, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)


def _plain(x: Any) -> Any:
    from graphrec.fs import json_safe

    return json_safe(x)


def _version() -> str:
    from graphrec import __version__

    return __version__


def app_from_env() -> FastAPI:
    """The app of ``$GRAPHREC_SERVE_RUN_DIR`` (uvicorn's factory for ``--workers N``)."""
    from graphrec.serve.live import open_live

    run = os.environ.get("GRAPHREC_SERVE_RUN_DIR")
    if not run:
        raise GraphrecError("GRAPHREC_SERVE_RUN_DIR is not set (graphrec serve sets it for its workers)")
    import torch

    torch.set_num_threads(int(os.environ.get("GRAPHREC_SERVE_THREADS", "1")))
    return create_app(open_live(run, text=os.environ.get("GRAPHREC_SERVE_TEXT", "1") == "1",
                                index=os.environ.get("GRAPHREC_SERVE_INDEX", "exact"),
                                device=os.environ.get("GRAPHREC_SERVE_DEVICE", "cpu")))
