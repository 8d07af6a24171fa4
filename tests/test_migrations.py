"""Migrations + functions apply on an empty database and on an existing bot
database, applying twice changes nothing, released migrations are frozen,
and a fresh database equals an upgraded one."""

import hashlib
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from conftest import LOCAL_MODEL, url_for
from jobmatch.migrate import apply_functions, migrate, migrations_dir, yoyo_url

ROOT = Path(__file__).resolve().parents[1]

# Released migrations are frozen: a change is a new migration. Append the
# sha256 of each new file here when it is merged.
RELEASED_MIGRATIONS = {
    "0001_bot_tables.sql": "548ce4add5629d68cce1b0cc87813b0ec541e25dae0652a77cb5d9f1f2ba084a",
    "0002_embeddings.sql": "df0362d96b0a3c6c37412405cc83fa36f02f2c2cb0f138bb8a867bbd86a1ece9",
    "0003_keyword_index.sql": "781cf47127f96a12f5b2844897ed13a2297d5158ad06669d36be39f1cbd243df",
    "0004_index_methods.sql": "cd2081e7547f2629a8f9b5745a2091b21d4014ded34f14b0ad1a2dc9b5f69189",
    "0005_ranking.sql": "51ef0f0fcfad57e2e322c5527314a8f410d3ff7d2e7aa39d40fc69fc503879a7",
    "0006_exact_scan_rows.sql": "03af3c6db1ad325e3ae29c8af64cd000e08d48246f327cd595d949a62222cd33",
    "0007_keyword_candidates.sql": "a560c73adb3fdedea13877f009652005769973348f813088cbb71606b57b4713",
    "0008_recent_job_index.sql": "d9e1d3e57949abba0561e40b01ecfad0b4ced10d4c3db7f1d9f8430df2f4872a",
    "0009_hnsw_halfvec_default.sql": "33575ea149990912bb267f2a7b3812d6213ec1621c9217c90896d47e68592138",
    "0010_write_back_safety.sql": "9c211442af6548bf2eed3228d7f1ab092432590cb3328726fd70608f9a2644b1",
    "0011_bounded_job_document.sql": "600ea7516d9b13fa4fa60fbb0d0ca8a91a37f76618f2daa9bf6b5d8407fdfc30",
    "0012_role_focused_ranking.sql": "6cd8f297802add78edafbea54ce0da2082ab34c694ada54aa090803bfd103262",
    "0013_job_alerts.sql": "78ffdbe30c99f218da6ed19fa1274122f889f2b83ce8d84c4c4c1ed9941e5b90",
    "0014_role_vectors.sql": "89f7b0258de7dd23adc58aeab3d633e10929ea2b3a1b972edba0095e2fc0841e",
    "0015_job_retention.sql": "ec7f7862ff25d586c8bf0770259c3a58340a0d995fdfcf06ec8e1451075b5c32",
    "0016_inline_vectors.sql": "a1d3597509c7c088f120f00af070cd9ddef28b728179089164f3e0af64f5ee7d",
    "0017_model_switch.sql": "205e550b42561475341d2e719367cff6cbb66be5517150ecc3dce7c4bc8af8e5",
    "0018_occupations.sql": "e741845b9a4a4df0b2e5206c851a9330a25182c2fc35d0704d986b906ad2c9f2",
}

# What the WhatsApp bot's database looked like before jobmatch: its own
# keys and extra columns, some plan fields missing, a date-typed posted_date,
# and what running the original plan's migration left behind (a fixed-size
# vector column, DEFAULT NOW() and an ivfflat index built on an empty table).
LEGACY_BOT_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE canonical_jobs (
    id serial PRIMARY KEY,
    title varchar(255) NOT NULL,
    company varchar(255),
    location text,
    posted_date date DEFAULT current_date,
    ai_job_titles text[],
    ai_city text, ai_state text,
    ai_required_skills text[],
    source_url text
);
CREATE TABLE user_preferences (
    id serial PRIMARY KEY,
    user_id integer NOT NULL,
    job_roles text[],
    technical_skills text[],
    preferred_locations text[],
    salary_min integer,
    salary_currency text DEFAULT 'NGN',
    user_embedding vector(1536),
    embedding_updated_at timestamp DEFAULT NOW(),
    phone_number text
);
CREATE INDEX idx_user_preferences_embedding ON user_preferences
    USING ivfflat (user_embedding vector_cosine_ops) WITH (lists = 100);
