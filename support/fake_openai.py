"""A local, OpenAI-compatible embeddings server for tests and benchmarks.

It speaks enough of ``POST /v1/embeddings`` for the official ``openai`` client
(both ``encoding_format="float"`` and the client's default ``"base64"``), returns
deterministic word-based vectors (texts sharing words are close), records what
it received, and can inject faults::

    with FakeOpenAI() as server:
        client = openai.OpenAI(api_key="test-key", base_url=server.base_url)
        server.fail_next("429", retry_after=0.01)
        server.reject_inputs_containing = "POISON"  # 400 for requests with such an input
        ...
        assert server.input_counts()["hello"] == 1

Only binds to 127.0.0.1.
"""

from __future__ import annotations

import base64
import collections
import functools
import hashlib
import http.server
import json
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping

import numpy as np

DEFAULT_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
FALLBACK_DIMS = 1536
MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 8192
FAULT_KINDS = ("429", "500", "503", "timeout", "bad_json", "bad_base64", "wrong_dim", "wrong_count",
               "nan", "zero", "401")
RANDOM_FAULT_KINDS = ("429", "500", "timeout", "bad_json")

_TOKEN_RE = re.compile(r"[a-z0-9+#]+")


def _seed(data: str) -> int:
    return int.from_bytes(hashlib.blake2b(data.encode("utf-8"), digest_size=8).digest(), "little")


@functools.lru_cache(maxsize=4096)
def _token_vector(key: str, dims: int) -> np.ndarray:
    # Gaussian prefix property: the first d values are identical for any dims >= d,
    # so truncating a long embedding and renormalising equals computing it at d dims.
    vec = np.random.default_rng(_seed(key)).standard_normal(dims)
    vec.flags.writeable = False
    return vec


