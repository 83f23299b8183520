"""Start PosLab's server: ``streamlit run app.py`` with Streamlit's legacy pages-folder mode switched off.

A ``pages/`` folder beside the entry point makes Streamlit (1.36+) run a fresh server's first
script run in the old folder-based navigation (``PagesManager.uses_pages_directory``), until some
run calls ``st.navigation``. That first run resolves a deep link such as ``/segmentation-lab``
against the folder's file names, finds nothing and shows "Page not found" over the right page.
app.py always navigates with ``st.navigation``, so the mode is switched off before serving.

A URL of more than one path segment (``/grid-probe/extra``) would load Streamlit's page with its
scripts resolved below the first segment (``/grid-probe/static/...``), which answer the page's HTML
instead, so the browser shows a blank page. A browser asking for such a page is sent to
``/not-found?path=...`` instead, which app.py answers with its own "No such page" and links.

Streamlit fetches its plotly bundle (4.7 MB of JavaScript) only when a page's first chart arrives, then spends
seconds loading it before the chart shows. Every page's HTML therefore asks the browser to fetch that bundle at once
(``<link rel="modulepreload">``) and to run it once the page has connected, while the page's script runs; Home, which
draws no chart, runs it once its first run has finished, so the bundle does not hold up its text.

    python -m ui.serve [--host] [streamlit run options, e.g. --server.port 8502]

``--host`` serves a class: every interface (0.0.0.0), path boxes off (``POSLAB_DATA_ROOT`` unset), one running
job per session and one heavy job at a time on the server (``POSLAB_MAX_JOBS_PER_SESSION``, ``POSLAB_MAX_HEAVY``;
values already in the environment are kept).
"""
from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from streamlit import file_util
from streamlit.runtime.pages_manager import PagesManager
from streamlit.web import cli

APP = Path(__file__).resolve().parent.parent / "app.py"
HOST_FLAG = "--host"
HOST_LIMITS = {"POSLAB_MAX_JOBS_PER_SESSION": "1", "POSLAB_MAX_HEAVY": "1"}
NOT_FOUND = "not-found"  # the path a deep unknown URL is sent to (no page has it)
PRELOAD = ("torch", "torchvision", "pandas", "plotly.graph_objects", "ui.sidebar", "ui.probe", "ui.channel_code",
           "ui.seg", "ui.shift", "ui.export")  # the modules the pages import
PRELOADED_CHUNKS = ("PlotlyChart",)  # Streamlit's lazily loaded scripts every page's HTML preloads
STREAMLIT_ROOTS = {"_stcore", "static", "media", "component", "app", "auth"}  # Streamlit's own routes


def server_options(args: list[str], environ: Mapping[str, str] = os.environ) -> tuple[list[str], dict[str, str]]:
    """The ``streamlit run`` options and the environment for PosLab's command-line ``args``.

    Without ``--host``: localhost, headless. With it: every interface, no data root (path boxes off), the class's
    job limits. Options given in ``args`` win over these defaults; the rest pass through to Streamlit.
    """
    host = HOST_FLAG in args
    rest = [a for a in args if a != HOST_FLAG]
    given = {a.split("=", 1)[0] for a in rest if a.startswith("--")}
    defaults = {"--server.address": "0.0.0.0" if host else "localhost", "--server.headless": "true"}
    options = [item for name, value in defaults.items() if name not in given for item in (name, value)] + rest
    env = dict(environ)
    if host:
        env.pop("POSLAB_DATA_ROOT", None)
        env.update({name: env.get(name, value) for name, value in HOST_LIMITS.items()})
    return options, env


def _base_and_parts(path: str, base: str) -> tuple[str, list[str] | None]:
    """The base URL path as ``/base`` (``""`` for none) and ``path``'s segments below it (``None``: outside it)."""
    base = "/" + base.strip("/") if base.strip("/") else ""
    if base and not (path == base or path.startswith(base + "/")):
        return base, None
    return base, [p for p in path[len(base):].split("/") if p]


def deep_path_redirect(path: str, base: str = "") -> str | None:
    """Where a browser asking for page ``path`` of more than one segment is sent (``None``: served as it is)."""
    base, parts = _base_and_parts(path, base)
    if parts is None or len(parts) < 2 or parts[0] in STREAMLIT_ROOTS:
        return None
    return f"{base}/{NOT_FOUND}?path={quote('/' + '/'.join(parts))}"


def with_deep_path_redirect(app):
    """``app`` (Streamlit's ASGI app) with browsers' page requests of several path segments redirected."""
    from starlette.responses import RedirectResponse
    from streamlit import config

    async def wrapped(scope, receive, send):
        if scope["type"] == "http" and scope["method"] in {"GET", "HEAD"}:
            target = deep_path_redirect(scope["path"], config.get_option("server.baseUrlPath") or "")
            if target and _asks_html(scope):
                await RedirectResponse(target, status_code=302)(scope, receive, send)
                return
        await app(scope, receive, send)

    return wrapped


