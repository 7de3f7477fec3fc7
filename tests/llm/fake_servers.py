"""Small loopback HTTP servers that speak the OpenAI and Ollama chat protocols.

A remote LLM server is outside our reach in tests, so these stand in for it
(stdlib http.server in a thread). Replies are derived from the request (they
echo the last user message), and every request is recorded for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeServer:
    def __init__(self, kind: str, model: str = "tiny", reply: str | None = None, delay: float = 0.0):
        self.kind, self.model, self.reply, self.delay = kind, model, reply, delay
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _json(self, payload: dict, status: int = 200) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
                if self.path.endswith("/models"):
                    self._json({"object": "list", "data": [{"id": server.model, "object": "model"}]})
                elif self.path.endswith("/api/tags"):
                    self._json({"models": [{"name": server.model, "model": server.model}]})
                else:
                    self._json({"error": "not found"}, 404)

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                question = [m for m in body.get("messages", []) if m.get("role") == "user"][-1]["content"]
                text = server.reply if server.reply is not None else f"You asked: {question}"
                words = [w for w in text.replace(" ", " \0").split("\0") if w] if text else []
                if self.path.endswith("/chat/completions"):
                    self._openai(body, text, words)
                elif self.path.endswith("/api/chat"):
                    self._ollama(body, words)
                else:
                    self._json({"error": "not found"}, 404)

            def _openai(self, body, text, words):
                base = {"id": "c1", "created": int(time.time()), "model": server.model}
                if not body.get("stream"):
                    self._json({**base, "object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": len(words), "total_tokens": 1 + len(words)}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                deltas = [{"role": "assistant", "content": ""}] + [{"content": w} for w in words]
                try:
                    for delta in deltas:
                        chunk = {**base, "object": "chat.completion.chunk",
                                 "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(server.delay)
                    end = {**base, "object": "chat.completion.chunk",
                           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    server.requests[-1]["client_left"] = True
                self.close_connection = True

            def _ollama(self, body, words):
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Connection", "close")
                self.end_headers()
                stamp = "2026-01-01T00:00:00Z"
                for word in words:
                    line = {"model": server.model, "created_at": stamp,
                            "message": {"role": "assistant", "content": word}, "done": False}
                    self.wfile.write((json.dumps(line) + "\n").encode())
                    self.wfile.flush()
                done = {"model": server.model, "created_at": stamp, "message": {"role": "assistant", "content": ""},
                        "done": True, "done_reason": "stop", "total_duration": 1, "load_duration": 1,
                        "prompt_eval_count": 1, "prompt_eval_duration": 1, "eval_count": len(words), "eval_duration": 1}
                self.wfile.write((json.dumps(done) + "\n").encode())
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/v1" if self.kind == "openai" else "")

    def __enter__(self) -> "FakeServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A loopback port with nothing listening."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
