-- depends: 0017_model_switch
-- Occupation normalisation (issue #13): an occupation taxonomy (ESCO,
-- loaded by `jobmatch taxonomy load`, not shipped) and each row's nearest
-- occupation by meaning, so a seeker's "front desk officer" and a job's
-- "Receptionist" meet in one ESCO occupation and one ISCO-08 group
-- however differently they are written. Where both sides of a pair have
-- one, the pair's score counts the occupations' agreement (same
-- occupation, same ISCO unit group, same minor group) times
-- rank_occupation_weight in place of the role vectors' term.

-- The occupations: code is ESCO's (it begins with the ISCO-08 unit group,
-- e.g. 4226.1), isco_group that unit group's 4 digits.
CREATE TABLE occupations (
    code text PRIMARY KEY CHECK (code ~ '^[0-9]{4}'),
    isco_group text NOT NULL CHECK (isco_group ~ '^[0-9]{4}$'),
    label text NOT NULL CHECK (btrim(label) <> ''),
    alt_labels text[] NOT NULL DEFAULT '{}',
    description text,
    uri text,
    loaded_at timestamptz NOT NULL DEFAULT now()
);

-- An occupation's vector under a model (its labels and description, as a
-- passage). The nearest one to a row's role vector is the row's occupation.
CREATE TABLE occupation_vectors (
    model text NOT NULL REFERENCES embedding_models ON DELETE CASCADE,
    code text NOT NULL REFERENCES occupations ON DELETE CASCADE,
    text_hash uuid NOT NULL,
    embedding vector NOT NULL,
    PRIMARY KEY (model, code)
);

-- A row's nearest occupation's code under its vectors' model; NULL without
-- a taxonomy for that model. Written with the vectors (the write-back, a
-- promotion) and by `jobmatch taxonomy load` for rows embedded before it.
ALTER TABLE canonical_jobs
ADD COLUMN job_occupation text;

ALTER TABLE user_preferences
ADD COLUMN user_occupation text;

-- 0.05: fitted on half the ESCO benchmark's ISCO groups under two ways of
-- hiding the benchmark from the taxonomy, the best worst case of the two
-- (bench/quality/README.md, "Occupations"); every split chose it.
ALTER TABLE jobmatch_settings
ADD COLUMN rank_occupation_weight double precision NOT NULL DEFAULT 0.05
CHECK (rank_occupation_weight >= 0 AND rank_occupation_weight < 'Infinity');
