import random

import numpy as np
import pytest

from jobmatch.embedders import EmbeddingError, Item
from jobmatch.openai_embedder import (OpenAIEmbedder, ProviderAuthError, ProviderUnavailable,
                                      count_tokens)
from support.fake_openai import FakeOpenAI, fake_embedding
from support.worker import KEY


@pytest.fixture
def server():
    with FakeOpenAI(api_key=KEY, timeout_sleep=1.0) as s:
        yield s


def make(server, **kw):
    waits = []
    kw.setdefault("sleep", waits.append)
    kw.setdefault("rng", random.Random(42))
    emb = OpenAIEmbedder(api_key=KEY, base_url=server.base_url, **kw)
    emb.recorded = waits
    return emb


def items(n, prefix="python developer"):
    return [Item("job" if i % 2 else "user", f"{prefix} number {i} berlin") for i in range(n)]


def expected(its, dims=1536):
    return np.stack([fake_embedding(it.text, dims) for it in its])


def test_vectors_order_and_requests(server):
    emb = make(server, max_inputs_per_request=3)
    its = items(10)
    out = emb.embed(its)
    assert emb.provider == "openai" and emb.model == "text-embedding-3-small" and emb.dimensions == 1536
    assert out.vectors.shape == (10, 1536) and out.vectors.dtype == np.float32
    np.testing.assert_allclose(out.vectors, expected(its), rtol=0, atol=1e-6)
    assert [r["n_inputs"] for r in server.requests] == [3, 3, 3, 1]
    assert all(r["dimensions"] is None for r in server.requests)  # native: not sent
    assert server.inputs == [it.text for it in its]
    assert out.requests == 4 and out.tokens > 0 and emb.last_waits == []


def test_dimensions_parameter_and_model_key(server):
    emb = make(server, dimensions=256)
    assert emb.model == "text-embedding-3-small@256"
    its = items(3)
    out = emb.embed(its)
    assert server.requests[0]["dimensions"] == 256
    np.testing.assert_allclose(out.vectors, expected(its, 256), rtol=0, atol=1e-6)


def test_constructor_validation(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="OPENAI_API_KEY is not set"):
        OpenAIEmbedder()
    with pytest.raises(ValueError):
        OpenAIEmbedder(model="some-custom-model", api_key=KEY)
    with pytest.raises(ValueError):
        OpenAIEmbedder(model="text-embedding-ada-002", dimensions=256, api_key=KEY)
    assert OpenAIEmbedder(model="some-custom-model", dimensions=768, api_key=KEY).model == "some-custom-model"


def test_token_budget_splitting(server):
    its = [Item("job", "word " * 30) for _ in range(6)]  # 150 bytes -> 50 estimated tokens each
    per_item = count_tokens(its[0].text)
    emb = make(server, max_tokens_per_request=2 * per_item + 1)
    out = emb.embed(its)
    assert [r["n_inputs"] for r in server.requests] == [2, 2, 2]
    assert out.requests == 3 and out.vectors.shape == (6, 1536)


def test_truncation_of_huge_input(server):
    huge = "lorem ipsum dolor " * 60_000  # ~1 MB
    emb = make(server, max_tokens_per_input=8191)
    its = [Item("job", "short text"), Item("job", huge)]
    out = emb.embed(its)
    sent = server.inputs[1]
    assert len(sent) < len(huge) and huge.startswith(sent)
    assert count_tokens(sent) <= 8191
    assert out.extra["truncated"] == 1
    np.testing.assert_allclose(out.vectors[1], fake_embedding(sent, 1536), atol=1e-6)


def test_blank_text_rejected_before_any_request(server):
    emb = make(server)
    with pytest.raises(EmbeddingError, match="empty text"):
        emb.embed([Item("job", "fine"), Item("user", "   ")])
    assert server.requests == []


def test_429_honours_retry_after(server):
    emb = make(server)
    server.fail_next("429", retry_after=2)
    its = items(2)
    out = emb.embed(its)
    assert emb.recorded == [2.0] and emb.last_waits == [2.0]
    assert out.requests == 2
    np.testing.assert_allclose(out.vectors, expected(its), atol=1e-6)


def test_429_retry_after_is_capped_and_missing_header_backs_off(server):
    emb = make(server, backoff_cap=5.0, backoff_base=0.5)
    server.fail_next("429", retry_after=60)
    server.fail_next("429")
    emb.embed(items(1))
    assert emb.last_waits[0] == 5.0
    assert 0 <= emb.last_waits[1] <= 1.0  # full jitter on base * 2**1


