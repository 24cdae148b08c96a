"""The HTTP API: `create_app(index, backend, settings)` and the search / ask / page routes.

Documents and jobs are in `documents.py`, the OpenAI-compatible routes in `openai_compat.py`.
Searches run on the search gate's own threads (`cpu.py`), concurrently: each takes its own store
snapshot. Other sync routes (chunk, health) run in FastAPI's threadpool. Answers go through
the generation queue (`queue.py`).
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragline.errors import RaglineError
from ragline.generate.answer import AskResult
from ragline.generate.base import LLMBackend
from ragline.index import Index
from ragline.serve import documents, openai_compat
from ragline.serve.catalog import chunk_dict, find_chunk
from ragline.serve.errors import ApiError, Where, check_where, validation_message
from ragline.serve.metrics import MetricsMiddleware
from ragline.serve.queue import GenerationRun, QueueFull
from ragline.serve.sse import EventStream, event
from ragline.serve.state import ServeSettings, Services


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    k: int = Field(5, ge=1, le=100)
    mode: Literal["hybrid", "dense", "lexical"] = "hybrid"
    where: Where = None


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    k: int | None = Field(None, ge=1, le=100)
    where: Where = None
    short: bool = False


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def ask_events(state: Services, run: GenerationRun[AskResult]) -> Any:
    """`event: token` per piece, then `event: done` with `ragline ask --json`'s object."""

    async def stream() -> Any:
        async for kind, value in run.events():
            if kind == "token":
                yield event("token", {"text": value})
            elif kind == "done":
                state.metrics.tokens.inc(value.completion_tokens)
                yield event("done", value.to_dict())
            elif kind == "error":
                yield event("error", {"error": describe(value)})

    return stream()


def create_app(index: Index, backend: LLMBackend, settings: ServeSettings) -> FastAPI:
    """The app over an open index and a loaded backend (both stay owned by the caller)."""
    state = Services(index, backend, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        state.close()

    docs_assets = _swagger_assets()
    app = FastAPI(title="ragline", version="1", lifespan=lifespan,
                  description="Search and ask your documents; answers cite their passages.",
                  docs_url=None if docs_assets else "/docs", redoc_url=None)
    app.state.ragline = state
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    _handlers(app)
    if docs_assets is not None:
        _offline_docs(app, docs_assets)

    @app.get("/healthz", tags=["server"])
    def healthz() -> dict[str, Any]:
        documents_n, chunks_n = state.counts()
        return {"status": "ok", "documents": documents_n, "chunks": chunks_n}

    @app.get("/metrics", tags=["server"], response_class=Response,
             dependencies=[Depends(state.read)])
    def metrics() -> Response:
        state.counts()
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    @app.post("/v1/search", tags=["search"], dependencies=[Depends(state.read)])
    async def search(body: SearchRequest) -> dict[str, Any]:
        check_where(body.where)
        result = await state.searches.run(lambda: index.search(
            body.query, k=body.k, mode=body.mode, where=body.where))
        return result.to_dict()

    @app.post("/v1/ask", tags=["search"], dependencies=[Depends(state.read)],
              response_class=EventStream,
              responses={200: {"content": {"text/event-stream": {}},
                               "description": "token events, then one done event"}})
    async def ask(body: AskRequest) -> EventStream:
        check_where(body.where)
        asker = state.asker(body.k, body.where, body.short)
        ticket = state.queue.reserve()
        run = state.queue.run(ticket, lambda on_text, cancel: asker.ask(
            body.question, on_text=on_text, cancel=cancel))
        return EventStream(ask_events(state, run), on_close=run.close)

    @app.get("/v1/chunks/{chunk_id}", tags=["documents"], dependencies=[Depends(state.read)])
    def chunk(chunk_id: str) -> dict[str, Any]:
        row = find_chunk(state.index.store, chunk_id)
        if row is None:
            raise ApiError(404, f"no chunk with id {chunk_id!r}")
        return chunk_dict(row)

    documents.register(app, state)
    openai_compat.register(app, state)

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        page_file = settings.static_dir / "index.html"
        if not page_file.is_file():
            return error(404, "the web page is not installed")
        return FileResponse(page_file, headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=settings.static_dir, check_dir=False),
              name="static")
    return app


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the `fastapi-offline` package, so /docs works with no network;
    without it FastAPI's own /docs loads them from a CDN."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).resolve().parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def _offline_docs(app: FastAPI, assets: Path) -> None:
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title="ragline API",
            swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs-assets/favicon.png")


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return error(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, validation_message(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return error(exc.status_code, detail, exc.headers)

    @app.exception_handler(RaglineError)
    async def ragline_error(request: Request, exc: RaglineError) -> JSONResponse:
        return error(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error: {type(exc).__name__}: {exc}")
