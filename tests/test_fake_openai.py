"""The fake embeddings server, exercised through the real ``openai`` client."""

from __future__ import annotations

import time

import numpy as np
import openai
import pytest

from support.fake_openai import FakeOpenAI, fake_embedding

MODEL = "text-embedding-3-small"


def make_client(server: FakeOpenAI, timeout: float = 5.0, api_key: str = "test-key") -> openai.OpenAI:
    return openai.OpenAI(api_key=api_key, base_url=server.base_url, max_retries=0, timeout=timeout)


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI(timeout_sleep=1.0) as srv:
        yield srv


@pytest.fixture
def fake(server):
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def client(fake):
    with make_client(fake) as c:
        yield c


def cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- vectors -----------------------------------------------------------------
def test_fake_embedding_is_deterministic_unit_float32():
    v = fake_embedding("Senior Python developer", 1536)
    assert v.dtype == np.float32 and v.shape == (1536,)
    assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(v, fake_embedding("senior python DEVELOPER!", 1536))
    assert np.linalg.norm(fake_embedding("...", 64)) == pytest.approx(1.0, abs=1e-5)  # no word tokens
    assert not np.array_equal(fake_embedding("...", 64), fake_embedding("!!!", 64))


def test_truncation_then_renormalisation_matches_smaller_dims():
    full = fake_embedding("data engineer with spark and kafka", 3072).astype(np.float64)
    prefix = full[:256] / np.linalg.norm(full[:256])
    np.testing.assert_allclose(prefix, fake_embedding("data engineer with spark and kafka", 256), atol=1e-5)


# --- happy path through the client ---------------------------------------------
@pytest.mark.parametrize("fmt", [None, "float"])
@pytest.mark.parametrize("dims", [None, 256])
def test_embeddings_match_fake_embedding(client, fake, fmt, dims):
    texts = ["python developer", "registered nurse night shift", "C# and C++ game engine programmer"]
    kwargs = {k: v for k, v in {"encoding_format": fmt, "dimensions": dims}.items() if v is not None}
    resp = client.embeddings.create(model=MODEL, input=texts, **kwargs)
    assert [d.index for d in resp.data] == [0, 1, 2]
    assert resp.model == MODEL
    for text, item in zip(texts, resp.data):
        assert isinstance(item.embedding, list) and len(item.embedding) == (dims or 1536)
        np.testing.assert_allclose(item.embedding, fake_embedding(text, dims or 1536), rtol=0, atol=1e-7)
    assert fake.requests[-1]["encoding_format"] == (fmt or "base64")  # the client's default is base64
    assert fake.requests[-1]["dimensions"] == dims
    assert "authorization" not in fake.requests[-1]["headers"]


def test_single_input_default_dims_per_model(client):
    for model, dims in [(MODEL, 1536), ("text-embedding-3-large", 3072), ("text-embedding-ada-002", 1536),
                        ("some-local-model", 1536)]:
        resp = client.embeddings.create(model=model, input="hello world")
        assert len(resp.data) == 1 and len(resp.data[0].embedding) == dims
    resp = client.embeddings.create(model="text-embedding-3-large", input="hello world", dimensions=256)
    np.testing.assert_allclose(resp.data[0].embedding, fake_embedding("hello world", 256), atol=1e-7)


def test_similar_texts_are_closer(client):
    texts = ["senior python backend developer django postgres",
             "python backend developer with django and postgres experience",
             "registered nurse for intensive care night shifts"]
    a, b, c = (d.embedding for d in client.embeddings.create(model=MODEL, input=texts).data)
    assert cos(a, b) > 0.6
    assert cos(a, b) > cos(a, c) + 0.3
    assert abs(cos(a, c)) < 0.2


def test_usage_tokens(client):
    resp = client.embeddings.create(model=MODEL, input=["hello world", "another longer piece of text"])
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens


def test_invalid_inputs_are_rejected(client, fake):
    for bad in ["", [], ["ok", ""], ["x"] * 2049]:
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model=MODEL, input=bad)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=256)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL, input="x", dimensions=5000)
    assert fake.inputs == [] and fake.requests == []
    assert len(client.embeddings.create(model=MODEL, input=["x"] * 2048).data) == 2048


# --- auth and faults ---------------------------------------------------------------
def test_wrong_key_and_scripted_401(fake):
    with make_client(fake, api_key="wrong") as bad, pytest.raises(openai.AuthenticationError) as exc:
        bad.embeddings.create(model=MODEL, input="x")
    assert exc.value.code == "invalid_api_key"
    with make_client(fake) as good:
        fake.fail_next("401")
        with pytest.raises(openai.AuthenticationError):
            good.embeddings.create(model=MODEL, input="x")
        assert len(good.embeddings.create(model=MODEL, input="x").data) == 1
    assert fake.faults == ["401"]


def test_no_api_key_required():
    with FakeOpenAI(api_key=None) as srv, make_client(srv, api_key="anything") as c:
        assert len(c.embeddings.create(model=MODEL, input="x").data) == 1


