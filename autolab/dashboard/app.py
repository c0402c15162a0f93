"""The dashboard's ASGI app (Starlette) and the server that runs it (uvicorn).

Routes (all GET but the last; JSON unless said):
  /                                 the page (static/index.html)
  /static/...                       app.js, style.css; /static/vendor/plotly.min.js comes from
                                    the installed `plotly` wheel, never from a CDN
  /api/overview[?session=ID]        session state, reference, best, Δ, counts, alerts
  /api/experiments[?session=ID]     the table rows (the session's, and the manual runs)
  /api/experiments?researcher=NAME  only NAME's rows (manual: the person's `autolab train`)
  /api/experiments/N                one experiment: verdict, diff against its parent, log tail
  /api/experiments/N/metrics        its training curve
  /api/experiments/N/samples        text from its model (torch, loaded lazily in a thread)
  /api/experiments/N/surprisal      per-token loss of a text under its model, and with
                                    `compare=M` the difference against M's (GET ?text=&compare=,
                                    or POST {"text", "compare"} for long texts; no text: the
                                    start of the dev split); a bad request is a 4xx {"error"}
  /api/mattered[?session=ID]        what mattered: each scored experiment's constants and score,
                                    the constants that varied, Optuna's importance when enough
  /api/events[?after=ID&last=N]     ledger events
  /api/stream[?session=ID]          server-sent events: a snapshot, then what lands in the ledger
  POST /api/stop[?now=1]            ask the research loop to stop (as `autolab stop [--now]`)

Security: with a token every request must carry it (`?token=` or `Authorization: Bearer`),
the stream and static files included; the page passes it along. Without one (the default,
bound to 127.0.0.1) the Host header must name this machine, which stops DNS rebinding, and a
POST must come from the page's own origin.
"""

import contextlib
import ipaddress
import json
import secrets
import socket
import sqlite3
import time
from functools import partial
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, quote

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from autolab.dashboard.api import Dashboard, Follower
from autolab.dashboard.surprisal import MAX_TEXT_CHARS, RequestError
from autolab.errors import UsageError
from autolab.workspace import Workspace

STATIC_DIR = Path(__file__).parent / "static"
POLL_SECONDS = 0.5  # how often each stream reads the ledger
PING_SECONDS = 15.0  # a comment line keeps idle connections (and proxies) open
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # the token may be in the URL
    (b"x-frame-options", b"DENY"),  # nobody frames the Stop button
    (
        b"content-security-policy",
        b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"frame-ancestors 'none'",
    ),
]


def plotly_js() -> Path | None:
    """plotly.min.js inside the installed plotly package, or None when it is not installed."""
    try:
        path = resources.files("plotly") / "package_data" / "plotly.min.js"
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def is_local(host: str) -> bool:
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None) -> str | None:
    """The token to require: the one given; else none on a loopback address, a new one on any
    other (anyone on the network could otherwise read the ledger and stop the research)."""
    if token:
        return token
    return None if is_local(host) else secrets.token_urlsafe(18)


