"""`jobmatch index rebuild`: build the vector index beside the old one
CONCURRENTLY (the bot keeps matching, writers keep writing), then swap."""

from __future__ import annotations

import psycopg
from psycopg import sql


def rebuild(conn: psycopg.Connection, entity_type: str, lists: int | None = None,
            min_rows: int = 10000, method: str | None = None,
            halfvec: bool | None = None) -> dict:
    """`conn` must be in autocommit mode: CONCURRENTLY cannot run in a transaction.
    method/halfvec default to the active model's settings in embedding_models."""
    if not conn.autocommit:
        raise ValueError("rebuild needs an autocommit connection")
    final = conn.execute("SELECT index_name FROM vector_index_ddl(%s, 1, 0)",
                         [entity_type]).fetchone()[0]
    building = final + "_new"
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(building)))
    name, table, method, halfvec, lists, rows, since, ddl = conn.execute(
        "SELECT index_name, table_name, method, is_halfvec, lists, row_count, posted_since, ddl"
        " FROM vector_index_ddl(%s, %s, %s, %s, %s, %s)",
        [entity_type, lists, min_rows, building, method, halfvec]).fetchone()
    conn.execute(ddl.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1))
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(final)))
    conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(building),
                                                               sql.Identifier(final)))
    hnsw = method == "hnsw"
    conn.execute("SELECT record_vector_index_build(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 [final, table, method, halfvec, lists, rows, 16 if hnsw else None,
                  64 if hnsw else None, since])
    return {"index": final, "table": table, "method": method, "halfvec": halfvec,
            "lists": lists, "rows": rows, "posted_since": since}
