"""Does LISTEN on a connection hear a NOTIFY sent from another session?

Not behind PgBouncer in transaction or statement pooling: LISTEN succeeds on
whichever server connection ran it, that connection goes back to the pool,
and PgBouncer drops what it later hears ("got packet 'A' from server when not
linked"). A worker there would silently lose its wake-ups and only poll, so it
checks once per connect and refuses to run (docs/scaling-out.md)."""

from __future__ import annotations

import secrets

import psycopg

MESSAGE = ("LISTEN on this database URL hears no NOTIFY from another session: is it a"
           " PgBouncer in transaction or statement pooling mode? The worker needs a direct"
           " connection to PostgreSQL (or a session-pooled one) for its LISTEN; the bot's"
           " match_jobs calls may go through the pooler (docs/scaling-out.md)")


def notifications_arrive(listen: psycopg.Connection, other: psycopg.Connection,
                         timeout: float = 2.0, tries: int = 2) -> bool:
    """Sends a NOTIFY on a private channel from `other` (autocommit) and waits
    for `listen` (autocommit) to hear it. Other notifications that arrive
    meanwhile are consumed: call it before relying on them."""
    channel = f"jobmatch_listen_probe_{secrets.token_hex(6)}"
    listen.execute(f"LISTEN {channel}")
    try:
        for _ in range(tries):
            other.execute("SELECT pg_notify(%s, 'probe')", [channel])
            if any(n.channel == channel for n in listen.notifies(timeout=timeout)):
                return True
        return False
    finally:
        listen.execute(f"UNLISTEN {channel}")
