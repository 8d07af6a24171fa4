"""`jobmatch index tune`: measure what the vector index's search knob buys.

On a sample of real seekers (vectors of the active model), for each setting
of the knob match_jobs reads from embedding_models (ivfflat: probes; HNSW:
ef_search), it runs match_jobs' own search (same expression, window,
iterative scan and bounds) through the index and reports recall@k against
an exact search with the same window and threshold, and the latency. It
recommends the cheapest setting that meets the recall target and, with
`--apply`, stores it in embedding_models.

Nothing the bot sees changes while it runs: every setting lives in SET LOCAL
of a read-only transaction. Candidate `lists` (ivfflat) are tried on a
temporary index built CONCURRENTLY on an equivalent expression
(l2_normalize(...), cosine distance is scale-free) next to the live index,
one at a time, and dropped afterwards."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import psycopg
from psycopg import sql

IVFFLAT_PROBES = [1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120,
                  150, 200, 250, 300, 400, 500, 600, 800, 1000]
HNSW_EF_SEARCH = [10, 20, 30, 40, 50, 60, 80, 100, 120, 150, 200, 250, 300, 400, 500,
                  600, 800, 1000]

TABLES = {
    # entity: (table, key, vector column, model column, query side table/key/column/model)
    "job": ("canonical_jobs", "id", "job_embedding", "job_embedding_model",
            ("user_preferences", "user_id", "user_embedding", "embedding_model")),
    "user": ("user_preferences", "user_id", "user_embedding", "embedding_model",
             ("canonical_jobs", "id", "job_embedding", "job_embedding_model")),
}


class TuneError(Exception):
    """Nothing to tune (no index, no sample): a message for the DBA."""


@dataclass
class IndexInfo:
    name: str
    table: str
    method: str           # ivfflat | hnsw
    halfvec: bool
    lists: int | None
    indexed_rows: int     # rows the index holds: a vector of the active model (and,
                          # for a partial job index, posted since its cutoff)
    window_rows: int | None  # jobs in the match window (job table only)
    planner_uses_index: bool | None = None
    predicate: str | None = None  # the index's WHERE, e.g. model and posted_date cutoff


@dataclass
class Point:
    setting: int
    recall: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    lists: int | None = None   # the ivfflat index's lists this point was measured on
    candidate: bool = False    # measured on a temporary candidate index


@dataclass
class TuneResult:
    index: IndexInfo
    knob: str                 # ivfflat_probes | hnsw_ef_search
    current: int
    target: float
    k: int                    # recall@k: k = match_jobs' candidate pool (job table)
    sample: int               # queries with a non-empty exact answer
    threshold: float | None
    points: list[Point] = field(default_factory=list)
    recommended: Point | None = None
    applied: bool = False
    advice: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _model(conn) -> dict:
    cur = conn.execute("SELECT * FROM active_embedding_model()")
    row = dict(zip([c.name for c in cur.description], cur.fetchone()))
    if row["model"] is None:
        raise TuneError("no embedding model configured; run `jobmatch migrate` first")
    return row


def _expr(conn, column: str, dims: int, halfvec: bool, normalized: bool = False) -> str:
    """The indexed expression, as match_jobs and the index builder write it."""
    return conn.execute("SELECT jobmatch_vector_search_expression(%s, %s, %s, %s)",
                        [column, dims, halfvec, normalized]).fetchone()[0]


def find_index(conn, entity: str, model: dict) -> IndexInfo:
    """The live ANN index match_jobs uses for the active model's settings."""
    table, _key, column, model_col, _q = TABLES[entity]
    expr = _expr(conn, column, model["dimensions"], model["index_halfvec"])
    rows = conn.execute(
        """SELECT c.relname, am.amname, pg_get_indexdef(i.indexrelid),
                  (SELECT option_value::int FROM pg_options_to_table(c.reloptions)
                   WHERE option_name = 'lists'), pg_get_expr(i.indpred, i.indrelid)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_am am ON am.oid = c.relam
           WHERE i.indrelid = %s::regclass AND am.amname IN ('ivfflat', 'hnsw')
             AND i.indisvalid AND c.relname NOT LIKE '%%\\_tune\\_%%'
           ORDER BY c.relname""", [table]).fetchall()
    wanted = [r for r in rows if _normalize_def(expr) in _normalize_def(r[2])
              and model["model"] in r[2] and "l2_normalize" not in r[2]]
    if not wanted:
        raise TuneError(
            f"no {'halfvec ' if model['index_halfvec'] else ''}vector index on {table} for "
            f"{model['model']}: match_jobs scans exactly. Build one with "
            f"`jobmatch index rebuild --table {entity}`")
    # prefer the method the model asks for
    wanted.sort(key=lambda r: (r[1] != model["index_method"], r[0]))
    name, method, _def, lists, predicate = wanted[0]
    indexed = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {} = %s AND {} IS NOT NULL AND {}").format(
            sql.Identifier(table), sql.Identifier(model_col), sql.Identifier(column),
            sql.SQL(predicate or "true")),
        [model["model"]]).fetchone()[0]
    window = None
    if entity == "job":
        window = conn.execute(
            "SELECT count(*) FROM canonical_jobs WHERE job_embedding_model = %s"
            " AND job_embedding IS NOT NULL AND posted_date >= %s",
            [model["model"], window_start(conn)]).fetchone()[0]
    return IndexInfo(name, table, method, model["index_halfvec"], lists, indexed, window,
                     predicate=predicate)