def test_429_with_retry_after(client, fake):
    fake.fail_next("429", retry_after=2)
    with pytest.raises(openai.RateLimitError) as exc:
        client.embeddings.create(model=MODEL, input="x")
    assert exc.value.response.headers["retry-after"] == "2"
    assert exc.value.response.headers["retry-after-ms"] == "2000"
    assert exc.value.code == "rate_limit_exceeded"
    fake.fail_next("429")
    with pytest.raises(openai.RateLimitError) as exc:
        client.embeddings.create(model=MODEL, input="x")
    assert "retry-after" not in exc.value.response.headers


@pytest.mark.parametrize("kind", ["500", "503"])
def test_server_errors(client, fake, kind):
    fake.fail_next(kind)
    with pytest.raises(openai.InternalServerError) as exc:
        client.embeddings.create(model=MODEL, input="x")
    assert exc.value.status_code == int(kind)


def test_timeout(fake):
    fake.fail_next("timeout")
    start = time.monotonic()
    with make_client(fake, timeout=0.3) as c, pytest.raises(openai.APITimeoutError):
        c.embeddings.create(model=MODEL, input="x")
    assert time.monotonic() - start < 0.9
    assert fake.faults == ["timeout"]


def test_bad_json(client, fake):
    fake.fail_next("bad_json")
    with pytest.raises(Exception):
        client.embeddings.create(model=MODEL, input=["a", "b"])


@pytest.mark.parametrize("fmt", [None, "float"])
def test_wrong_shapes_nan_and_zero(client, fake, fmt):
    kw = {"encoding_format": fmt} if fmt else {}
    fake.fail_next("wrong_dim")
    fake.fail_next("wrong_count")
    fake.fail_next("nan")
    fake.fail_next("zero")
    texts = ["a b", "c d", "e f"]
    resp = client.embeddings.create(model=MODEL, input=texts, dimensions=64, **kw)
    assert [len(d.embedding) for d in resp.data] == [63, 63, 63]
    assert len(client.embeddings.create(model=MODEL, input=texts, dimensions=64, **kw).data) == 2
    first = client.embeddings.create(model=MODEL, input=texts, dimensions=64, **kw).data[0].embedding
    assert (first[0] is None) if fmt == "float" else np.isnan(first[0])
    zero = client.embeddings.create(model=MODEL, input=texts, dimensions=64, **kw).data
    assert all(not np.any(d.embedding) for d in zero)
    assert fake.faults == ["wrong_dim", "wrong_count", "nan", "zero"]
    assert fake.inputs == []


def test_unknown_fault_kind(fake):
    with pytest.raises(ValueError):
        fake.fail_next("418")


# --- recording ---------------------------------------------------------------------
def test_recording_only_successful_inputs(client, fake):
    client.embeddings.create(model=MODEL, input=["a", "b"])
    fake.fail_next("500", times=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.embeddings.create(model=MODEL, input=["c"])
    client.embeddings.create(model=MODEL, input=["c", "a"])
    assert fake.inputs == ["a", "b", "c", "a"]
    assert fake.input_counts() == {"a": 2, "b": 1, "c": 1}
    assert [r["n_inputs"] for r in fake.requests] == [2, 1, 1, 2]
    assert [r["fault"] for r in fake.requests] == [None, "500", "500", None]
    assert fake.faults == ["500", "500"]
    fake.reset()
    assert fake.inputs == fake.requests == fake.faults == []


def test_client_retries_are_visible(fake):
    fake.fail_next("429", times=2, retry_after=0.01)
    with openai.OpenAI(api_key="test-key", base_url=fake.base_url, max_retries=2, timeout=5) as c:
        assert len(c.embeddings.create(model=MODEL, input="retry me").data) == 1
    assert fake.faults == ["429", "429"] and fake.inputs == ["retry me"]
    assert len(fake.requests) == 3


def test_fault_rate_one_fails_everything():
    with FakeOpenAI(fault_rate=1.0, timeout_sleep=0.0) as srv, make_client(srv) as c:
        for _ in range(10):
            try:
                c.embeddings.create(model=MODEL, input="x")
            except Exception:
                pass
        assert len(srv.faults) == 10 and srv.inputs == []
        assert set(srv.faults) <= {"429", "500", "timeout", "bad_json"}


def run_chaos(seed: int) -> list[str]:
    with FakeOpenAI(fault_rate=0.5, fault_seed=seed, timeout_sleep=0.0) as srv, make_client(srv) as c:
        for i in range(30):
            try:
                c.embeddings.create(model=MODEL, input=f"text {i}")
            except Exception:
                pass
        assert len(srv.requests) == 30
        return [r["fault"] or "ok" for r in srv.requests]


def test_fault_rate_is_reproducible_with_seed():
    a, b, other = run_chaos(7), run_chaos(7), run_chaos(8)
    assert a == b and a != other
    assert 0 < a.count("ok") < 30


def test_stop_closes_keepalive_connections():
    srv = FakeOpenAI().start()
    with make_client(srv, timeout=2) as c:
        c.embeddings.create(model=MODEL, input="x")
        srv.stop()
        with pytest.raises(openai.APIConnectionError):
            c.embeddings.create(model=MODEL, input="x")
