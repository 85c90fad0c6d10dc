-- scripts/demo-migration/progress.sql: one look at job 1 and its dms_job_progress, then,
-- while the job is Starting... or running its full dump, another one half a second later (at most
-- :samples_left more: demo_wait's timeout then fails the demo).  The first look prints its
-- query, the others only their result.  :'began' is when alice started the job.
SELECT round(extract(epoch FROM clock_timestamp() - :'began'::timestamptz)::numeric, 1) AS seconds,
       o.status || coalesce(' (' || o.substatus || ')', '') AS job,
       p.database_name AS database, p.state, p.tables_copied || '/' || p.tables_total AS tables,
       pg_size_pretty(p.bytes_copied) AS copied, pg_size_pretty(p.bytes_total) AS of,
       p.percent, p.rows_copied
  FROM dms_job_overview o LEFT JOIN dms_job_progress p ON p.job_id = o.id
 WHERE o.id = 1 ORDER BY p.database_name;
\set ECHO none
SELECT (status = 'starting' OR status IN ('running', 'running_with_errors') AND phase = 'full_dump')
       AND :samples_left > 0 AS again,
       :samples_left - 1 AS samples_left
  FROM dms_job WHERE id = 1 \gset
\if :again
SELECT pg_sleep(0.5) \g /dev/null
\ir progress.sql
\endif
