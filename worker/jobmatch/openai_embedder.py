"""The `openai` embedder: the official client against api.openai.com or any
OpenAI-compatible endpoint (OPENAI_BASE_URL).

The client's own retries are off: this class retries itself so it can honour
Retry-After, use capped exponential backoff with full jitter, count every
attempt and let tests record the waits. Every response goes through
`check_vectors`; a bad payload is retried like a 5xx and never returned.
The API key never appears in a message, repr or log line."""

from __future__ import annotations

import base64
import binascii
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import openai

from .embedders import (OPENAI_NATIVE_DIMS, BadResponse, Embedded, EmbeddingError, Item,
                        ProviderAuthError, ProviderUnavailable, check_vectors, estimate_tokens,
                        model_key)

BYTES_PER_TOKEN = 3  # conservative: the same ratio as estimate_tokens
TIKTOKEN_LOAD_TIMEOUT = 3.0


def _decode(embedding):
    """A base64 vector (little-endian float32) as an array; a list (from a
    provider that ignores encoding_format) as it came."""
    if not isinstance(embedding, str):
        return embedding
    try:
        raw = base64.b64decode(embedding, validate=True)
    except (binascii.Error, ValueError):
        raise EmbeddingError("malformed vectors: invalid base64") from None
    if len(raw) % 4:
        raise EmbeddingError(f"malformed vectors: {len(raw)} bytes is not float32 data")
    return np.frombuffer(raw, dtype="<f4")


_encoder_lock = threading.Lock()
_encoder_state: list = []  # [] = not tried yet, [enc or None] = tried once


def _encoder():
    """tiktoken's cl100k_base, or None. Tried once per process, in a daemon
    thread: tiktoken downloads its BPE file without a timeout."""
    with _encoder_lock:
        if not _encoder_state:
            box: list = []

            def load():
                try:
                    import tiktoken
                    box.append(tiktoken.get_encoding("cl100k_base"))
                except Exception:  # not installed, or no cached BPE data and no network
                    pass

            thread = threading.Thread(target=load, daemon=True, name="tiktoken-load")
            thread.start()
            thread.join(TIKTOKEN_LOAD_TIMEOUT)
            _encoder_state.append(box[0] if box else None)
        return _encoder_state[0]


def count_tokens(text: str) -> int:
    enc = _encoder()
    return len(enc.encode(text, disallowed_special=())) if enc is not None else estimate_tokens(text)


def truncate(text: str, max_tokens: int) -> str:
    """`text` cut to at most `max_tokens` tokens (by bytes when tiktoken is missing)."""
    enc = _encoder()
    if enc is not None:
        tokens = enc.encode(text, disallowed_special=())
        return text if len(tokens) <= max_tokens else enc.decode(tokens[:max_tokens])
    data = text.encode("utf-8")
    limit = max_tokens * BYTES_PER_TOKEN
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