class Guard:
    """ASGI middleware: the token (or, without one, a local Host) on every HTTP request, and
    headers that keep the page from being framed or leaking its URL."""

    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        problem = self.check(scope)
        if problem:
            status, message = problem
            response = JSONResponse({"error": message}, status_code=status)
            return await response(scope, receive, self._with_headers(send))
        await self.app(scope, receive, self._with_headers(send))

    def check(self, scope) -> tuple[int, str] | None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if self.token is not None:
            given = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
            auth = headers.get("authorization", "")
            if auth.lower().startswith("bearer "):
                given = given or auth[7:].strip()
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return 401, "a token is required: open the URL `autolab dashboard` printed"
            return None
        host = headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if not is_local(hostname.strip("[]")):
            return 403, f"host {host!r} is not this machine"
        origin = headers.get("origin")
        if scope["method"] not in ("GET", "HEAD") and origin and origin.split("://")[-1] != host:
            return 403, "cross-origin request refused"
        return None

    @staticmethod
    def _with_headers(send):
        async def wrapped(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        return wrapped


def create_app(workspace: Workspace, token: str | None = None, poll: float = POLL_SECONDS):
    dash = Dashboard(workspace)
    token_qs = f"?token={quote(token, safe='')}" if token else ""
    index_html = (STATIC_DIR / "index.html").read_text().replace("{{TOKEN_QS}}", token_qs)
    vendor = plotly_js()

    def session_param(request: Request) -> int | None:
        value = request.query_params.get("session")
        return int(value) if value and value.isdigit() else None

    def api(data, status: int = 200) -> JSONResponse:
        return JSONResponse(data, status_code=status, headers={"cache-control": "no-store"})

    async def index(request: Request):
        return HTMLResponse(index_html, headers={"cache-control": "no-store"})

    async def plotly(request: Request):
        if vendor is None:
            return api({"error": "plotly is not installed: pip install 'autolab[dashboard]'"}, 404)
        return FileResponse(vendor, media_type="text/javascript")

    async def overview(request: Request):
        return api(await run_in_threadpool(dash.overview, session_param(request)))

    async def experiments(request: Request):
        researcher = request.query_params.get("researcher") or None
        return api(await run_in_threadpool(dash.experiments, session_param(request), researcher))

    async def experiment(request: Request):
        number = request.path_params["number"]
        found = await run_in_threadpool(dash.experiment, number)
        return api(found) if found else api({"error": f"no experiment {number}"}, 404)

    async def metrics(request: Request):
        return api(await run_in_threadpool(dash.metrics, request.path_params["number"]))

    async def samples(request: Request):
        return api(await run_in_threadpool(dash.samples, request.path_params["number"]))

    async def surprisal(request: Request):
        try:
            text, compare = await surprisal_params(request)
            found = await run_in_threadpool(
                dash.surprisal, request.path_params["number"], text, compare
            )
        except UsageError as err:  # RequestError carries its status; the rest are bad input
            return api({"error": str(err)}, getattr(err, "status", 400))
        return api(found)

    async def mattered(request: Request):
        return api(await run_in_threadpool(dash.mattered, session_param(request)))

    async def events(request: Request):
        after = request.query_params.get("after", "0")
        last = request.query_params.get("last")
        rows = await run_in_threadpool(
            partial(
                dash.events,
                after_id=int(after) if after.isdigit() else 0,
                last=int(last) if last and last.isdigit() else None,
                session_id=session_param(request),
            )
        )
        return api(rows)

    async def stop(request: Request):
        now = request.query_params.get("now") in ("1", "true")
        path = await run_in_threadpool(dash.request_stop, now)
        return api({"stop_requested": dash.stop_requested(), "path": str(path)})

    async def stream(request: Request):
        follower = Follower(dash, session_param(request))

        async def messages():
            yield "retry: 2000\n\n"
            quiet_since = time.monotonic()
            while True:
                try:
                    update = await run_in_threadpool(follower.tick)
                except sqlite3.OperationalError as err:  # reported to the page, then retried
                    update = {"problem": f"reading the ledger failed: {err}"}
                if update:
                    yield f"data: {json.dumps(update, allow_nan=False)}\n\n"
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since > PING_SECONDS:
                    yield ": ping\n\n"
                    quiet_since = time.monotonic()
                await anyio.sleep(poll)

        return StreamingResponse(
            messages(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    routes = [
        Route("/", index),
        Route("/static/vendor/plotly.min.js", plotly),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        Route("/api/overview", overview),
        Route("/api/experiments", experiments),
        Route("/api/experiments/{number:int}", experiment),
        Route("/api/experiments/{number:int}/metrics", metrics),
        Route("/api/experiments/{number:int}/samples", samples),
        Route("/api/experiments/{number:int}/surprisal", surprisal, methods=["GET", "POST"]),
        Route("/api/mattered", mattered),
        Route("/api/events", events),
        Route("/api/stream", stream),
        Route("/api/stop", stop, methods=["POST"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        dash.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = dash
    return Guard(app, token)


async def surprisal_params(request: Request) -> tuple[str | None, int | None]:
    """`text` and `compare` from the query (GET) or a JSON body (POST, for texts too long for a
    URL); a missing text is None (the panel's default), a missing compare no comparison."""
    if request.method == "POST":
        body = await request.body()
        if len(body) > 4 * MAX_TEXT_CHARS + 4096:  # UTF-8 and JSON escapes, then some
            raise RequestError(f"the text is too long: the panel scores {MAX_TEXT_CHARS:,} "
                               "characters at most", 413)  # fmt: skip
        try:
            params = json.loads(body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RequestError('send JSON: {"text": "...", "compare": N}') from None
        if not isinstance(params, dict):
            raise RequestError('send a JSON object: {"text": "...", "compare": N}')
    else:
        params = dict(request.query_params)
    text, compare = params.get("text"), params.get("compare")
    if text is not None and not isinstance(text, str):
        raise RequestError("text must be a string")
    if compare in (None, ""):
        return text, None
    if isinstance(compare, bool) or not str(compare).isdigit():
        raise RequestError(f"compare must be an experiment number, not {compare!r}")
    return text, int(compare)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line UsageError when the port is taken."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as err:
        raise UsageError(f"cannot bind to host {host!r}: {err.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not past a live listener
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        if err.errno in (98, 48, 10048):  # EADDRINUSE on Linux, macOS, Windows
            raise UsageError(f"port {port} is in use: pass --port N") from None
        raise UsageError(f"cannot listen on {host}:{port}: {err.strerror}") from None
    sock.set_inheritable(True)
    return sock


def make_server(
    workspace: Workspace, host: str, port: int, token: str | None
) -> tuple[uvicorn.Server, socket.socket]:
    """The server and its bound socket; `server.run(sockets=[sock])` serves until
    `server.should_exit` is set (or Ctrl-C in the main thread)."""
    sock = bind(host, port)
    config = uvicorn.Config(
        create_app(workspace, token),
        log_level="warning",
        access_log=False,
        lifespan="on",
        # Streams never end by themselves: give them a second, then close them.
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config), sock


def url(host: str, port: int, token: str | None) -> str:
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")