def _normalize_def(text: str) -> str:
    return "".join(ch for ch in text if ch not in "() ")


def window_start(conn):
    """match_jobs' window start: current_date - match_window_days."""
    return conn.execute("SELECT (current_date - match_window_days)::timestamptz"
                        " FROM jobmatch_settings").fetchone()[0]


@dataclass
class Query:
    key: int
    vec: object


def _match_settings(conn) -> dict:
    cur = conn.execute("SELECT * FROM jobmatch_settings")
    row = dict(zip([c.name for c in cur.description], cur.fetchone()))
    return {"candidates": row.get("match_candidates") or 0}


def sample_queries(conn, entity: str, model: dict, n: int, seed: int = 1) -> list[Query]:
    """Up to n rows of the other side with a vector of the active model, in a
    deterministic pseudo-random order. For jobs the queries are seekers (with
    their hard filters); for users they are jobs in the window."""
    _t, _k, _c, _m, (qtable, qkey, qcol, qmodel) = TABLES[entity]
    extra = sql.SQL("")
    params: list = [model["model"]]
    if entity == "user":
        extra = sql.SQL(" AND posted_date >= %s")
        params.append(window_start(conn))
    ids = conn.execute(
        sql.SQL("SELECT {k} FROM {t} WHERE {m} = %s AND {c} IS NOT NULL{extra}"
                " ORDER BY md5({k}::text || %s) LIMIT %s").format(
            k=sql.Identifier(qkey), t=sql.Identifier(qtable), m=sql.Identifier(qmodel),
            c=sql.Identifier(qcol), extra=extra),
        [*params, str(seed), n]).fetchall()
    return queries_for(conn, entity, [r[0] for r in ids])


def queries_for(conn, entity: str, keys: list[int]) -> list[Query]:
    """The queries of `keys`: seekers by key (the search reads their vector
    and hard filters itself); for the user table, the jobs' vectors."""
    if not keys:
        return []
    if entity == "job":
        have = {r[0] for r in conn.execute(
            "SELECT user_id FROM user_preferences WHERE user_id = ANY(%s)", [keys])}
        return [Query(k, None) for k in keys if k in have]
    _t, _k, _c, _m, (qtable, qkey, qcol, _qm) = TABLES[entity]
    rows = conn.execute(
        sql.SQL("SELECT {k}, {c}::vector FROM {t} WHERE {k} = ANY(%s)").format(
            k=sql.Identifier(qkey), t=sql.Identifier(qtable), c=sql.Identifier(qcol)),
        [keys]).fetchall()
    by_key = {k: Query(k, v) for k, v in rows}
    return [by_key[k] for k in keys if k in by_key]


