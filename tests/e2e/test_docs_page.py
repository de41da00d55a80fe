"""`/docs` works on a gateway without internet access: every asset the page loads is the gateway's
own (same origin), served from the package, and the page points Swagger UI at /openapi.json."""

from __future__ import annotations

import re
from importlib import resources

from tests.e2e.conftest import RunningServer


async def test_the_docs_page_loads_only_assets_of_the_gateway(server: RunningServer) -> None:
    page = await server.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "//" not in html.replace("<!doctype html>", ""), "a URL of another host"
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(u.split("?")[0] for u in urls) == [
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-ui.css",
        "/openapi.json",
    ]
    packaged = resources.files("omnirelay.http") / "static" / "swagger-ui"
    for url, name, media in (
        (next(u for u in urls if ".js?" in u), "swagger-ui-bundle.js", "text/javascript"),
        (next(u for u in urls if ".css?" in u), "swagger-ui.css", "text/css"),
    ):
        r = await server.client.get(url)
        assert r.status_code == 200 and r.headers["content-type"].startswith(media)
        assert r.content == (packaged / name).read_bytes()
    assert "SwaggerUIBundle" in (await server.client.get("/docs/swagger-ui-bundle.js")).text
    assert 'url: "/openapi.json"' in html
    assert "Apache License" in (packaged / "LICENSE").read_text()  # shipped with the assets
