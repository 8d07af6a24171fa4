"""`jobmatch taxonomy load`: ESCO's occupations into the database
(occupations, occupation_vectors: migration 0018), each embedded once per
model as a passage of its labels and description, then every row's nearest
occupation set (jobmatch_map_occupations). From then on the write-back sets
a row's occupation with its vectors, and the pair's score counts how far a
seeker's and a job's occupations agree (db/functions/15_occupations.sql).

ESCO is not shipped: the release's CSVs (or zips) are read from --esco
(default $JOBMATCH_ESCO or ../shared/data/esco). A reload embeds only
occupations whose text changed."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import psycopg

from . import db
from .config import env_flag
from .embedders import Item
from .esco import OCCUPATIONS, EscoFiles, default_path, labels

LABELS_IN_TEXT = 8        # the preferred label and up to 7 alternatives
DESCRIPTION_CHARS = 300
EMBED_CHUNK = 256


@dataclass(frozen=True)
class Occupation:
    code: str             # ESCO's, beginning with the ISCO-08 unit group
    isco_group: str
    label: str
    alt_labels: tuple[str, ...]
    description: str
    uri: str


def read_occupations(path: Path | str | None = None) -> list[Occupation]:
    """ESCO's occupations with an ISCO-08 unit group and a code."""
    files = EscoFiles(Path(path) if path else default_path(), {"occupations": OCCUPATIONS})
    out = []
    for row in files.rows("occupations"):
        code = (row.get("code") or "").strip()
        isco = (row.get("iscoGroup") or "").strip()
        label = " ".join((row.get("preferredLabel") or "").split())
        if not (label and re.fullmatch(r"\d{4}", isco) and code.startswith(isco)):
            continue
        out.append(Occupation(code, isco, label,
                              tuple(a for a in labels(row.get("altLabels")) if a != label),
                              " ".join((row.get("description") or "").split()),
                              (row.get("conceptUri") or "").strip()))
    if not out:
        raise ValueError("no occupations with an ISCO-08 group and a code in occupations_en.csv")
    return out


def occupation_text(o: Occupation, strip: frozenset[str] = frozenset()) -> str:
    """What is embedded: the labels (those in `strip`, lower case, left
    out: how the quality benchmark hides its own labels), then the
    description's start."""
    names = [x for x in (o.label, *o.alt_labels) if x.lower() not in strip][:LABELS_IN_TEXT]
    text = ", ".join(names)
    description = o.description[:DESCRIPTION_CHARS]
    return f"{text}. {description}" if text and description else (text or description or o.code)


