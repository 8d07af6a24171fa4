"""`jobmatch index rebuild`: build the vector index beside the old one
CONCURRENTLY (the bot keeps matching, writers keep writing), then swap."""

from __future__ import annotations

import psycopg
from psycopg import sql


def rebuild(conn: psycopg.Connection, entity_type: str, lists: int | None = None,
            min_rows: int = 10000, method: str | None = None,
            halfvec: bool | None = None, model: str | None = None) -> dict:
    """`conn` must be in autocommit mode: CONCURRENTLY cannot run in a transaction.
    method/halfvec default to the active model's settings in embedding_models.
    model: a model switch's target (not the active one): its index, built now
    under the name *_next, which promote_embedding_model gives the serving name."""
    if not conn.autocommit:
        raise ValueError("rebuild needs an autocommit connection")
    active = conn.execute("SELECT model FROM embedding_models WHERE is_active").fetchone()
    if model is not None and (active is None or model != active[0]):
        return _build_target(conn, entity_type, model, method, halfvec)
    final = conn.execute("SELECT index_name FROM jobmatch_vector_index_ddl(%s, 1, 0)",
                         [entity_type]).fetchone()[0]
    building = final + "_new"
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(building)))
    name, table, method, halfvec, lists, rows, since, ddl = conn.execute(
        "SELECT index_name, table_name, method, is_halfvec, lists, row_count, posted_since, ddl"
        " FROM jobmatch_vector_index_ddl(%s, %s, %s, %s, %s, %s)",
        [entity_type, lists, min_rows, building, method, halfvec]).fetchone()
    _build(conn, ddl, building)
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(final)))
    conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(building),
                                                               sql.Identifier(final)))
    hnsw = method == "hnsw"
    conn.execute("SELECT jobmatch_record_vector_index_build(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 [final, table, method, halfvec, lists, rows, 16 if hnsw else None,
                  64 if hnsw else None, since])
    return {"index": final, "table": table, "method": method, "halfvec": halfvec,
            "lists": lists, "rows": rows, "posted_since": since}


def _build(conn: psycopg.Connection, ddl: str, name: str) -> None:
    """CREATE INDEX CONCURRENTLY; a build that fails (memory, a cancel)
    leaves an invalid index behind, which is dropped before the error
    goes on: the serving index is untouched either way."""
    try:
        conn.execute(ddl.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1))
    except psycopg.Error:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
        raise


def _build_target(conn: psycopg.Connection, entity_type: str, model: str,
                  method: str | None, halfvec: bool | None) -> dict:
    """The target's index, before its promotion (jobmatch_vector_index_ddl)."""
    row = conn.execute("SELECT m.index_method, m.index_halfvec FROM embedding_models AS m"
                       " WHERE m.model = %s AND m.is_target", [model]).fetchone()
    if row is None:
        raise ValueError(f"{model} is neither the active nor the target model"
                         " (jobmatch model add)")
    method = method or "hnsw"
    halfvec = row[1] if halfvec is None else halfvec
    final = conn.execute("SELECT index_name FROM jobmatch_vector_index_ddl(%s, 1, 0)",
                         [entity_type]).fetchone()[0] + "_next"
    ddl_args = ("SELECT index_name, table_name, method, is_halfvec, lists, row_count,"
                " posted_since, ddl FROM jobmatch_vector_index_ddl("
                "(SELECT m FROM embedding_models AS m WHERE m.model = %s), %s, NULL, 0, %s,"
                " %s, %s, 16, 64)")
    name, table, method, halfvec, lists, rows, since, ddl = conn.execute(
        ddl_args, [model, entity_type, final + "_new", method, halfvec]).fetchone()
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
    _build(conn, ddl, name)
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(final)))
    conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(name),
                                                               sql.Identifier(final)))
    # match_jobs searches with the expression its model's row names: this one's
    conn.execute("UPDATE embedding_models SET index_method = %s, index_halfvec = %s"
                 " WHERE model = %s", [method, halfvec, model])
    return {"index": final, "table": table, "method": method, "halfvec": halfvec,
            "lists": lists, "rows": rows, "posted_since": since}