INSERT INTO canonical_jobs (title, company, ai_city, ai_state, ai_required_skills, posted_date)
VALUES ('Backend Developer', 'Paystack-ish', 'Lagos', 'Lagos', ARRAY['Go', 'PostgreSQL'],
        current_date - 3),
       ('Nurse', 'General Hospital', 'Ibadan', 'Oyo', ARRAY['Patient care'], current_date - 100);
INSERT INTO user_preferences (user_id, job_roles, technical_skills, phone_number, user_embedding)
VALUES (501, ARRAY['Backend Engineer'], ARRAY['Go'], '+234...', array_fill(0, ARRAY[1536])::vector),
       (502, ARRAY['Nurse'], NULL, '+234...', NULL);
"""

FINGERPRINT = {
    "columns": """SELECT table_name, column_name, data_type, udt_name,
                         coalesce(column_default, '')
                  FROM information_schema.columns WHERE table_schema = 'public'
                    AND table_name NOT LIKE '%yoyo%'""",
    "indexes": """SELECT tablename, indexname, indexdef FROM pg_indexes
                  WHERE schemaname = 'public' AND tablename NOT LIKE '%yoyo%'""",
    "functions": """SELECT p.proname, pg_get_function_identity_arguments(p.oid),
                           md5(p.prosrc), p.provolatile, coalesce(p.proconfig, '{}')
                    FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
                      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid
                                      AND d.deptype = 'e')""",
    "triggers": """SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
                   WHERE NOT tgisinternal""",
    "views": """SELECT viewname, md5(definition) FROM pg_views WHERE schemaname = 'public'""",
    "constraints": """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
                      FROM pg_constraint WHERE connamespace = 'public'::regnamespace
                        AND conrelid::regclass::text NOT LIKE '%yoyo%'""",
    "settings": """SELECT to_jsonb(m) - 'created_at' FROM embedding_models m
                   UNION ALL SELECT to_jsonb(s) FROM jobmatch_settings s""",
}


def fingerprint(dsn: str) -> dict:
    with psycopg.connect(dsn) as c:
        return {k: sorted(map(repr, c.execute(q).fetchall())) for k, q in FINGERPRINT.items()}


def test_released_migrations_are_frozen():
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(migrations_dir().glob("*.sql"))}
    assert files == RELEASED_MIGRATIONS, (
        "a released migration changed, or a new one is not listed: never edit a released "
        "migration (add a new one) and list the sha256 of every new migration here")


def test_migrate_on_empty_database_then_again_changes_nothing(empty_dsn):
    first = migrate(empty_dsn, LOCAL_MODEL)
    assert first["migrations"] == ["0001_bot_tables", "0002_embeddings", "0003_keyword_index",
                                   "0004_index_methods", "0005_ranking", "0006_exact_scan_rows",
                                   "0007_keyword_candidates", "0008_recent_job_index",
                                   "0009_hnsw_halfvec_default", "0010_write_back_safety",
                                   "0011_bounded_job_document", "0012_role_focused_ranking",
                                   "0013_job_alerts", "0014_role_vectors",
                                   "0015_job_retention", "0016_inline_vectors",
                                   "0017_model_switch", "0018_occupations"]
    assert first["model"][:3] == ("multilingual-e5-small", "local", 384)
    before = fingerprint(empty_dsn)
    second = migrate(empty_dsn, LOCAL_MODEL)
    assert second["migrations"] == []
    assert fingerprint(empty_dsn) == before


def test_fresh_database_equals_one_upgraded_step_by_step(empty_dsn, conn, dsn):
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(empty_dsn))
    migrations = read_migrations(str(migrations_dir()))
    for migration in migrations:  # one release at a time, as a long-lived database saw them
        with backend.lock():
            backend.apply_migrations(backend.to_apply(migrations.__class__([migration])))
    with psycopg.connect(empty_dsn) as c:
        apply_functions(c)
    migrate(empty_dsn, LOCAL_MODEL)
    assert fingerprint(empty_dsn) == fingerprint(dsn)  # dsn: the session's fresh template clone


def test_migrate_upgrades_an_existing_bot_database_keeping_its_data(empty_conn, empty_dsn):
    empty_conn.execute(LEGACY_BOT_SCHEMA)
    migrate(empty_dsn, LOCAL_MODEL)
    c = empty_conn
    # data and the bot's own columns survive
    assert c.execute("SELECT title, source_url FROM canonical_jobs ORDER BY id").fetchall() == [
        ("Backend Developer", None), ("Nurse", None)]
    assert c.execute("SELECT count(*) FROM user_preferences WHERE phone_number IS NOT NULL"
                     ).fetchone()[0] == 2
    # missing plan fields were added; the plan's broken leftovers were undone
    cols = {r[0]: r[1] for r in c.execute(
        "SELECT column_name, format_type(atttypid, atttypmod) FROM information_schema.columns"
        " JOIN pg_attribute ON attrelid = 'user_preferences'::regclass AND attname = column_name"
        " WHERE table_name = 'user_preferences'")}
    assert cols["user_embedding"] == "vector"
    assert {"industry_preferences", "embedding_model", "embedding_hash"} <= set(cols)
    assert c.execute("SELECT to_regclass('idx_user_preferences_embedding')").fetchone()[0] is None
    assert c.execute("SELECT column_default FROM information_schema.columns WHERE"
                     " table_name = 'user_preferences' AND column_name = 'embedding_updated_at'"
                     ).fetchone()[0] is None
    # every existing row is queued for a vector (the plan-era zero vector is never used)
    assert c.execute("SELECT entity_type, count(*) FROM embedding_queue GROUP BY 1 ORDER BY 1"
                     ).fetchall() == [("job", 2), ("user", 2)]
    # the bot's user_id became unique, and match_jobs works on the old column types
    with pytest.raises(psycopg.errors.UniqueViolation):
        c.execute("INSERT INTO user_preferences (user_id) VALUES (501)")
    rows = c.execute("SELECT title, match_method FROM match_jobs(501, 10)").fetchall()
    assert rows == [("Backend Developer", "keyword")]
    # and a second run is a no-op
    before = fingerprint(empty_dsn)
    assert migrate(empty_dsn, LOCAL_MODEL)["migrations"] == []
    assert fingerprint(empty_dsn) == before


def test_existing_database_with_duplicate_user_ids_fails_clearly(empty_conn, empty_dsn):
    empty_conn.execute("CREATE TABLE user_preferences (id serial PRIMARY KEY, user_id integer);"
                       "INSERT INTO user_preferences (user_id) VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        migrate(empty_dsn, LOCAL_MODEL)
    # nothing half-applied: yoyo ran the failed migration in a transaction
    assert empty_conn.execute("SELECT to_regclass('canonical_jobs')").fetchone()[0] is None


def test_functions_are_idempotent_create_or_replace():
    for path in sorted((ROOT / "db" / "functions").glob("*.sql")):
        text = path.read_text()
        for line in text.splitlines():
            if line.startswith("CREATE ") and not line.startswith("CREATE OR REPLACE"):
                pytest.fail(f"{path.name}: '{line}' is not re-runnable")


@pytest.mark.slow
def test_sqlfluff_passes_on_db():
    result = subprocess.run([sys.executable, "-m", "sqlfluff", "lint", "db/"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


def test_hnsw_halfvec_default_leaves_an_install_with_an_index_as_it_chose(empty_dsn):
    from yoyo import get_backend, read_migrations

    backend = get_backend(yoyo_url(empty_dsn))
    migrations = read_migrations(str(migrations_dir()))
    before = migrations.__class__([m for m in migrations if m.id < "0009"])
    with backend.lock():
        backend.apply_migrations(backend.to_apply(before))
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        assert c.execute("SELECT DISTINCT index_method, index_halfvec FROM embedding_models"
                         ).fetchall() == [("ivfflat", False)]
        c.execute("INSERT INTO vector_index_builds (index_name, table_name, model, method,"
                  " lists, rows_at_build) VALUES ('ann', 'canonical_jobs',"
                  " 'multilingual-e5-small', 'ivfflat', 100, 100000)")
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations))
    with psycopg.connect(empty_dsn, autocommit=True) as c:
        assert c.execute("SELECT DISTINCT index_method, index_halfvec FROM embedding_models"
                         ).fetchall() == [("ivfflat", False)]  # its index is still searched
        c.execute("INSERT INTO embedding_models (model, provider, dimensions,"
                  " similarity_threshold) VALUES ('new-model', 'openai', 256, 0.5)")
        assert c.execute("SELECT index_method, index_halfvec FROM embedding_models"
                         " WHERE model = 'new-model'").fetchone() == ("hnsw", True)


def test_a_new_install_defaults_to_hnsw_halfvec(conn):
    assert conn.execute("SELECT DISTINCT index_method, index_halfvec FROM embedding_models"
                        ).fetchall() == [("hnsw", True)]
