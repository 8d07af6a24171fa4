"""`jobmatch index rebuild`: build the ivfflat index beside the old one
CONCURRENTLY (the bot keeps matching, writers keep writing), then swap."""

from __future__ import annotations

import psycopg
from psycopg import sql


def rebuild(conn: psycopg.Connection, entity_type: str, lists: int | None = None,
            min_rows: int = 10000) -> dict:
    """`conn` must be in autocommit mode: CONCURRENTLY cannot run in a transaction."""
    if not conn.autocommit:
        raise ValueError("rebuild needs an autocommit connection")
    final = conn.execute("SELECT index_name FROM vector_index_ddl(%s, %s, 0)",
                         [entity_type, lists]).fetchone()[0]
    building = final + "_new"
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(building)))
    name, table, lists, rows, ddl = conn.execute(
        "SELECT index_name, table_name, lists, row_count, ddl FROM vector_index_ddl(%s, %s, %s, %s)",
        [entity_type, lists, min_rows, building]).fetchone()
    conn.execute(ddl.replace("CREATE INDEX", "CREATE INDEX CONCURRENTLY", 1))
    conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(final)))
    conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(sql.Identifier(building),
                                                               sql.Identifier(final)))
    conn.execute("SELECT record_vector_index_build(%s, %s, %s, %s)", [final, table, lists, rows])
    return {"index": final, "table": table, "lists": lists, "rows": rows}