# Seekers' nearest jobs: match_jobs' own search (jobmatch_nearest_jobs in
# db/functions/50_vector_index.sql), pool, window and hard filters included.
JOB_SEARCH = sql.SQL("""
    SELECT n.id FROM jobmatch_nearest_jobs(%(key)s, %(k)s, %(halfvec)s, %(exact)s, %(normalized)s)
        AS n
    WHERE 1 - n.distance >= %(threshold)s ORDER BY n.distance, n.id""")


# Jobs' audiences: match_users' own search (jobmatch_nearest_users in
# db/functions/48_match_users.sql), the job's fit to each seeker included.
USER_SEARCH = sql.SQL("""
    SELECT n.id FROM jobmatch_nearest_users(%(key)s, %(k)s, %(halfvec)s, %(exact)s, %(normalized)s)
        AS n
    WHERE 1 - n.distance >= %(threshold)s ORDER BY n.distance, n.id""")


def search_sql(conn, entity: str, model: dict, halfvec: bool, normalized: bool = False,
               exact: bool = False) -> tuple[sql.Composable, dict]:
    """The search a sweep measures and its fixed parameters: SQL's own, for
    jobs match_jobs' (JOB_SEARCH), for users match_users' (USER_SEARCH).
    `exact` orders by distance + 0, which no index can serve."""
    fixed = {"halfvec": halfvec, "exact": exact, "normalized": normalized}
    return (JOB_SEARCH if entity == "job" else USER_SEARCH), fixed


def _force_index(conn) -> None:
    # Make the planner walk the vector index even where it would rather scan
    # exactly (a small window): we are measuring the index.
    conn.execute("SET LOCAL enable_seqscan = off")
    conn.execute("SET LOCAL enable_bitmapscan = off")
    conn.execute("SET LOCAL enable_sort = off")


def _set_knobs(conn, method: str, value: int) -> None:
    conn.execute("SELECT jobmatch_set_search_knobs(m, %s, %s) FROM active_embedding_model() AS m",
                 [method, int(value)])


def _params(q: Query, pool, threshold, fixed: dict) -> dict:
    return {"key": q.key, "q": q.vec, "k": pool, "threshold": threshold, **fixed}


def exact_answers(conn, entity: str, model: dict, queries: list[Query], pool: int,
                  threshold: float) -> dict:
    """The pool by exact cosine (full precision, no ANN index), same window,
    filters and threshold."""
    q, fixed = search_sql(conn, entity, model, halfvec=False, exact=True)
    out = {}
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        for query in queries:
            out[query.key] = [r[0] for r in conn.execute(q, _params(query, pool, threshold,
                                                                     fixed))]
    return out


def measure(conn, entity: str, model: dict, method: str, halfvec: bool, value: int,
            queries: list[Query], exact: dict, pool: int, threshold: float,
            normalized: bool = False) -> Point:
    q, fixed = search_sql(conn, entity, model, halfvec, normalized)
    recalls, times = [], []
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        _force_index(conn)
        _set_knobs(conn, method, value)
        for query in queries:
            t0 = time.perf_counter()
            got = [r[0] for r in conn.execute(q, _params(query, pool, threshold, fixed))]
            times.append(time.perf_counter() - t0)
            want = exact.get(query.key) or []
            if want:
                recalls.append(len(set(got) & set(want)) / len(want))
    ms = np.array(times) * 1000
    return Point(int(value), float(np.mean(recalls)) if recalls else 1.0,
                 float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean()))


def planner_uses_index(conn, entity: str, model: dict, index: IndexInfo, query: Query,
                       pool: int, threshold: float) -> bool:
    """Whether match_jobs' search, planned as usual, walks `index`."""
    with conn.transaction():
        side = "jobs" if entity == "job" else "users"
        plan = conn.execute(f"SELECT * FROM jobmatch_nearest_{side}_plan(%s, %s, %s)",
                            [query.key, pool, index.halfvec]).fetchall()
    return index.name in " ".join(r[0] for r in plan)


def _grid(method: str, lists: int | None, settings: list[int] | None) -> list[int]:
    if settings:
        return sorted(set(settings))
    if method == "ivfflat":
        return [p for p in IVFFLAT_PROBES if p <= (lists or 1)]
    return list(HNSW_EF_SEARCH)