@pytest.mark.parametrize("kind", ["500", "503"])
def test_5xx_backoff_then_success(server, kind):
    emb = make(server, backoff_base=0.5)
    server.fail_next(kind, times=2)
    its = items(3)
    out = emb.embed(its)
    assert len(emb.last_waits) == 2
    assert 0 <= emb.last_waits[0] <= 0.5 and 0 <= emb.last_waits[1] <= 1.0
    assert out.requests == 3 and len(server.requests) == 3
    np.testing.assert_allclose(out.vectors, expected(its), atol=1e-6)


def test_timeout_retried(server):
    emb = make(server, timeout=0.3)
    server.fail_next("timeout")
    its = items(2)
    out = emb.embed(its)
    assert len(emb.last_waits) == 1 and out.requests == 2
    np.testing.assert_allclose(out.vectors, expected(its), atol=1e-6)


BAD = ["bad_json", "bad_base64", "wrong_dim", "wrong_count", "nan", "zero"]


@pytest.mark.parametrize("kind", BAD)
def test_bad_payload_retried_then_success(server, kind):
    emb = make(server)
    server.fail_next(kind)
    its = items(3)
    out = emb.embed(its)
    assert out.requests == 2 and len(emb.last_waits) == 1
    np.testing.assert_allclose(out.vectors, expected(its), atol=1e-6)


@pytest.mark.parametrize("kind", BAD)
def test_persistent_bad_payload_raises_embedding_error(server, kind):
    emb = make(server, max_retries=2)
    server.fail_next(kind, times=3)
    with pytest.raises(EmbeddingError, match="after 3 attempts"):
        emb.embed(items(3))
    assert len(server.requests) == 3 and len(emb.last_waits) == 2 and server.inputs == []


def test_persistent_5xx_raises_provider_unavailable(server):
    emb = make(server, max_retries=3)
    server.fail_next("503", times=10)
    with pytest.raises(ProviderUnavailable, match="503") as info:
        emb.embed(items(2))
    assert not isinstance(info.value, EmbeddingError)
    assert len(server.requests) == 4 and len(emb.last_waits) == 3
    assert KEY not in str(info.value)


def test_401_raises_auth_error_immediately(server):
    emb = make(server)
    server.fail_next("401")
    with pytest.raises(ProviderAuthError) as info:
        emb.embed(items(2))
    assert len(server.requests) == 1 and emb.last_waits == []
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    assert KEY not in repr(emb) and "OpenAIEmbedder(" in repr(emb)
    assert info.value.__suppress_context__  # the client error (with its message) is not chained


def test_wrong_key_raises_auth_error(server):
    emb = OpenAIEmbedder(api_key="sk-wrong-key-123", base_url=server.base_url, sleep=lambda s: None)
    with pytest.raises(ProviderAuthError, match="rejected") as info:
        emb.embed(items(1))
    assert "sk-wrong-key-123" not in str(info.value)


def test_concurrency_matches_sequential(server):
    its = items(23, prefix="data engineer spark")
    seq = make(server, max_inputs_per_request=2).embed(its)
    par_emb = make(server, max_inputs_per_request=2, concurrency=4)
    try:
        server.fail_next("500")
        par = par_emb.embed(its)
    finally:
        par_emb.close()
    np.testing.assert_array_equal(seq.vectors, par.vectors)
    assert seq.requests == 12 and par.requests == 13
    assert seq.tokens == par.tokens > 0


def test_empty_call(server):
    out = make(server).embed([])
    assert out.vectors.shape == (0, 1536) and out.requests == 0 and server.requests == []


def test_vectors_come_as_base64_or_as_floats(server):
    # base64 is asked for (cheap to decode); servers that send float lists anyway still work
    its = items(3)
    np.testing.assert_allclose(make(server).embed(its).vectors, expected(its), atol=1e-6)
    assert server.requests[-1]["encoding_format"] == "base64"
    with FakeOpenAI(api_key=KEY, always_float=True) as floats:
        np.testing.assert_allclose(make(floats).embed(its).vectors, expected(its), atol=1e-6)


def test_base64_that_is_not_float32_data_is_a_bad_payload():
    with FakeOpenAI(api_key=KEY, always_float=True) as floats:  # "AAAA": 3 bytes
        emb = make(floats, max_retries=1)
        floats.fail_next("bad_base64", times=2)
        with pytest.raises(EmbeddingError, match="not float32 data"):
            emb.embed(items(2))
