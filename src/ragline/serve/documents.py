"""Routes for documents: upload (a background ingest job), job status, list, delete.

An upload is checked whole before anything is written: its size (413; the body is counted as
it arrives, so an oversized one is never spooled past the limit), each file's name (400: a bare
file name only, so nothing can land outside `<index>/uploads/<job>/`) and type (415). Then the
files are written and one job ingests them.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from ragline.ingest.loaders import LOADERS, supported
from ragline.ingest.metadata import MetadataError, parse_assignments
from ragline.serve.catalog import document_list
from ragline.serve.errors import ApiError
from ragline.serve.state import Services

MAX_FILES = 1000
MAX_NAME = 255

_UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": {"type": "object", "required": ["files"], "properties": {
        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "meta": {"type": "array", "items": {"type": "string"},
                 "description": "key=value, typed like `ragline ingest --meta`"}}}}}}}


class TooLarge(Exception):
    pass


def name_problem(name: str) -> str | None:
    """Why an uploaded file name is refused, or None for a bare, visible file name."""
    if not name:
        return "a file has no name"
    if "/" in name or "\\" in name:
        return f"{name!r}: file names may not contain / or \\"
    if ".." in name:
        return f"{name!r}: file names may not contain '..'"
    if name.startswith("."):
        return f"{name!r}: file names may not start with '.'"
    if len(name.encode("utf-8")) > MAX_NAME or any(ord(c) < 32 or c == ":" for c in name):
        return f"{name!r}: not a plain file name"
    return None


def _limited(receive: Any, limit: int) -> Any:
    """`receive` that raises TooLarge once the body passes `limit` bytes."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge
        return message

    return wrapped


async def _drain(receive: Any, cap: int) -> None:
    """Read (and drop) what is left of a refused body, so the client sees our 413 instead of a
    reset connection; give up after `cap` bytes."""
    seen = 0
    while seen <= cap:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _read_form(request: Request, limit: int) -> tuple[list[UploadFile], list[str]]:
    too_big = ApiError(413, f"upload larger than {limit // (1024 * 1024)} MB "
                       "(raise the server's --max-upload-mb)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        await _drain(request.receive, cap=4 * limit)
        raise too_big
    limited = Request(request.scope, _limited(request.receive, limit))
    try:
        form = await limited.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    except TooLarge:
        await _drain(request.receive, cap=4 * limit)
        raise too_big from None
    files, meta = [], []
    for key, value in form.multi_items():
        if key == "files":
            if not isinstance(value, UploadFile):
                raise ApiError(422, "files: expected a file, got a text field")
            files.append(value)
        elif key == "meta":
            if not isinstance(value, str):
                raise ApiError(422, "meta: expected key=value text, got a file")
            meta.append(value)
    return files, meta


def _write(files: list[UploadFile], folder: Path) -> None:
    """All the files into a new job folder, or none (a failed write leaves no folder)."""
    folder.mkdir(parents=True, exist_ok=False)
    try:
        for upload in files:
            target = folder / str(upload.filename)
            with target.open("xb") as out:
                upload.file.seek(0)
                shutil.copyfileobj(upload.file, out, 1 << 20)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def register(app: FastAPI, state: Services) -> None:
    @app.post("/v1/documents", tags=["documents"], status_code=202,
              dependencies=[Depends(state.write)], openapi_extra=_UPLOAD_SCHEMA)
    async def upload(request: Request) -> JSONResponse:
        files, meta_items = await _read_form(request, state.settings.max_upload_bytes)
        try:
            if not files:
                raise ApiError(422, "files: at least one file is required")
            names = [str(f.filename or "") for f in files]
            for name in names:
                if (why := name_problem(name)) is not None:
                    raise ApiError(400, why)
            if len(set(names)) != len(names):
                raise ApiError(400, "the same file name appears twice in one upload")
            for name in names:
                if not supported(Path(name)):
                    kinds = ", ".join(sorted(LOADERS))
                    raise ApiError(415, f"{name!r}: unsupported file type "
                                   f"{Path(name).suffix or '(no extension)'!r} (supported: "
                                   f"{kinds})")
            try:
                meta = parse_assignments(meta_items)
            except MetadataError as e:
                raise ApiError(422, "meta: " + str(e).removeprefix("--meta ")) from None
            job_id = state.jobs.new_id()
            folder = state.uploads / job_id
            await run_in_threadpool(_write, files, folder)
        finally:
            for f in files:
                await f.close()
        state.jobs.submit(job_id, folder, names, meta)
        return JSONResponse({"job": job_id, "files": names}, status_code=202)

    @app.get("/v1/jobs/{job_id}", tags=["documents"], dependencies=[Depends(state.read)])
    def job(job_id: str, wait: Annotated[float, Query(ge=0.0, le=60.0, description=(
            "seconds to wait for the job to finish before answering"))] = 0.0
            ) -> dict[str, Any]:
        found = state.jobs.get(job_id, wait=wait)
        if found is None:
            raise ApiError(404, f"no job with id {job_id!r}")
        return found

    @app.get("/v1/documents", tags=["documents"], dependencies=[Depends(state.read)])
    def list_documents() -> dict[str, Any]:
        return {"documents": document_list(state.index.store)}

    @app.delete("/v1/documents/{doc_id}", tags=["documents"], status_code=204,
                dependencies=[Depends(state.write)], response_class=Response)
    def delete_document(doc_id: int) -> Response:
        if not state.write_lock.acquire(timeout=60):
            raise ApiError(409, "an upload is being indexed; try again when it is done",
                           {"Retry-After": "10"})
        try:
            with state.index.store.write() as writer:
                doc = next((d for d in writer.documents() if d.id == doc_id), None)
                if doc is None:
                    raise ApiError(404, f"no document with id {doc_id}")
                writer.delete_document(doc_id)
                writer.commit()
        finally:
            state.write_lock.release()
        _forget_upload(state.uploads, Path(doc.path))
        state.counts()
        return Response(status_code=204)


def _forget_upload(uploads: Path, path: Path) -> None:
    """A deleted document that came in through the API loses its uploaded copy too."""
    try:
        path.resolve().relative_to(uploads.resolve())
    except (ValueError, OSError):
        return
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # its job folder, once empty
