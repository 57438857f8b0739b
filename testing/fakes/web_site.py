"""A fake web site on 127.0.0.1: pages, feeds, redirects and the ways real sites misbehave.

Tests and benchmarks register what each path answers (`page`, `feed`, `redirect`,
`slow`, `big`, `status`), and the site records every request it served. Feeds answer
conditional GETs: a request carrying the current ETag gets a 304.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    location: str | None = None
    delay: float = 0.0
    etag: str | None = None
    # A body streamed in chunks without a Content-Length, `size` bytes long.
    size: int | None = None


@dataclass
class Served:
    path: str
    headers: dict[str, str] = field(default_factory=dict)


class FakeSite:
    """An aiohttp server answering each registered path as told; unknown paths are 404."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.served: list[Served] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._server = TestServer(app, host="127.0.0.1")

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        await self._server.close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def page(
        self,
        path: str,
        html: str | bytes,
        *,
        status: int = 200,
        content_type: str = "text/html; charset=utf-8",
    ) -> str:
        body = html.encode() if isinstance(html, str) else html
        self.routes[path] = Route(body=body, status=status, content_type=content_type)
        return self.url(path)

    def feed(
        self,
        path: str,
        body: str | bytes,
        *,
        content_type: str = "application/rss+xml",
        etag: str | None = None,
    ) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route(body=data, content_type=content_type, etag=etag)
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        self.routes[path] = Route(status=status, location=location)
        return self.url(path)

    def slow(self, path: str, seconds: float) -> str:
        self.routes[path] = Route(body=b"<title>late</title>", delay=seconds)
        return self.url(path)

    def big(self, path: str, size: int) -> str:
        self.routes[path] = Route(size=size)
        return self.url(path)

    def status(self, path: str, status: int) -> str:
        self.routes[path] = Route(body=b"<title>error</title>", status=status)
        return self.url(path)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.served.append(Served(request.path, dict(request.headers)))
        route = self.routes.get(request.path_qs) or self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="not found")
        if route.delay:
            await asyncio.sleep(route.delay)
        if route.location is not None:
            return web.Response(status=route.status, headers={"Location": route.location})
        if route.size is not None:
            response = web.StreamResponse(headers={"Content-Type": route.content_type})
            await response.prepare(request)
            chunk = b"<p>" + b"x" * (64 * 1024 - 3)
            sent = 0
            while sent < route.size:
                try:
                    await response.write(chunk)
                except (ConnectionResetError, ConnectionError):
                    break
                sent += len(chunk)
            return response
        headers: dict[str, str] = {}
        if route.etag is not None:
            headers["ETag"] = route.etag
            if request.headers.get("If-None-Match") == route.etag:
                return web.Response(status=304, headers=headers)
        return web.Response(
            status=route.status,
            body=route.body,
            headers={**headers, "Content-Type": route.content_type},
        )
