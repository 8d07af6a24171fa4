"""Occupation normalisation (issue #13, migration 0018): `jobmatch taxonomy
load` reads ESCO's occupations, embeds each once per model, and every row's
nearest occupation by meaning is set (by the load for rows embedded before,
by the write-back after); the pair's score counts how far a seeker's and a
job's occupations agree, in both directions."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest

from jobmatch import queue
from jobmatch.embedders import Embedded
from jobmatch.taxonomy import load, occupation_text, read_occupations
from support.cli import jobmatch
from support.data import MODEL, at_similarity, job, set_job_vector, set_user_vector, unit, user

# ESCO's layout (occupations_en.csv), four occupations in three ISCO groups
OCCUPATIONS = [
    {"conceptUri": "http://data.europa.eu/esco/occupation/r", "code": "4226.1",
     "iscoGroup": "4226", "preferredLabel": "receptionist",
     "altLabels": "front desk officer\nfront office clerk", "description": "Receptionists greet."},
    {"conceptUri": "http://data.europa.eu/esco/occupation/h", "code": "4224.1",
     "iscoGroup": "4224", "preferredLabel": "hotel receptionist", "altLabels": "",
     "description": "Hotel receptionists check guests in."},
    {"conceptUri": "http://data.europa.eu/esco/occupation/c", "code": "5120.1",
     "iscoGroup": "5120", "preferredLabel": "cook", "altLabels": "line cook\nkitchen cook",
     "description": "Cooks prepare food."},
    {"conceptUri": "http://data.europa.eu/esco/occupation/d", "code": "2512.4",
     "iscoGroup": "2512", "preferredLabel": "software developer",
     "altLabels": "programmer", "description": "Developers write software."},
    # no ISCO group: not an occupation the taxonomy can place
    {"conceptUri": "http://data.europa.eu/esco/occupation/x", "code": "", "iscoGroup": "",
     "preferredLabel": "unplaced", "altLabels": "", "description": ""},
]

# what each text means, for the fake model: the meanings of these words in
# it, the first one most
MEANINGS = {"front desk": 1, "receptionist": 1, "hotel": 2, "cook": 3, "chef": 3,
            "kitchen": 3, "developer": 4, "programmer": 4}


def meaning(text: str) -> np.ndarray:
    low = text.lower()
    hits = sorted((low.find(w), seed) for w, seed in MEANINGS.items() if w in low)
    base = sum((0.5 if i else 1.0) * unit(seed) for i, (_, seed) in enumerate(hits)) \
        if hits else unit(99)
    return at_similarity(base / np.linalg.norm(base), 0.98, abs(hash(text)) % 1000)


class MeaningEmbedder:
    """A model that knows what a few words mean (MEANINGS): texts of one
    meaning get vectors close together, others far apart."""
    provider, model, dimensions = "local", MODEL, 384

    def __init__(self):
        self.texts: list[str] = []

    def embed(self, items):
        self.texts += [it.text for it in items]
        return Embedded(np.stack([meaning(it.text) for it in items]), tokens=len(items),
                        requests=1)


def esco_zip(path, rows=OCCUPATIONS):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ESCO dataset - v1.1.1 - classification - en - csv/occupations_en.csv",
                    buf.getvalue())
    return path


def drain(conn) -> int:
    total = 0
    while rows := queue.claim(conn, "t", 100):
        total += queue.complete(conn, "t", MODEL, rows, [meaning(r.text) for r in rows],
                                [meaning(r.role_text) if r.role_text else None for r in rows])
    return total


def occupation_of(conn, kind: str, key: int) -> str | None:
    if kind == "user":
        sql = "SELECT user_occupation FROM user_preferences WHERE user_id = %s"
    else:
        sql = "SELECT job_occupation FROM canonical_jobs WHERE id = %s"
    return conn.execute(sql, [key]).fetchone()[0]


def test_read_occupations_keeps_placed_ones_with_their_labels(tmp_path):
    got = read_occupations(esco_zip(tmp_path / "esco.zip"))
    assert [o.code for o in got] == ["4226.1", "4224.1", "5120.1", "2512.4"]
    assert got[0].alt_labels == ("front desk officer", "front office clerk")
    assert occupation_text(got[0]) == (
        "receptionist, front desk officer, front office clerk. Receptionists greet.")
    # labels the benchmark hides are left out; the description stays
    assert occupation_text(got[0], frozenset({"receptionist"})) == (
        "front desk officer, front office clerk. Receptionists greet.")


def test_load_maps_rows_by_meaning_then_the_write_back_keeps_them_mapped(conn, tmp_path):
    seeker = user(conn, 1, job_roles=["Front desk officer"], technical_skills=["Greeting"])
    cook = user(conn, 2, job_roles=["Chef"])
    reception = job(conn, title="Receptionist")
    kitchen = job(conn, title="Line Cook")
    drain(conn)
    # no taxonomy yet: no occupation, and the score's term is 0
    assert occupation_of(conn, "user", seeker) is None
    emb = MeaningEmbedder()
    stats = load(conn, read_occupations(esco_zip(tmp_path / "esco.zip")), emb, MODEL)
    assert stats["occupations"] == 4 and stats["embedded"] == 4 and stats["rows_changed"] == 4
    assert occupation_of(conn, "user", seeker) == "4226.1"
    assert occupation_of(conn, "user", cook) == "5120.1"
    assert occupation_of(conn, "job", reception) == "4226.1"
    assert occupation_of(conn, "job", kitchen) == "5120.1"
    # the reason says so, in both directions
    reasons = dict(conn.execute("SELECT job_id, match_reasons FROM match_jobs(%s, 10)",
                                [seeker]).fetchall())
    assert "Occupation: receptionist" in reasons[reception]
    assert "Occupation: receptionist" in conn.execute(
        "SELECT match_reasons FROM match_users(%s, 10) WHERE user_id = %s",
        [reception, seeker]).fetchone()[0]
    assert not any(r.startswith("Occupation") for r in reasons.get(kitchen, []))
    # the spend is in the ledger
    assert conn.execute("SELECT sum(inputs) FROM embedding_usage WHERE model = %s",
                        [MODEL]).fetchone()[0] >= 4
    # a row embedded after the load gets its occupation with its vectors
    dev = job(conn, title="Software Developer")
    drain(conn)
    assert occupation_of(conn, "job", dev) == "2512.4"
    # an edit re-embeds the row, and its occupation follows
    conn.execute("UPDATE user_preferences SET job_roles = ARRAY['Programmer'] WHERE user_id = 1")
    drain(conn)
    assert occupation_of(conn, "user", seeker) == "2512.4"


def test_a_reload_embeds_only_changed_texts_and_remaps_removed_occupations(conn, tmp_path):
    job_id = job(conn, title="Front desk, hotel")
    drain(conn)
    first = MeaningEmbedder()
    load(conn, read_occupations(esco_zip(tmp_path / "a.zip")), first, MODEL)
    assert occupation_of(conn, "job", job_id) == "4226.1"   # 'front desk' comes first
    again = MeaningEmbedder()
    stats = load(conn, read_occupations(esco_zip(tmp_path / "a.zip")), again, MODEL)
    assert again.texts == [] and stats["embedded"] == 0 and stats["rows_changed"] == 0
    # the receptionist occupation goes: its vector with it, the job moves to
    # the nearest one left
    rows = [r for r in OCCUPATIONS if r["code"] != "4226.1"]
    stats = load(conn, read_occupations(esco_zip(tmp_path / "b.zip", rows)), MeaningEmbedder(),
                 MODEL)
    assert stats["removed"] == 1 and stats["embedded"] == 0
    assert conn.execute("SELECT count(*) FROM occupation_vectors").fetchone() == (3,)
    assert occupation_of(conn, "job", job_id) == "4224.1"


def test_occupation_match_grades_same_occupation_unit_and_minor_group(conn):
    got = conn.execute(
        "SELECT jobmatch_occupation_match('4226.1', '4226.1'),"
        " jobmatch_occupation_match('4226.1', '4226.2'),"
        " jobmatch_occupation_match('4226.1', '4224.1'),"
        " jobmatch_occupation_match('4226.1', '5120.1'),"
        " jobmatch_occupation_match(NULL, '4226.1')").fetchone()
    assert got == pytest.approx((1.0, 2 / 3, 1 / 3, 0.0, 0.0))


def test_the_seekers_occupation_ranks_first_in_both_directions(conn):
    # two jobs the seeker's vector finds equally near; the one of the
    # seeker's occupation comes first (the other is newer: it would win
    # the tie)
    base = unit(5)
    user(conn, 1, job_roles=["Front desk officer"])
    same = job(conn, title="Receptionist")
    other = job(conn, title="Hotel Receptionist")
    conn.execute("DELETE FROM embedding_queue")
    set_user_vector(conn, 1, base)
    for jid in (other, same):
        set_job_vector(conn, jid, at_similarity(base, 0.9, 1))
    conn.execute("UPDATE user_preferences SET user_occupation = '4226.1'")
    conn.execute("UPDATE canonical_jobs SET job_occupation = CASE WHEN id = %s"
                 " THEN '4226.1' ELSE '4224.1' END", [same])

    def ranked(weight: float):
        conn.execute("UPDATE jobmatch_settings SET rank_occupation_weight = %s", [weight])
        jobs = [r[0] for r in conn.execute("SELECT job_id FROM match_jobs(1, 10)").fetchall()]
        scores = {j: conn.execute("SELECT match_score FROM match_users(%s, 10)"
                                  " WHERE user_id = 1", [j]).fetchone()[0] for j in jobs}
        return jobs, scores

    jobs, scores = ranked(0.0)
    assert jobs == [other, same] and scores[other] == scores[same]
    jobs, scores = ranked(0.1)
    assert jobs == [same, other] and scores[same] > scores[other]
    # match_jobs' own score for the pair is match_users' for it
    mine = dict(conn.execute("SELECT job_id, match_score FROM match_jobs(1, 10)").fetchall())
    assert mine == scores


def test_taxonomy_load_command(conn, dsn, tmp_path):
    user(conn, 1, job_roles=["Front desk officer"])
    drain(conn)
    assert "taxonomy:     none for this model" in jobmatch(dsn, "health").stdout
    out = jobmatch(dsn, "taxonomy", "load", "--esco", str(esco_zip(tmp_path / "esco.zip")))
    assert out.returncode == 0, out.stderr
    assert "4 occupations" in out.stdout and "4 embedded" in out.stdout
    assert conn.execute("SELECT count(*) FROM occupation_vectors WHERE model = %s",
                        [MODEL]).fetchone() == (4,)
    assert occupation_of(conn, "user", 1) is not None
    # health says how much is mapped; a seeker embedded since a cut-short
    # load would show as not mapped
    assert ("taxonomy:     4 occupations; jobs (window) 0/0, seekers 1/1 with an occupation"
            in jobmatch(dsn, "health").stdout)
    # bad input: a clear error, exit 2, nothing changed
    for bad, message in ((tmp_path / "missing", "ESCO path not found"),
                         (esco_zip(tmp_path / "empty.zip", [{"code": "x"}]),
                          "no occupations"),
                         (tmp_path / "junk.zip", "not a zip file")):
        if bad.name == "junk.zip":
            bad.write_text("junk")
        out = jobmatch(dsn, "taxonomy", "load", "--esco", str(bad), check=False)
        assert out.returncode == 2 and message in out.stderr, out.stderr
    out = jobmatch(dsn, "taxonomy", "load", "--esco", str(tmp_path / "esco.zip"),
                   "--model", "no-such-model", check=False)
    assert out.returncode == 2 and "no embedding model no-such-model" in out.stderr
    assert conn.execute("SELECT count(*) FROM occupations").fetchone() == (4,)