def fake_embedding(text: str, dims: int) -> np.ndarray:
    """Deterministic unit-length float32 embedding: normalised sum of per-word random vectors."""
    tokens = _TOKEN_RE.findall(text.lower())
    if tokens:
        total = np.zeros(dims)
        for token in tokens:
            total += _token_vector("tok:" + token, dims)
    else:
        total = _token_vector("text:" + text, dims).copy()
    return (total / np.linalg.norm(total)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _encoder():
    try:
        import tiktoken

        return tiktoken.get_encoding("cl100k_base")
    except Exception:  # not installed, or the BPE file is not cached and there is no network
        return None


def count_tokens(text: str) -> int:
    enc = _encoder()
    return len(enc.encode(text, disallowed_special=())) if enc is not None else len(text) // 4 + 1


def _error(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI

    def handle_error(self, request, client_address):  # quiet: clients hang up on timeouts
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API
    timeout = 30  # idle keep-alive connections give up eventually
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, format, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self):
        self.server.fake._track(self.connection, add=False)
        try:
            super().finish()
        except OSError:
            pass

    def send_json(self, status: int, body: object | bytes, headers: Mapping[str, str] = {}) -> None:
        if status >= 400 and self.server.fake.echo_key_in_errors and isinstance(body, dict) and "error" in body:
            presented = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            body = {"error": dict(body["error"], message=f"{body['error']['message']} "
                                  f"(request made with API key {presented})")}
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            self.server.fake._handle(self, raw)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self):
        try:
            self.server.fake._handle_get(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class FakeOpenAI:
    """OpenAI-compatible ``/v1/embeddings`` server on 127.0.0.1 (random port) in a background thread."""

    def __init__(
        self,
        api_key: str | None = "test-key",
        latency: float = 0.0,
        fault_rate: float = 0.0,
        fault_seed: int = 0,
        timeout_sleep: float = 5.0,
        default_dims: Mapping[str, int] | None = None,
        reject_inputs_containing: str | None = None,
        echo_key_in_errors: bool = False,
        always_float: bool = False,
    ):
        self.api_key = api_key
        # Float lists whatever encoding_format asked for, as some compatible servers do.
        self.always_float = always_float
        # Every error body quotes the API key the request was made with, in
        # full (worse than the real API, which masks it): for leak tests.
        self.echo_key_in_errors = echo_key_in_errors
        # A 400 for any request with an input containing this marker: one bad row.
        self.reject_inputs_containing = reject_inputs_containing
        self.latency = latency
        self.fault_rate = fault_rate
        self.timeout_sleep = timeout_sleep
        self.default_dims = dict(DEFAULT_DIMS if default_dims is None else default_dims)
        self._rng = random.Random(fault_seed)
        self._lock = threading.Lock()
        self._script: collections.deque[tuple[str, float | None]] = collections.deque()
        self._conns: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        self.requests: list[dict] = []
        self.inputs: list[str] = []
        self.faults: list[str] = []
        # Batch API (/v1/files, /v1/batches): uploaded files by id, batches by
        # id; a batch completes when it is first retrieved `batch_polls`
        # times (0: at once); `batch_inputs` records what batches embedded,
        # `batch_models` with which model and dimensions each request asked for.
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self.batch_polls = 0
        self.batch_inputs: list[str] = []
        self.batch_models: list[tuple[str, int]] = []
        self.batch_fail_inputs_containing: str | None = None

    # lifecycle -------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        if self._httpd is None:
            self._httpd = _Server(("127.0.0.1", 0), _Handler)
            self._httpd.fake = self
            self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="FakeOpenAI"
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:  # also cut open keep-alive connections so nothing is served after stop()
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    # recording and scripting -------------------------------------------------
    def fail_next(self, kind: str, times: int = 1, retry_after: float | None = None) -> None:
        """Make the next ``times`` embeddings requests fail with ``kind`` (FIFO across calls)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        with self._lock:
            self._script.extend([(kind, retry_after)] * times)

    def input_counts(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(self.inputs)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.inputs.clear()
            self.faults.clear()
            self._script.clear()

    def _next_fault(self) -> tuple[str | None, float | None]:
        with self._lock:
            if self._script:
                return self._script.popleft()
            if self.fault_rate > 0 and self._rng.random() < self.fault_rate:
                return self._rng.choice(RANDOM_FAULT_KINDS), None
        return None, None

    # request handling ----------------------------------------------------------
    def _authorized(self, h: _Handler) -> bool:
        if self.api_key is not None and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            h.send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
            return False
        return True

    # Batch API ----------------------------------------------------------------
    def _handle_get(self, h: _Handler) -> None:
        path = h.path.split("?")[0].rstrip("/")
        if not self._authorized(h):
            return
        m = re.fullmatch(r"/v1/files/([\w-]+)/content", path)
        if m and m.group(1) in self.files:
            return h.send_json(200, self.files[m.group(1)]["content"])
        m = re.fullmatch(r"/v1/batches/([\w-]+)", path)
        if m and m.group(1) in self.batches:
            with self._lock:
                batch = self.batches[m.group(1)]
                batch["_polls"] += 1
                if batch["status"] == "in_progress" and batch["_polls"] > self.batch_polls:
                    self._run_batch(batch)
            return h.send_json(200, {k: v for k, v in batch.items() if not k.startswith("_")})
        h.send_json(404, _error(f"Invalid URL (GET {h.path})", "invalid_request_error"))

    def _file(self, content: bytes, purpose: str, filename: str) -> dict:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = {"id": file_id, "object": "file", "bytes": len(content),
                               "created_at": int(time.time()), "filename": filename,
                               "purpose": purpose, "content": content}
        return {k: v for k, v in self.files[file_id].items() if k != "content"}

    def _upload(self, h: _Handler, raw: bytes) -> None:
        boundary = h.headers.get("Content-Type", "").split("boundary=")[-1].strip('"').encode()
        fields: dict[str, bytes] = {}
        filename = "upload.jsonl"
        for part in raw.split(b"--" + boundary):
            head, _, body = part.partition(b"\r\n\r\n")
            name = re.search(rb'name="([^"]+)"', head)
            if name:
                fields[name.group(1).decode()] = body[:-2] if body.endswith(b"\r\n") else body
                fn = re.search(rb'filename="([^"]+)"', head)
                if fn:
                    filename = fn.group(1).decode()
        if "file" not in fields or fields.get("purpose") != b"batch":
            return h.send_json(400, _error("a file with purpose 'batch' is required", "invalid_request_error"))
        with self._lock:
            h.send_json(200, self._file(fields["file"], "batch", filename))

    def _create_batch(self, h: _Handler, raw: bytes) -> None:
        body = json.loads(raw)
        file_id = body.get("input_file_id")
        if file_id not in self.files or body.get("endpoint") != "/v1/embeddings":
            return h.send_json(400, _error("unknown input_file_id or endpoint", "invalid_request_error"))
        lines = self.files[file_id]["content"].decode().splitlines()
        if len(lines) > 50_000:
            return h.send_json(400, _error("a batch holds at most 50,000 requests", "invalid_request_error"))
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        with self._lock:
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": "/v1/embeddings",
                "input_file_id": file_id, "completion_window": body.get("completion_window", "24h"),
                "status": "in_progress", "output_file_id": None, "error_file_id": None,
                "created_at": int(time.time()), "request_counts": {"total": len(lines),
                                                                    "completed": 0, "failed": 0},
                "_polls": 0}
            h.send_json(200, {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")})

    def _run_batch(self, batch: dict) -> None:
        """Embeds every request of the batch's input file (under self._lock)."""
        out, errors = [], []
        for line in self.files[batch["input_file_id"]]["content"].decode().splitlines():
            req = json.loads(line)
            texts, model, dims, fmt, tokens = self._validate(req["body"])
            marker = self.batch_fail_inputs_containing
            if marker and any(marker in t for t in texts):
                errors.append({"id": f"req_{uuid.uuid4().hex[:12]}", "custom_id": req["custom_id"],
                               "response": {"status_code": 400, "body": _error(
                                   f"Invalid input: contains {marker!r}.", "invalid_request_error")},
                               "error": None})
                continue
            self.batch_inputs.extend(texts)
            self.batch_models.append((model, dims))
            data = [{"object": "embedding", "index": i, "embedding": self._encode(fake_embedding(t, dims), fmt)}
                    for i, t in enumerate(texts)]
            out.append({"id": f"req_{uuid.uuid4().hex[:12]}", "custom_id": req["custom_id"],
                        "response": {"status_code": 200, "request_id": uuid.uuid4().hex, "body": {
                            "object": "list", "data": data, "model": model,
                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}},
                        "error": None})
        batch["output_file_id"] = self._file("\n".join(map(json.dumps, out)).encode() + b"\n",
                                             "batch_output", "output.jsonl")["id"]
        if errors:
            batch["error_file_id"] = self._file("\n".join(map(json.dumps, errors)).encode() + b"\n",
                                                "batch_output", "errors.jsonl")["id"]
        batch["status"] = "completed"
        batch["request_counts"].update(completed=len(out), failed=len(errors))

    def _handle(self, h: _Handler, raw: bytes) -> None:
        if self.latency:
            time.sleep(self.latency)
        path = h.path.split("?")[0].rstrip("/")
        if path in ("/v1/files", "/v1/batches"):
            if self._authorized(h):
                (self._upload if path == "/v1/files" else self._create_batch)(h, raw)
            return
        if path != "/v1/embeddings":
            return h.send_json(404, _error(f"Invalid URL (POST {h.path})", "invalid_request_error"))
        if not self._authorized(h):
            return
        try:
            body = json.loads(raw)
            texts, model, dims, fmt, tokens = self._validate(body)
        except ValueError as exc:  # also json.JSONDecodeError
            return h.send_json(400, _error(str(exc), "invalid_request_error"))

        marker = self.reject_inputs_containing
        if marker and any(marker in t for t in texts):
            with self._lock:
                self.requests.append({"model": model, "n_inputs": len(texts), "fault": "reject"})
                self.faults.append("reject")
            return h.send_json(400, _error(f"Invalid input: contains {marker!r}.", "invalid_request_error"))

        kind, retry_after = self._next_fault()
        headers = {k.lower(): v for k, v in h.headers.items() if k.lower() != "authorization"}
        with self._lock:
            self.requests.append(
                {"model": model, "n_inputs": len(texts), "dimensions": body.get("dimensions"),
                 "encoding_format": body.get("encoding_format"), "headers": headers, "fault": kind}
            )
            if kind is not None:
                self.faults.append(kind)

        if kind == "401":
            return h.send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        if kind == "429":
            extra = {} if retry_after is None else {
                "Retry-After": f"{retry_after:g}", "retry-after-ms": str(int(retry_after * 1000))}
            msg = f"Rate limit reached for {model} on requests per min (RPM). Please try again later."
            return h.send_json(429, _error(msg, "requests", "rate_limit_exceeded"), extra)
        if kind in ("500", "503"):
            msg = "The server had an error while processing your request. Sorry about that!"
            if kind == "503":
                msg = "The engine is currently overloaded, please try again later."
            return h.send_json(int(kind), _error(msg, "server_error"))
        if kind == "timeout":
            time.sleep(self.timeout_sleep)

        vectors = [fake_embedding(t, dims) for t in texts]
        if kind == "wrong_dim":
            vectors = [v[:-1] for v in vectors]
        elif kind == "wrong_count":
            vectors = vectors[:-1]
        elif kind == "zero":
            vectors = [np.zeros_like(v) for v in vectors]
        elif kind == "nan":
            vectors[0] = vectors[0].copy()
            vectors[0][0] = np.nan
        if self.always_float:
            fmt = "float"
        data = [{"object": "embedding", "index": i, "embedding": self._encode(v, fmt)} for i, v in enumerate(vectors)]
        if kind == "bad_base64":  # not base64, or not whole float32 values
            data[0]["embedding"] = "not base64!" if fmt == "base64" else "AAAA"
        payload = json.dumps({"object": "list", "data": data, "model": model,
                              "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}).encode()
        if kind == "bad_json":
            payload = payload[: len(payload) // 2]
        if kind is None:
            with self._lock:
                self.inputs.extend(texts)
        h.send_json(200, payload, {"openai-model": model})

    @staticmethod
    def _encode(vec: np.ndarray, fmt: str):
        if fmt == "base64":
            return base64.b64encode(vec.astype("<f4").tobytes()).decode("ascii")
        values = vec.astype(np.float32).tolist()
        return [None if x != x else x for x in values] if np.isnan(vec).any() else values  # NaN -> null

    def _validate(self, body: object) -> tuple[list[str], str, int, str, int]:
        if not isinstance(body, dict):
            raise ValueError("Request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError("you must provide a model parameter")
        inp = body.get("input")
        texts = [inp] if isinstance(inp, str) else inp
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            raise ValueError("'$.input' is invalid. Please check the API reference: "
                             "https://platform.openai.com/docs/api-reference.")
        if len(texts) > MAX_INPUTS:
            raise ValueError(f"'$.input' is invalid: at most {MAX_INPUTS} inputs are allowed, got {len(texts)}.")
        counts = [count_tokens(t) for t in texts]
        if max(counts) > MAX_INPUT_TOKENS:
            raise ValueError(f"This model's maximum context length is {MAX_INPUT_TOKENS} tokens, "
                             f"however you requested {max(counts)} tokens. Please reduce your prompt.")
        native = self.default_dims.get(model, FALLBACK_DIMS)
        dims = body.get("dimensions")
        if dims is None:
            dims = native
        elif model == "text-embedding-ada-002":
            raise ValueError("This model does not support specifying dimensions.")
        elif isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= native:
            raise ValueError(f"Invalid value for 'dimensions': must be an integer between 1 and {native}.")
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            raise ValueError("'encoding_format' must be one of 'float' or 'base64'.")
        return texts, model, dims, fmt, sum(counts)
