"""The UI's static files, all shipped inside the package: ``/static/*`` from ``ui/static``
and ``/static/plotly.min.js`` from the installed ``plotly`` package (nothing from a CDN).

Pages link every asset with ``?v=<content hash or version>``, so responses may be cached
for a year. plotly.js (4.8 MB) is sent gzip-compressed to browsers that accept it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path

from fastapi import FastAPI, Request, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from conveyor.ui.rendering import STATIC_DIR

LONG_CACHE = "public, max-age=31536000, immutable"
PLOTLY_PATH = "/static/plotly.min.js"


class CachedStaticFiles(StaticFiles):
    """Static files with a year-long ``Cache-Control`` (pages link them by content hash)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = LONG_CACHE
        return response


def plotly_file() -> Path:
    """plotly.js as the ``plotly`` Python package ships it."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@functools.cache
def _plotly_bodies() -> tuple[bytes, bytes, str]:
    """plotly.js plain and gzipped, and its ETag (read and compressed once per process)."""
    plain = plotly_file().read_bytes()
    return plain, gzip.compress(plain, compresslevel=6, mtime=0), f'"{hashlib.sha256(plain).hexdigest()[:20]}"'


def plotly_js(request: Request) -> Response:
    """plotly.js, gzipped when the browser accepts it, cached for a year."""
    plain, packed, etag = _plotly_bodies()
    headers = {"Cache-Control": LONG_CACHE, "ETag": etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"})
    return Response(plain, media_type="text/javascript", headers=headers)


def mount_static(app: FastAPI) -> None:
    """Serve ``/static/plotly.min.js`` and ``/static/*`` on ``app`` (public paths: no token needed)."""
    app.add_api_route(PLOTLY_PATH, plotly_js, methods=["GET"], include_in_schema=False)
    app.mount("/static", CachedStaticFiles(directory=STATIC_DIR), name="static")
