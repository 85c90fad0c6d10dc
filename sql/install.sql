--
-- install: CREATE EXTENSION gives the objects of SPEC sections 2, 5 and 6,
-- each with a COMMENT, marks the tables for pg_dump, grants nothing to
-- PUBLIC that reads a job or changes one, and has no function that could
-- be hijacked.
--
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS dms_lifecycle CASCADE;
CREATE EXTENSION dms_lifecycle;
RESET client_min_messages;

-- The extension and its version.
SELECT extname, extversion, extrelocatable
  FROM pg_extension WHERE extname = 'dms_lifecycle';

-- Every object that belongs to the extension.
\dx+ dms_lifecycle

-- The seven types are enums with the values of SPEC 2, in that order, and
-- dms_database_state (ENGINE.md 6).
SELECT t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) AS "values"
  FROM pg_depend d
  JOIN pg_type t ON t.oid = d.objid
  JOIN pg_enum e ON e.enumtypid = t.oid
 WHERE d.classid = 'pg_type'::regclass
   AND d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dms_lifecycle')
   AND d.deptype = 'e'
 GROUP BY t.typname
 ORDER BY t.typname;

-- The columns of the three tables and of the view (SPEC 5 and 6), of the
-- engine's table and view (ENGINE.md 2 and 6), and of the metrics view,
-- with their types, NOT NULL and defaults.
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null,
       CASE WHEN a.attidentity <> '' THEN 'identity'
            ELSE pg_get_expr(ad.adbin, ad.adrelid) END AS "default"
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
 WHERE c.relname IN ('dms_job', 'dms_job_failure', 'dms_job_history', 'dms_job_overview',
                     'dms_job_database', 'dms_job_progress', 'dms_metrics')
   AND c.relnamespace = 'public'::regnamespace
 ORDER BY c.relname, a.attnum;

-- Keys: the primary keys, the unique job name and the failure rows'
-- reference to their job, ON DELETE CASCADE.  (The legal (status, phase)
-- pairs of SPEC 3 are enforced by the trigger dms_job_guard.)  The engine's
-- rows of dms_job_database have no foreign key: they outlive their job
-- until the engine has cleaned up.
SELECT conrelid::regclass AS "table", contype, pg_get_constraintdef(oid) AS definition
  FROM pg_constraint
 WHERE conrelid IN ('dms_job'::regclass, 'dms_job_failure'::regclass,
                    'dms_job_history'::regclass, 'dms_job_database'::regclass)
 ORDER BY conrelid::regclass::text COLLATE "C", contype, 3;

-- The signatures of the SQL-callable functions of SPEC 6 (trigger
-- functions and helpers included), with their return types.  None is
-- STRICT: a NULL argument is an error, not a silent NULL (SPEC 6).
SELECT p.oid::regprocedure AS function,
       pg_get_function_result(p.oid) AS returns,
       p.proisstrict AS strict
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dms_lifecycle')
   AND d.deptype = 'e'
 ORDER BY p.proname;

-- Every function, table, view and type has a COMMENT: the list of those
-- that have none is empty.
WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d
     WHERE d.refclassid = 'pg_extension'::regclass
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dms_lifecycle')
       AND d.deptype = 'e'
)
SELECT pg_describe_object(m.classid, m.objid, 0) AS uncommented
  FROM members m
  LEFT JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
 WHERE (m.classid IN ('pg_proc'::regclass, 'pg_type'::regclass)
        OR (m.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'v')))
   AND obj_description(m.objid, (SELECT relname FROM pg_class
                                  WHERE oid = m.classid)) IS NULL
 ORDER BY 1;

-- ... and how many commented objects of each kind that check looked at.
WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d
     WHERE d.refclassid = 'pg_extension'::regclass
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dms_lifecycle')
       AND d.deptype = 'e'
)
SELECT CASE WHEN m.classid = 'pg_proc'::regclass THEN 'function'
            WHEN m.classid = 'pg_type'::regclass THEN 'type'
            WHEN c.relkind = 'r' THEN 'table'
            WHEN c.relkind = 'v' THEN 'view' END AS kind,
       count(*) AS commented
  FROM members m
  LEFT JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
 WHERE (m.classid IN ('pg_proc'::regclass, 'pg_type'::regclass)
        OR (m.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'v')))
   AND obj_description(m.objid, (SELECT relname FROM pg_class
                                  WHERE oid = m.classid)) IS NOT NULL
 GROUP BY 1
 ORDER BY 1;