def sweep(conn, entity: str, model: dict, method: str, halfvec: bool, grid: list[int],
          queries, exact, pool, threshold, target: float, extra: int = 2,
          normalized: bool = False, lists: int | None = None,
          candidate: bool = False) -> list[Point]:
    """Measures grid settings in increasing order; stops `extra` settings after
    the first that meets the target (the rest only cost time)."""
    points: list[Point] = []
    # warm the index and heap pages up once, at a middle setting
    measure(conn, entity, model, method, halfvec, grid[len(grid) // 2], queries[:20], exact,
            pool, threshold, normalized)
    met_at = None
    for i, value in enumerate(grid):
        p = measure(conn, entity, model, method, halfvec, value, queries, exact, pool,
                    threshold, normalized)
        p.lists, p.candidate = lists, candidate
        points.append(p)
        if met_at is None and p.recall >= target:
            met_at = i
        if met_at is not None and i - met_at >= extra:
            break
    return points


def recommend(points: list[Point], target: float) -> Point | None:
    """The cheapest (lowest p50) point that meets the target; among points
    within 10% of that latency the smaller setting (less work under load)."""
    ok = [p for p in points if p.recall >= target]
    if not ok:
        return None
    best = min(p.p50_ms for p in ok)
    close = [p for p in ok if p.p50_ms <= best * 1.10]
    return min(close, key=lambda p: (p.lists is not None and p.candidate, p.setting))


def _build_candidate(conn, entity: str, model: dict, index: IndexInfo, lists: int) -> str:
    """A temporary ivfflat index over the rows the live one holds (its WHERE)."""
    table, _key, column, model_col, _q = TABLES[entity]
    halfvec = index.halfvec
    name = f"{table}_tune_lists{lists}"
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
    ops = "halfvec_cosine_ops" if halfvec else "vector_cosine_ops"
    expr = _expr(conn, column, model["dimensions"], halfvec, normalized=True)
    conn.execute(sql.SQL(
        f"CREATE INDEX CONCURRENTLY {{}} ON {{}} USING ivfflat ({expr} {ops})"
        " WITH (lists = {}) WHERE {}").format(
        sql.Identifier(name), sql.Identifier(table), sql.Literal(int(lists)),
        sql.SQL(index.predicate) if index.predicate else
        sql.SQL("{} = {}").format(sql.Identifier(model_col), sql.Literal(model["model"]))))
    return name


def candidate_pool(conn, entity: str, k: int) -> int:
    """How many nearest rows match_jobs takes before re-ranking: max(limit,
    match_candidates). Recall is measured on that pool: it is what the index
    decides; the re-ranking is exact."""
    if entity != "job":
        return k
    return max(k, _match_settings(conn)["candidates"])


def tune(conn: psycopg.Connection, entity: str = "job", sample: int = 100,
         target: float = 0.95, k: int = 10, settings: list[int] | None = None,
         candidate_lists: list[int] | None = None, apply: bool = False, seed: int = 1,
         queries: list[Query] | None = None, exact: dict | None = None,
         log=lambda msg: None) -> TuneResult:
    """`conn` must be in autocommit mode (candidate indexes build CONCURRENTLY)."""
    if not conn.autocommit:
        raise ValueError("tune needs an autocommit connection")
    if apply and entity != "job":
        raise TuneError("--apply stores match_jobs' settings, which search jobs: use --table job")
    model = _model(conn)
    index = find_index(conn, entity, model)
    knob = "ivfflat_probes" if index.method == "ivfflat" else "hnsw_ef_search"
    threshold = float(model["similarity_threshold"]) if entity == "job" else -1.0
    pool = candidate_pool(conn, entity, k)
    if queries is None:
        queries = sample_queries(conn, entity, model, sample, seed)
    if not queries:
        raise TuneError("no sample: no seekers with a vector of the active model yet"
                        if entity == "job" else "no sample: no jobs with a vector in the window")
    log(f"sample: {len(queries)} queries; computing exact answers")
    if exact is None:
        exact = exact_answers(conn, entity, model, queries, pool, threshold)
    answered = sum(1 for q in queries if exact.get(q.key))
    index.planner_uses_index = planner_uses_index(conn, entity, model, index, queries[0], pool,
                                                  threshold)
    result = TuneResult(index, knob, int(model[knob]), target, pool, answered,
                        threshold if entity == "job" else None)
    grid = _grid(index.method, index.lists, settings)
    log(f"sweeping {knob} on {index.name}")
    result.points = sweep(conn, entity, model, index.method, index.halfvec, grid, queries, exact,
                          pool, threshold, target, lists=index.lists)
    for lists in candidate_lists or []:
        if index.method != "ivfflat":
            result.advice.append("candidate lists apply to ivfflat indexes only; skipped")
            break
        log(f"building a candidate ivfflat index with lists={lists}")
        t0 = time.perf_counter()
        name = _build_candidate(conn, entity, model, index, lists)
        built = time.perf_counter() - t0
        try:
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(index.table)))
            pts = sweep(conn, entity, model, "ivfflat", index.halfvec,
                        _grid("ivfflat", lists, settings), queries, exact, pool, threshold,
                        target, normalized=True, lists=lists, candidate=True)
        finally:
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                sql.Identifier(name)))
        result.advice.append(f"candidate lists={lists} built in {built:.1f}s")
        result.points.extend(pts)
    best = recommend(result.points, target)
    result.recommended = best
    if best is None:
        top = max(result.points, key=lambda p: p.recall)
        result.advice.append(
            f"no setting reaches recall@{pool} {target}: best {top.recall:.3f} at "
            f"{knob.split('_', 1)[1]}={top.setting}" + (
                "; raise ivfflat_max_probes / hnsw_max_scan_tuples or rebuild the index"
                if top.recall < target else ""))
        return result
    if best.candidate:
        result.advice.append(
            f"rebuild with `jobmatch index rebuild --table {entity} --lists {best.lists}`, then "
            f"run tune again (or set {knob} = {best.setting})")
    elif apply:
        conn.execute(sql.SQL("UPDATE embedding_models SET {} = %s WHERE is_active").format(
            sql.Identifier(knob)), [best.setting])
        result.applied = True
    return result


