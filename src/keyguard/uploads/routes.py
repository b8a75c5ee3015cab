"""Photo uploads into sessions (CONTRACT §6): the page, the upload, listing, download.

- ``GET /upload/ID``: the HTML form end users open (the session's ``upload_url``);
- ``POST /v1/sessions/ID/photos``: multipart ``file`` (+ ``password`` field or the
  ``X-{P}-Session-Password`` header), no API key;
- ``GET /v1/sessions/ID/photos``: poll mode, with the project key;
- ``GET /v1/photos/ID/download?expires=..&signature=..``: a signed, expiring link.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, status
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.responses import Response

from keyguard.api import problems
from keyguard.api.deps import AppContext, ContextDep, ProjectCaller, client_ip
from keyguard.clock import utc_from_ts
from keyguard.errors import KeyguardError, NotFound, UnsupportedMediaType, ValidationFailed
from keyguard.uploads import page as upload_page
from keyguard.uploads import photos
from keyguard.uploads.errors import SessionExpired
from keyguard.uploads.links import sign_download_link, verify_download_link
from keyguard.uploads.schemas import PhotoOut, PhotoPage
from keyguard.uploads.store import FileStore, LocalFileStore
from keyguard.uploads.views import PhotoView
from keyguard.wire import prefixed

router = APIRouter(tags=["uploads"])


def is_upload(method: str, path: str) -> bool:
    """``POST /v1/sessions/ID/photos``: the one route that takes bodies over the usual limit."""
    parts = path.split("/")
    return (
        method == "POST"
        and len(parts) == 5
        and parts[1:3] == ["v1", "sessions"]
        and (parts[4] == "photos")
    )


MULTIPART_OVERHEAD = 64 * 1024  # boundaries, part headers and the password field


def local_file_store(rt: AppContext) -> FileStore:
    """The embedded default: local disk under the data dir."""
    return LocalFileStore(rt.settings.data_dir / "photos")


def file_store(request: Request, rt: AppContext) -> FileStore:
    """The app's store (``app.state.file_store``, set by ``create_app``; another store,
    such as S3, may be put there before the app starts)."""
    return cast(FileStore, request.app.state.file_store)


def photo_out(rt: AppContext, request: Request, photo: PhotoView, *, with_link: bool) -> PhotoOut:
    url = expires = None
    if with_link:
        url, stamp = sign_download_link(
            rt.link_key,
            f"{rt.settings.public_base_url}/v1/photos/{photo.id}/download",
            photo.id,
            now=rt.clock.now(),
        )
        expires = utc_from_ts(stamp)
    return PhotoOut(
        id=photo.id,
        session_id=photo.session_id,
        filename=photo.filename,
        content_type=photo.content_type,
        size=photo.size,
        sha256=photo.sha256,
        created_at=photo.created_at,
        download_url=url,
        download_url_expires_at=expires,
    )


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


@router.get("/upload/{session_id}", include_in_schema=False)
async def upload_page_for(session_id: str, rt: ContextDep) -> Response:
    try:
        row = await photos.session_for_upload(rt, session_id)
    except SessionExpired:
        return upload_page.unavailable(410)
    except NotFound:
        return upload_page.unavailable(404)
    count = len(await photos.list_photos(rt, row.id, project_id=row.project_id))
    return upload_page.upload_form(
        row.id,
        password_required=row.password_protected,
        remaining=max(0, row.max_photos - count),
    )


@router.post(
    "/v1/sessions/{session_id}/photos",
    status_code=status.HTTP_201_CREATED,
    response_model=PhotoOut,
    responses={401: {}, 404: {}, 409: {}, 410: {}, 413: {}, 415: {}, 429: {}},
)
async def upload_photo(session_id: str, request: Request, rt: ContextDep) -> Response:
    try:
        return await _upload_photo(session_id, request, rt)
    except KeyguardError as exc:
        # The upload page's form posts here: a browser gets a page, an API client the
        # problem+json (CONTRACT §2) the error handler writes.
        if not _wants_html(request):
            raise
        return _error_page(exc, session_id)


def _error_page(error: KeyguardError, session_id: str) -> Response:
    """``error`` as a small HTML page: same status, same headers (``Retry-After``,
    ``WWW-Authenticate``) as its problem+json, the text escaped."""
    if error.status in (404, 410):
        page = upload_page.unavailable(error.status)
    else:
        page = upload_page.refused(
            session_id, error.title, error.detail or error.title, error.status
        )
    problem = problems.problem_response(error)
    for name, value in problem.headers.items():
        if name not in ("content-type", "content-length"):
            page.headers[name] = value
    return page


async def _upload_photo(session_id: str, request: Request, rt: AppContext) -> Response:
    row = await photos.session_for_upload(rt, session_id)
    limiter = rt.state.rate_limiter
    ip = client_ip(request)
    header_password = request.headers.get(prefixed(rt.settings.header_prefix).session_password)
    if header_password is not None:  # checked before the body is even read
        await photos.check_password(row, header_password, limiter=limiter, client_ip=ip)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the photo as multipart/form-data in the field 'file'")
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=4096)
    except HTTPException:
        raise ValidationFailed("the multipart body is not valid") from None
    try:
        if header_password is None:
            field = form.get("password")
            password = field if isinstance(field, str) else None
            await photos.check_password(row, password, limiter=limiter, client_ip=ip)
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or upload.size is None:
            raise ValidationFailed("the photo must be sent in the multipart field 'file'")
        photo = await photos.add_photo(
            rt,
            file_store(request, rt),
            row,
            photos.IncomingFile(upload.file, upload.size, upload.filename),
            download_base=rt.settings.public_base_url,
            max_bytes=rt.settings.max_upload_bytes,
        )
    finally:
        await form.close()
    if _wants_html(request):
        return upload_page.uploaded(row.id, photo.filename)
    body = photo_out(rt, request, photo, with_link=False)
    return Response(body.model_dump_json(), status_code=201, media_type="application/json")


@router.get("/v1/sessions/{session_id}/photos", response_model=PhotoPage)
async def list_photos(
    session_id: str, request: Request, rt: ContextDep, caller: ProjectCaller
) -> PhotoPage:
    found = await photos.list_photos(rt, session_id, project_id=caller.project_id or "")
    return PhotoPage(data=[photo_out(rt, request, p, with_link=True) for p in found])


@router.get("/v1/photos/{photo_id}/download", responses={403: {}, 404: {}})
async def download_photo(
    photo_id: str,
    request: Request,
    rt: ContextDep,
    expires: str | None = Query(default=None, max_length=16),
    signature: str | None = Query(default=None, max_length=128),
) -> Response:
    # The signature is checked before any look-up: a forged link learns nothing.
    verify_download_link(rt.link_key, photo_id, expires, signature, now=rt.clock.now())
    photo = await photos.get_photo(rt, photo_id)
    try:
        data = await file_store(request, rt).get(photo.storage_key)
    except (FileNotFoundError, ValueError):
        raise NotFound() from None
    ascii_name = photo.filename.encode("ascii", "ignore").decode().replace('"', "") or "photo"
    return Response(
        data,
        media_type=photo.content_type,
        headers={
            "Content-Disposition": (
                f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(photo.filename)}"
            ),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=300",
        },
    )


__all__ = ["MULTIPART_OVERHEAD", "is_upload", "router"]
