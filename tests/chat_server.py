"""A scripted OpenAI-compatible chat server for tests: real HTTP on 127.0.0.1, no network.

    with ChatServer(["DESCRIPTION: ...\\n<<<<<<< SEARCH ..."]) as server:
        researcher = LLMResearcher(base_url=server.url, model="test-model")
        ...
        assert len(server.requests) == 1

It answers `POST /v1/chat/completions` with the next scripted reply (a string, or a callable
that gets the request's JSON body and returns a string), falling back to `default` when the
queue is empty (HTTP 400 when there is no default). `fail_next(n, status)` makes the next n
requests fail first; they carry `retry-after-ms` so the openai client retries at once.
`requests` holds every request body received, failed ones included.
"""

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = str | Callable[[dict], str]


class ChatServer:
    def __init__(
        self,
        replies: Iterable[Reply] = (),
        default: Reply | None = None,
        prompt_tokens: int = 100,
        completion_tokens: int = 20,
    ):
        self.replies: deque[Reply] = deque(replies)
        self.default = default
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.requests: list[dict] = []
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL a client is given, like https://api.openai.com/v1."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def add_reply(self, reply: Reply) -> None:
        with self._lock:
            self.replies.append(reply)

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._failures.extend([status] * n)

    def start(self) -> "ChatServer":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answer(self, body: dict) -> tuple[int, dict, dict]:
        """(status, extra headers, JSON body) for one request."""
        with self._lock:
            self.requests.append(body)
            number = len(self.requests)
            if self._failures:
                status = self._failures.popleft()
                error = {"message": f"scripted failure (HTTP {status})", "type": "server_error"}
                return status, {"retry-after-ms": "1"}, {"error": error}
            reply = self.replies.popleft() if self.replies else self.default
        if reply is None:
            error = {"message": "the test chat server has no reply left", "type": "invalid_request"}
            return 400, {}, {"error": error}
        content = reply(body) if callable(reply) else reply
        completion = {
            "id": f"chatcmpl-test-{number}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "test-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
        }
        return 200, {}, completion


def _handler(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {}, {"error": {"message": f"no route {self.path}"}})
                return
            length = int(self.headers.get("content-length", 0))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError:
                self._send(400, {}, {"error": {"message": "the body is not JSON"}})
                return
            self._send(*server._answer(body))

        def _send(self, status: int, headers: dict, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args) -> None:  # keep test output quiet
            pass

    return Handler