def format_result(r: TuneResult) -> str:
    ix = r.index
    kind = f"{ix.method}{' halfvec' if ix.halfvec else ''}"
    lists = f" lists={ix.lists}" if ix.lists else ""
    window = f", {ix.window_rows} in the match window" if ix.window_rows is not None else ""
    lines = [
        f"index {ix.name} on {ix.table}: {kind}{lists}, {ix.indexed_rows} rows{window}",
        f"planner uses it for match_jobs: {'yes' if ix.planner_uses_index else 'no (exact scan)'}",
        f"sample: {r.sample} queries with an exact answer; recall@{r.k} vs exact"
        + (f" of match_jobs' {r.k} candidates (same window, the seeker's hard filters,"
           f" threshold {r.threshold:g})" if r.threshold is not None else ""),
        "",
        f"{'setting':<26}{'recall@' + str(r.k):>10}{'p50 ms':>10}{'p99 ms':>10}",
    ]
    name = r.knob.split("_", 1)[1]
    for p in r.points:
        label = f"{name}={p.setting}" + (f" (lists={p.lists})" if p.candidate else "")
        mark = "  <- recommended" if p is r.recommended else ""
        lines.append(f"{label:<26}{p.recall:>10.3f}{p.p50_ms:>10.2f}{p.p99_ms:>10.2f}{mark}")
    lines.append("")
    if r.recommended:
        p = r.recommended
        lines.append(f"recommendation: {r.knob} = {p.setting}"
                     + (f" on lists={p.lists}" if p.candidate else "")
                     + f" (recall@{r.k} {p.recall:.3f} >= {r.target}, p50 {p.p50_ms:.2f} ms);"
                     f" current: {r.current}")
        if r.applied:
            lines.append(f"applied: UPDATE embedding_models SET {r.knob} = {p.setting}"
                         " WHERE is_active")
        elif not p.candidate:
            lines.append("not applied (use --apply to store it)")
    lines.extend(r.advice)
    return "\n".join(lines)


def to_json(r: TuneResult) -> str:
    d = r.as_dict()
    d["recommended"] = asdict(r.recommended) if r.recommended else None
    return json.dumps(d, default=str, indent=2)
