"""``python -m ui.serve`` (what scripts/start.sh runs): its options for a class, and where deep unknown paths go."""
from __future__ import annotations

import asyncio

from engine.core import paths
from ui.serve import FIRST_RUN_DONE, NOT_FOUND, deep_path_redirect, is_home, preload_links, server_options, with_chart_preload


def option(options: list[str], name: str) -> str:
    return options[options.index(name) + 1]


def test_default_is_localhost_with_path_boxes_as_before():
    options, env = server_options(["--server.port", "8502"], {"POSLAB_DATA_ROOT": "/srv/data"})
    assert option(options, "--server.address") == "localhost"
    assert option(options, "--server.port") == "8502"
    assert env == {"POSLAB_DATA_ROOT": "/srv/data"}


def test_host_binds_every_interface_turns_path_boxes_off_and_limits_jobs():
    options, env = server_options(["--host", "--server.port", "80"], {"POSLAB_DATA_ROOT": "/srv/data", "HOME": "/root"})
    assert "--host" not in options
    address = option(options, "--server.address")
    assert address == "0.0.0.0" and option(options, "--server.port") == "80"
    assert paths.data_root(address, env) is None  # ui.paths: no data root, so every path box is off
    assert env["POSLAB_MAX_JOBS_PER_SESSION"] == "1" and env["POSLAB_MAX_HEAVY"] == "1"


def test_options_and_limits_given_win_over_the_hosts_defaults():
    options, env = server_options(["--host", "--server.address=10.0.0.5"], {"POSLAB_MAX_HEAVY": "2"})
    assert options.count("--server.address=10.0.0.5") == 1 and "--server.address" not in options
    assert env["POSLAB_MAX_HEAVY"] == "2" and env["POSLAB_MAX_JOBS_PER_SESSION"] == "1"


def test_only_page_paths_of_several_segments_are_redirected():
    assert deep_path_redirect("/a/b") == f"/{NOT_FOUND}?path=/a/b"
    assert deep_path_redirect("/grid-probe/extra/") == f"/{NOT_FOUND}?path=/grid-probe/extra"
    for served in ("/", "/nope", "/grid-probe", "/static/js/index.js", "/_stcore/health", "/media/abc.png",
                   "/component/x/index.html", "/app/static/x.png"):
        assert deep_path_redirect(served) is None
    assert deep_path_redirect("/poslab/a/b", "poslab") == f"/poslab/{NOT_FOUND}?path=/a/b"
    assert deep_path_redirect("/poslab/grid-probe", "/poslab/") is None


def test_the_plotly_bundle_is_preloaded_by_every_html_page_and_nothing_else_changes():
    links, home_links = preload_links(), preload_links(when=FIRST_RUN_DONE)
    assert links.count("modulepreload") == 1 and "./static/js/PlotlyChart." in links  # Streamlit's hashed file name
    assert "notRunning" not in links and "notRunning" in home_links  # Home runs it after its first run
    assert is_home("/") and is_home("") and is_home("/poslab/", "poslab") and is_home("/poslab", "/poslab/")
    assert not is_home("/grid-probe") and not is_home("/poslab/grid-probe", "poslab")

    async def app(scope, receive, send):
        html = scope["path"] in ("/grid-probe", "/")
        body = b"<html><head><title>x</title></head><body></body></html>" if html else b"{}"
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/html; charset=utf-8" if html else b"application/json"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def get(path: str, accept: bytes) -> tuple[dict, bytes]:
        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "headers": [(b"accept", accept), (b"accept-encoding", b"gzip")]}
        asyncio.run(with_chart_preload(app, links, home_links)(scope, None, send))
        return dict(sent[0]["headers"]), b"".join(m.get("body", b"") for m in sent[1:])

    headers, body = get("/grid-probe", b"text/html,*/*")
    assert body.endswith(b"<title>x</title>" + links.encode() + b"</head><body></body></html>")
    assert int(headers[b"content-length"]) == len(body)
    assert get("/", b"text/html")[1].endswith(home_links.encode() + b"</head><body></body></html>")
    assert get("/_stcore/host-config", b"*/*")[1] == b"{}"
