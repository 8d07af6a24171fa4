def test_clone_has_schema_and_local_model(conn):
    assert conn.execute("SELECT model, dimensions FROM embedding_models WHERE is_active").fetchone() \
        == ("multilingual-e5-small", 384)


def test_each_test_gets_a_fresh_clone(conn):
    conn.execute("INSERT INTO user_preferences (user_id) VALUES (1)")
    assert conn.execute("SELECT count(*) FROM user_preferences").fetchone()[0] == 1


def test_each_test_gets_a_fresh_clone_again(conn):
    assert conn.execute("SELECT count(*) FROM user_preferences").fetchone()[0] == 0


def test_empty_database_is_empty(empty_conn):
    assert empty_conn.execute("SELECT to_regclass('canonical_jobs')").fetchone()[0] is None
