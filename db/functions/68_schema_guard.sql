-- The schema the definer functions resolve names in. Every SECURITY
-- DEFINER function (and trigger) runs with search_path = public, pg_temp:
-- a role that may CREATE in public could add an overload that PostgreSQL
-- prefers to ours or to pg_catalog's (an unknown literal goes to a text
-- parameter first; an exact type match beats an implicit cast), and its body
-- would run as the owner (CVE-2018-1058). Clusters created before
-- PostgreSQL 15, and their pg_upgrade'd copies, grant CREATE on public to
-- PUBLIC. So every deploy takes that grant back, and jobmatch_schema_exposure
-- reports what is left for `jobmatch migrate` (refuses) and `jobmatch
-- health` (shows).

-- Trusted in public: a superuser, the functions' owner or a role whose
-- rights it has by membership (it could plant anything itself; a superuser
-- owner is a member of every role in pg_has_role's eyes, so only its own
-- name counts then), or a member of the schema's owner (the database's
-- owner: the DBA).
CREATE OR REPLACE FUNCTION jobmatch_trusted_in_public(p_role oid, p_owner oid)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT coalesce((SELECT r.rolsuper FROM pg_roles AS r WHERE r.oid = p_role), false)
           OR p_role = p_owner
           OR (NOT coalesce((SELECT r.rolsuper FROM pg_roles AS r WHERE r.oid = p_owner), false)
               AND pg_has_role(p_owner, p_role, 'MEMBER'))
           OR pg_has_role(p_role, (SELECT n.nspowner FROM pg_namespace AS n
                                   WHERE n.nspname = 'public'), 'MEMBER')
$$;

-- What an untrusted role could use to run code as the owner: roles that
-- may CREATE in public ('create'), and functions ('function') or operators
-- ('operator') in public that an untrusted role owns, a function only if
-- its name is one of pg_catalog's or of a trusted owner's function in
-- public (a name a definer function may call). Extension objects are the
-- extension's owner's.
CREATE OR REPLACE FUNCTION jobmatch_schema_exposure()
RETURNS TABLE (kind text, object_name text, owner_name text)
LANGUAGE sql STABLE
AS $$
    WITH owner AS (
        SELECT p.proowner AS oid FROM pg_proc AS p
        WHERE p.oid = 'match_jobs(bigint, integer)'::regprocedure
    )
    SELECT 'create', r.rolname::text, r.rolname::text
    FROM pg_roles AS r, owner AS o
    WHERE r.rolname !~ '^pg_'
      AND has_schema_privilege(r.oid, 'public', 'CREATE')
      AND NOT jobmatch_trusted_in_public(r.oid, o.oid)
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text
    FROM pg_proc AS p, owner AS o
    WHERE p.pronamespace = 'public'::regnamespace
      AND NOT jobmatch_trusted_in_public(p.proowner, o.oid)
      AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                        AND d.deptype = 'e')
      AND EXISTS (SELECT 1 FROM pg_proc AS q
                  WHERE q.proname = p.proname AND q.oid <> p.oid
                    AND (q.pronamespace = 'pg_catalog'::regnamespace
                         OR jobmatch_trusted_in_public(q.proowner, o.oid)))
    UNION ALL
    SELECT 'operator', x.oid::regoperator::text, pg_get_userbyid(x.oprowner)::text
    FROM pg_operator AS x, owner AS o
    WHERE x.oprnamespace = 'public'::regnamespace
      AND NOT jobmatch_trusted_in_public(x.oprowner, o.oid)
      AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                      WHERE d.classid = 'pg_operator'::regclass AND d.objid = x.oid
                        AND d.deptype = 'e')
    ORDER BY 1, 2
$$;

-- Takes back PUBLIC's CREATE on public (PostgreSQL 15's default), where the
-- deploying role may: it owns the schema or is a superuser. Anyone else's
-- explicit grant is left to the DBA and reported.
CREATE OR REPLACE FUNCTION jobmatch_lock_schema()
RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    IF has_schema_privilege('public', 'public', 'CREATE')
       AND pg_has_role((SELECT n.nspowner FROM pg_namespace AS n WHERE n.nspname = 'public'),
                       'USAGE') THEN
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    END IF;
END
$$;

SELECT jobmatch_lock_schema();