-- The three tables and the engine's are marked for pg_dump (SPEC 10), with
-- no filter: all their rows are dumped (and the identity sequences with them, so that ids
-- go on where they were).
SELECT cfg::regclass AS dumped_table, coalesce(cond, '') AS condition
  FROM pg_extension e,
       unnest(e.extconfig, e.extcondition) AS u(cfg, cond)
 WHERE e.extname = 'dms_lifecycle'
 ORDER BY cfg::regclass::text COLLATE "C";

-- PUBLIC holds no privilege on the tables or the views (SPEC 9): no row.
SELECT c.relname, a.privilege_type
  FROM pg_class c,
       aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
 WHERE c.relname IN ('dms_job', 'dms_job_failure', 'dms_job_history', 'dms_job_overview',
                     'dms_job_database', 'dms_job_progress', 'dms_metrics')
   AND c.relnamespace = 'public'::regnamespace
   AND a.grantee = 0
 ORDER BY 1, 2;

-- ... nor on the sequences behind the identity columns: no row.
SELECT c.relname, a.privilege_type
  FROM pg_class c,
       aclexplode(coalesce(c.relacl, acldefault('s', c.relowner))) a
 WHERE c.relkind = 'S'
   AND c.relname LIKE 'dms\_%'
   AND a.grantee = 0
 ORDER BY 1, 2;

-- The functions PUBLIC may EXECUTE: only those that reveal no job and
-- change nothing (the labels and the lifecycle itself).  No action, no
-- dms_report, no trigger function, no dms_allowed_actions (it reads a
-- job), no dms_grant or dms_revoke.
SELECT p.oid::regprocedure AS public_may_execute
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid,
       aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dms_lifecycle')
   AND d.deptype = 'e'
   AND a.grantee = 0
   AND a.privilege_type = 'EXECUTE'
 ORDER BY p.proname;

-- The same, asked the way PostgreSQL decides it, for every function of the
-- extension: the same five, no state-changing one among them.
SELECT p.oid::regprocedure AS executable_by_public
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'dms_lifecycle')
   AND d.deptype = 'e'
   AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY p.proname;

-- No function can be hijacked: none is SECURITY DEFINER, none is written in
-- a language that resolves names at run time through search_path (all are
-- C), and none is owned by anybody but the extension's owner.
SELECT l.lanname AS language, p.prosecdef AS security_definer,
       pg_get_userbyid(p.proowner) = pg_get_userbyid(e.extowner) AS owned_by_extension_owner,
       count(*) AS functions
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
  JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.refclassid = 'pg_extension'::regclass
   AND e.extname = 'dms_lifecycle'
   AND d.deptype = 'e'
 GROUP BY 1, 2, 3
 ORDER BY 1, 2, 3;

-- The triggers that enforce the lifecycle on every write (SPEC 1 and 5).
SELECT tgrelid::regclass AS "table", tgname, tgfoid::regproc AS function,
       (tgtype & 2) <> 0 AS before
  FROM pg_trigger
 WHERE tgrelid IN ('dms_job'::regclass, 'dms_job_failure'::regclass,
                   'dms_job_history'::regclass)
   AND NOT tgisinternal
 ORDER BY tgrelid::regclass::text COLLATE "C", tgname;

-- A fresh install holds no job and no history.
SELECT (SELECT count(*) FROM dms_job) AS jobs,
       (SELECT count(*) FROM dms_job_failure) AS failures,
       (SELECT count(*) FROM dms_job_history) AS history_rows;

-- Every object is described, so that \dx+ dms_lifecycle, \d+ dms_job and
-- \df+ dms_* read as a manual: each member of the extension (types,
-- tables, sequences, view, functions) and each column of its tables and
-- view has a comment.  The list of what has none must be empty.
WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND e.extname = 'dms_lifecycle')
SELECT pg_describe_object(classid, objid, 0) AS undescribed
  FROM members
 WHERE obj_description(objid, (SELECT relname FROM pg_class WHERE oid = classid)) IS NULL
UNION ALL
SELECT format('column %s.%s', c.relname, a.attname)
  FROM members m
  JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'v') AND col_description(c.oid, a.attnum) IS NULL
 ORDER BY 1;
-- How many members and columns that covers.
SELECT count(*) FILTER (WHERE classid <> 'pg_class'::regclass OR relkind NOT IN ('r', 'v')) AS members,
       sum(columns) AS columns
  FROM (SELECT d.classid, c.relkind,
               (SELECT count(*) FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND c.relkind IN ('r', 'v')) AS columns
          FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
          LEFT JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
         WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
           AND e.extname = 'dms_lifecycle') m;