CONNECTED = "[data-test-connection-state=CONNECTED]"
FIRST_RUN_DONE = CONNECTED + "[data-test-script-state=notRunning]"  # the page reads "initial" until then


def preload_links(static_dir: Path | str | None = None, chunks: tuple[str, ...] = PRELOADED_CHUNKS,
                  when: str = CONNECTED) -> str:
    """Tags that fetch Streamlit's scripts named ``chunks`` (the file names carry a hash) at once and run them when
    the page matches the selector ``when``, after the frame then due is painted: by default once it has connected to
    the server, while its first script runs, so the first chart finds them ready."""
    folder = Path(static_dir or file_util.get_static_dir()) / "static" / "js"
    urls = [f"./static/js/{f.name}" for chunk in chunks for f in sorted(folder.glob(f"{chunk}.*.js"))]
    if not urls:
        return ""
    fetch = "".join(f'<link rel="modulepreload" crossorigin href="{url}">' for url in urls)
    imports = ";".join(f'import("{url}")' for url in urls)
    return fetch + ('<script type="module">const o=new MutationObserver(()=>{if(document.querySelector('
                    f'"{when}")){{o.disconnect();requestAnimationFrame(()=>setTimeout(()=>{{' + imports + '}))}});'
                    'o.observe(document,{subtree:true,attributes:true,childList:true})</script>')


def with_preload(html: bytes, links: str) -> bytes:
    """A page's HTML with ``links`` at the end of its head."""
    return re.sub(rb"</head>", links.encode() + b"</head>", html, count=1)


def _asks_html(scope) -> bool:
    return b"text/html" in dict(scope.get("headers", [])).get(b"accept", b"")


def is_home(path: str, base: str = "") -> bool:
    """Whether ``path`` is the app's root (Home) under the base URL path ``base``."""
    return _base_and_parts(path, base)[1] == []


def with_chart_preload(app, links: str, home_links: str | None = None):
    """``app`` with every HTML page it answers asking the browser to preload ``links`` (Home: ``home_links`` when
    given; uncompressed: the page is a few kB)."""
    from streamlit import config

    async def wrapped(scope, receive, send):
        if not links or scope["type"] != "http" or scope["method"] != "GET" or not _asks_html(scope):
            await app(scope, receive, send)
            return
        home = home_links is not None and is_home(scope["path"], config.get_option("server.baseUrlPath") or "")
        tags = home_links if home else links
        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"accept-encoding"]
        start: dict = {}
        body = b""

        async def patched(message):
            nonlocal start, body
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if not content_type.startswith(b"text/html"):
                    start = {}
                    await send(message)
                    return
                start = message
                return
            if message["type"] != "http.response.body" or not start:
                await send(message)
                return
            body += message.get("body", b"")
            if message.get("more_body"):
                return
            html = with_preload(body, tags)
            start["headers"] = [(k, str(len(html)).encode() if k == b"content-length" else v)
                                for k, v in start.get("headers", [])]
            await send(start)
            await send({"type": "http.response.body", "body": html})

        await app({**scope, "headers": headers}, receive, patched)

    return wrapped


def _install_redirect() -> None:
    """Wrap the app Streamlit's server builds in :func:`with_deep_path_redirect` and :func:`with_chart_preload`."""
    from streamlit.web.server.starlette import starlette_server

    build = starlette_server.create_starlette_app
    links, home_links = preload_links(), preload_links(when=FIRST_RUN_DONE)
    starlette_server.create_starlette_app = lambda runtime: with_chart_preload(with_deep_path_redirect(build(runtime)),
                                                                                links, home_links)


def preload() -> None:
    """Import what the pages use (torch, torchvision, plotly, pandas, the engine) and load the Channel code demo's
    networks before the server listens: the first visitor of a fresh server would otherwise wait seconds for these
    before any page shows."""
    import engine.core.tvfix  # noqa: F401  (before anything imports torchvision)
    for module in PRELOAD:
        importlib.import_module(module)
    from engine.channel import lab

    lab.permutation_demo(0)  # the demo's three networks into the engine's cache, and the CPU's conv kernels set up


def main(args: list[str]) -> None:
    """Run the Streamlit server on app.py with ``args``, navigation from ``st.navigation`` only."""
    options, env = server_options(args)
    os.environ.clear()
    os.environ.update(env)
    preload()
    PagesManager.uses_pages_directory = False
    _install_redirect()
    sys.argv = ["streamlit", "run", str(APP), *options]
    cli.main()


if __name__ == "__main__":
    main(sys.argv[1:])