def load(conn: psycopg.Connection, occupations: Iterable[Occupation], embedder, model: str,
         strip: frozenset[str] = frozenset(), log=print) -> dict:
    """Replaces the taxonomy with `occupations`, embeds the texts model
    `model` has no vector of yet (with `embedder`, the model's), records the
    usage, and sets every row's occupation. `conn` in autocommit."""
    occupations = list(occupations)
    texts = {o.code: occupation_text(o, strip) for o in occupations}
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE jobmatch_taxonomy_in (LIKE occupations INCLUDING DEFAULTS) ON COMMIT DROP")
        with conn.cursor().copy(
                "COPY jobmatch_taxonomy_in (code, isco_group, label, alt_labels, description, uri)"
                " FROM STDIN") as cp:
            for o in occupations:
                cp.write_row((o.code, o.isco_group, o.label, list(o.alt_labels),
                              o.description or None, o.uri or None))
        removed = conn.execute(
            "DELETE FROM occupations AS o WHERE NOT EXISTS"
            " (SELECT 1 FROM jobmatch_taxonomy_in AS i WHERE i.code = o.code)").rowcount
        conn.execute(
            "INSERT INTO occupations (code, isco_group, label, alt_labels, description, uri)"
            " SELECT code, isco_group, label, alt_labels, description, uri"
            " FROM jobmatch_taxonomy_in ON CONFLICT (code) DO UPDATE SET"
            " isco_group = excluded.isco_group, label = excluded.label,"
            " alt_labels = excluded.alt_labels, description = excluded.description,"
            " uri = excluded.uri, loaded_at = now()")
    # the texts the model has no vector of (jobmatch_text_hash: the worker's hash)
    todo = [c for (c,) in conn.execute(
        "SELECT t.code FROM unnest(%s::text[], %s::text[]) AS t (code, body)"
        " LEFT JOIN occupation_vectors AS v ON v.model = %s AND v.code = t.code"
        " WHERE v.text_hash IS DISTINCT FROM jobmatch_text_hash(t.body) ORDER BY t.code",
        [list(texts), list(texts.values()), model]).fetchall()]
    started, inputs, tokens, requests = time.monotonic(), 0, 0, 0
    for start in range(0, len(todo), EMBED_CHUNK):
        chunk = todo[start:start + EMBED_CHUNK]
        got = embedder.embed([Item("job", texts[c]) for c in chunk])
        with conn.transaction():
            conn.cursor().executemany(
                "INSERT INTO occupation_vectors (model, code, text_hash, embedding)"
                " VALUES (%s, %s, jobmatch_text_hash(%s), %s) ON CONFLICT (model, code)"
                " DO UPDATE SET text_hash = excluded.text_hash, embedding = excluded.embedding",
                [(model, c, texts[c], v) for c, v in zip(chunk, got.vectors)])
            conn.execute("SELECT record_embedding_usage(%s, %s, %s, %s)",
                         [model, got.requests, len(chunk), got.tokens])
        inputs, tokens, requests = inputs + len(chunk), tokens + got.tokens, requests + got.requests
        log(f"embedded {inputs} of {len(todo)} occupation texts")
    embed_seconds = time.monotonic() - started
    changed, last_job, last_user = 0, 0, 0
    while last_job is not None or last_user is not None:
        last_job, last_user, n = conn.execute(
            "SELECT * FROM jobmatch_map_occupations(%s, %s, %s)",
            [model, last_job, last_user]).fetchone()
        changed += n
    return {"occupations": len(occupations), "removed": removed, "embedded": inputs,
            "tokens": tokens, "requests": requests, "embed_seconds": round(embed_seconds, 1),
            "rows_changed": changed}


def _embedder_for(provider: str, model: str, dimensions: int):
    from .embedders import LocalEmbedder
    if provider == "local":
        return LocalEmbedder()
    from .openai_embedder import OpenAIEmbedder
    return OpenAIEmbedder(model=model.split("@")[0], dimensions=dimensions,
                          max_inputs_per_request=EMBED_CHUNK)


def cmd_load(args) -> int:
    try:
        occupations = read_occupations(args.esco)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with db.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT model, provider, dimensions FROM embedding_models WHERE model = %s"
            " OR (%s::text IS NULL AND is_active)", [args.model, args.model]).fetchone()
        if row is None:
            print(f"error: no embedding model {args.model or '(active)'}; run `jobmatch migrate`"
                  " first" + (" or `jobmatch model add`" if args.model else ""), file=sys.stderr)
            return 2
        model, provider, dims = row
        print(f"{len(occupations)} occupations from {args.esco or default_path()}; model {model}")
        stats = load(conn, occupations, _embedder_for(provider, model, dims), model)
    print(f"loaded: {stats['occupations']} occupations ({stats['removed']} removed), "
          f"{stats['embedded']} embedded in {stats['embed_seconds']} s, "
          f"{stats['rows_changed']} rows given an occupation")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("taxonomy", help="occupation taxonomy (ESCO): load")
    tsub = p.add_subparsers(dest="taxonomy_action", required=True)
    t = tsub.add_parser("load", help="load ESCO's occupations, embed them, map every row")
    env_flag(t, "--esco", "JOBMATCH_ESCO", None, type=Path,
             help=f"directory or zip of the ESCO CSV release [{default_path()}]")
    env_flag(t, "--model", "JOBMATCH_TAXONOMY_MODEL", None,
             help="the model to embed them for (default: the active one; a target "
                  "of `jobmatch model add` before its promotion)")
    t.set_defaults(func=cmd_load)