class OpenAIEmbedder:
    provider = "openai"

    def __init__(self, model: str = "text-embedding-3-small", dimensions: int | None = None,
                 api_key: str | None = None, base_url: str | None = None, timeout: float = 30.0,
                 max_retries: int = 5, max_inputs_per_request: int = 2048,
                 max_tokens_per_request: int = 300_000, max_tokens_per_input: int = 8191,
                 concurrency: int = 1, sleep=time.sleep, rng: random.Random | None = None,
                 backoff_base: float = 0.5, backoff_cap: float = 30.0):
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ValueError("OPENAI_API_KEY is not set: export it or pass api_key= to use the openai embedder")
        native = OPENAI_NATIVE_DIMS.get(model)
        if dimensions is None:
            if native is None:
                raise ValueError(f"unknown native dimensions for model {model!r}: pass dimensions=")
            dimensions = native
        if dimensions < 1 or (native is not None and dimensions > native):
            raise ValueError(f"invalid dimensions {dimensions} for model {model!r}")
        self._send_dims = model.startswith("text-embedding-3") and dimensions != native
        if native not in (None, dimensions) and not self._send_dims:
            raise ValueError(f"model {model!r} does not support dimensions={dimensions}")
        self.name, self.dimensions = model, dimensions
        self.model = model_key(model, dimensions)
        self.max_retries, self.max_inputs_per_request = max_retries, max(1, max_inputs_per_request)
        self.max_tokens_per_request, self.max_tokens_per_input = max_tokens_per_request, max_tokens_per_input
        self.concurrency = max(1, concurrency)
        self.sleep, self.rng = sleep, rng or random.Random()
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self._api_key = api_key
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0)
        self._executor = (ThreadPoolExecutor(self.concurrency, thread_name_prefix="openai-embed")
                          if self.concurrency > 1 else None)
        self.last_waits: list[float] = []
        # called after each request attempt: (seconds, 'ok'|'retried'|'failed', inputs)
        self.on_request: Callable[[float, str, int], None] | None = None

    def __repr__(self) -> str:
        return (f"OpenAIEmbedder(model={self.name!r}, dimensions={self.dimensions}, "
                f"base_url={str(self._client.base_url)!r}, concurrency={self.concurrency})")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._client.close()

    # batching ------------------------------------------------------------------
    def _batches(self, items: Sequence[Item]) -> tuple[list[list[str]], int]:
        batches: list[list[str]] = []
        batch: list[str] = []
        batch_tokens = truncated = 0
        for i, item in enumerate(items):
            if not item.text or not item.text.strip():
                raise EmbeddingError(f"empty text (item {i})")
            text = truncate(item.text, self.max_tokens_per_input)
            truncated += text is not item.text
            tokens = count_tokens(text)
            if batch and (len(batch) >= self.max_inputs_per_request
                          or batch_tokens + tokens > self.max_tokens_per_request):
                batches.append(batch)
                batch, batch_tokens = [], 0
            batch.append(text)
            batch_tokens += tokens
        if batch:
            batches.append(batch)
        return batches, truncated

    def embed(self, items: Sequence[Item]) -> Embedded:
        self.last_waits = []
        if not items:
            return Embedded(np.empty((0, self.dimensions), dtype=np.float32))
        batches, truncated = self._batches(items)
        waits: list[list[float]] = [[] for _ in batches]  # per request, so order is stable
        try:
            if self._executor is None or len(batches) == 1:
                results = [self._send(b, w) for b, w in zip(batches, waits)]
            else:
                futures = [self._executor.submit(self._send, b, w) for b, w in zip(batches, waits)]
                try:
                    results = [f.result() for f in futures]
                finally:
                    for f in futures:
                        f.cancel()
        finally:
            self.last_waits = [x for w in waits for x in w]
        vectors = np.vstack([r[0] for r in results])
        return Embedded(check_vectors(vectors, len(items), self.dimensions),
                        tokens=sum(r[1] for r in results), requests=sum(r[2] for r in results),
                        extra={"batches": len(batches), "truncated": truncated})

    # one request, with retries ----------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** attempt))

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***")

    @staticmethod
    def _retry_after(err: openai.APIStatusError) -> float | None:
        headers = err.response.headers
        for header, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
            try:
                value = float(headers.get(header, "")) / divisor
            except ValueError:
                continue
            if value >= 0 and value == value and value != float("inf"):
                return value
        return None

    def _observed(self, started: float, outcome: str, inputs: int = 0) -> None:
        if self.on_request is not None:
            self.on_request(time.monotonic() - started, outcome, inputs)

    def _send(self, texts: list[str], waits: list[float]) -> tuple[np.ndarray, int, int]:
        """(vectors, tokens, attempts) for one request's inputs; appends its waits to `waits`."""
        extra = {"dimensions": self.dimensions} if self._send_dims else {}
        attempt = 0
        while True:
            bad_payload = False
            started = time.monotonic()
            try:
                # Asked for explicitly, base64 reaches us undecoded: one
                # frombuffer per vector instead of 1,536 Python floats.
                resp = self._client.embeddings.create(model=self.name, input=texts,
                                                      encoding_format="base64", **extra)
                data = sorted(resp.data, key=lambda d: d.index)
                vectors = check_vectors([_decode(d.embedding) for d in data], len(texts),
                                        self.dimensions)
                usage = resp.usage
                tokens = (usage.total_tokens or usage.prompt_tokens) if usage is not None else 0
                self._observed(started, "ok", len(texts))
                return vectors, tokens or sum(map(count_tokens, texts)), attempt + 1
            except (openai.AuthenticationError, openai.PermissionDeniedError) as err:
                self._observed(started, "failed")
                raise ProviderAuthError(f"the provider rejected the API key (HTTP {err.status_code}); "
                                        "check OPENAI_API_KEY") from None
            except openai.RateLimitError as err:
                retry_after = self._retry_after(err)
                wait = self._backoff(attempt) if retry_after is None else min(retry_after, self.backoff_cap)
                last = f"HTTP 429 rate limited: {err.message}"
            except openai.APIStatusError as err:
                if err.status_code < 500:
                    self._observed(started, "failed")
                    raise EmbeddingError(self._scrub(f"request rejected (HTTP {err.status_code}): "
                                                     f"{err.message}")) from None
                wait, last = self._backoff(attempt), f"HTTP {err.status_code}: {err.message}"
            except openai.APITimeoutError:
                wait, last = self._backoff(attempt), "request timed out"
            except openai.APIConnectionError as err:
                wait, last = self._backoff(attempt), f"connection error: {err.message}"
            except (EmbeddingError, openai.APIResponseValidationError, ValueError, TypeError) as err:
                # EmbeddingError: bad vectors; ValueError: bad JSON or no data
                wait, last, bad_payload = self._backoff(attempt), f"bad response: {err}", True
            self._observed(started, "failed" if attempt >= self.max_retries else "retried")
            if attempt >= self.max_retries:
                summary = self._scrub(f"{self.provider} embeddings failed after {attempt + 1} attempts; last: {last}")
                raise (BadResponse if bad_payload else ProviderUnavailable)(summary)
            waits.append(wait)
            self.sleep(wait)
            attempt += 1
