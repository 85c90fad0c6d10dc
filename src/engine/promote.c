/*
 * src/engine/promote.c: the cutover (ENGINE.md section 4).
 *
 * With fence_source on, the source databases refuse writes first: new
 * sessions are read-only (ALTER DATABASE ... SET
 * default_transaction_read_only), and the client sessions already connected
 * are ended, since they would keep writing.  Then the engine waits until
 * every slot has confirmed the source's WAL position taken after the fence
 * (promote_timeout), compares every table (verify), copies the sequences,
 * and takes replication down.  A comparison that differs, or a timeout,
 * lifts the fence and leaves replication running: the job fails in CDC,
 * from where it may be promoted again.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "internal.h"
#include "lifecycle.h"

static bool
fence_database(Endpoint *source, const char *name, bool on, char **error)
{
	PGconn	   *conn = remote_connect(source, name, false, error);
	const char *values[1] = {name};
	bool		ok;

	if (conn == NULL)
		return false;
	ok = remote_command(conn, psprintf("ALTER DATABASE %s %s", quote_identifier(name),
									   on ? "SET default_transaction_read_only = on"
									   : "RESET default_transaction_read_only"), error);
	if (ok && on)
	{
		PGresult   *res = remote_exec_params(conn,
											 "SELECT coalesce(pg_catalog.array_agg(pid)::text, '{}') FROM ("
											 "SELECT pid, pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
											 "WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid() "
											 "AND backend_type = 'client backend') t",
											 1, values);
		char	   *ended = NULL;

		ok = remote_ok(res);
		if (!ok)
			*error = remote_error(conn, res);
		else
			ended = pstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
		/*
		 * Ending a session takes a moment: its last commit must be in the
		 * WAL before the position the catch-up waits for is read.
		 */
		ok = false;
		for (int tries = 0; ended != NULL && tries < 100; tries++)
		{
			PGresult   *left = remote_exec(conn,
										   psprintf("SELECT count(*) FROM pg_catalog.pg_stat_activity "
													"WHERE pid = ANY (%s::int[])",
													quote_literal_cstr(ended)));
			bool		gone = remote_ok(left) && strcmp(PQgetvalue(left, 0, 0), "0") == 0;

			PQclear(left);
			if (gone)
			{
				ok = true;
				break;
			}
			pg_usleep(100 * 1000L);
			CHECK_FOR_INTERRUPTS();
		}
		if (!ok && ended != NULL)
			*error = pstrdup("sessions it ended were still there after 10 s (a write of theirs could come after the catch-up)");
		if (ok)
		{
			char	   *prepared = remote_value(conn,
												psprintf("SELECT string_agg(gid, ', ') FROM pg_catalog.pg_prepared_xacts WHERE database = %s",
														 quote_literal_cstr(name)),
												NULL);

			if (prepared != NULL)
			{
				*error = psprintf("prepared transactions wait there (%s); COMMIT PREPARED or ROLLBACK PREPARED them, then promote again",
								  prepared);
				ok = false;
			}
		}
	}
	PQfinish(conn);
	return ok;
}

void
fence_lift(Endpoint *source, List *databases)
{
	ListCell   *lc;

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);
		char	   *error = NULL;

		if (!fence_database(source, db->name, false, &error))
			ereport(WARNING,
					(errmsg("dms_lifecycle: source \"%s\" (%s), database \"%s\": could not lift the fence: %s; run ALTER DATABASE %s RESET default_transaction_read_only there",
							source->server, source->where, db->name, error, quote_identifier(db->name))));
	}
}

/*
 * Rows (and with verify = checksum, a checksum of the rows) of one table:
 * the query.  The checksum is the sum of the first 64 bits of each row's
 * md5 as text: any row lost, doubled or changed changes it, in whatever
 * order the rows are read, with no sort.  The row is t.*, never a bare t,
 * which names the table's column "t" if it has one.
 */
static char *
table_summary_sql(const char *table)
{
	if (engine_verify == VERIFY_CHECKSUM)
		return psprintf("SELECT count(*) || ' rows, checksum ' || "
						"coalesce(sum(('x' || left(md5((t.*)::text), 16))::bit(64)::bigint), 0) FROM %s t", table);
	return psprintf("SELECT count(*) || ' rows' FROM %s", table);
}

/* The tables of one database whose rows differ between source and destination. */
static bool
verify_database(Endpoint *source, EngineDatabase *db, StringInfo differences, int *compared,
				char **error)
{
	PGconn	   *src;
	PGconn	   *dst;
	PGresult   *res;
	bool		ok = true;

	if (!connect_pair(source, db->name, &src, &dst, error))
		return false;
	/*
	 * Rows as text, the same on both sides whatever each server's settings.
	 * Floats: from 12 extra_float_digits 3 prints the shortest exact text,
	 * before 12 it prints 17 digits (0.1 as 0.100000000000000006), so that
	 * every float of an older source would differ; 0 prints 15 on both.
	 * Row-level security off: a policy that would hide rows fails the
	 * verify instead of comparing some rows.
	 */
	{
		const char *same = psprintf("SET extra_float_digits = %d; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
									"SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET lc_monetary = 'C'",
									PQserverVersion(src) < 120000 ? 0 : 3);

		remote_command(src, same, NULL);
		remote_command(dst, same, NULL);
		/* its own command, checked: without it, the comparison could be of some of the rows */
		for (int side = 0; side < 2; side++)
			if (!remote_command(side == 0 ? src : dst, "SET row_security = off", error))
			{
				*error = psprintf("cannot turn row-level security off on the %s: %s",
								  side == 0 ? "source" : "destination", *error);
				PQfinish(src);
				PQfinish(dst);
				return false;
			}
	}
	res = remote_exec(src, source_tables_sql(PQserverVersion(src)));
	if (!remote_ok(res))
	{
		*error = remote_error(src, res);
		ok = false;
	}
	for (int i = 0; ok && i < PQntuples(res); i++)
	{
		const char *table = source_table_name(res, i);
		const char *sql = table_summary_sql(table);
		bool		dst_sent;
		char	   *a;
		char	   *b;
		char	   *dst_error = NULL;

		/* both servers read the table at once */
		if (!PQsendQuery(src, sql))
		{
			*error = remote_error(src, NULL);
			ok = false;
			break;
		}
		dst_sent = PQsendQuery(dst, sql);
		a = remote_result_value(src, remote_collect(src), error);
		b = dst_sent ? remote_result_value(dst, remote_collect(dst), &dst_error) : NULL;
		if (!dst_sent)
			dst_error = remote_error(dst, NULL);
		if (a == NULL)
		{
			ok = false;
			break;
		}
		if (b == NULL)
			b = psprintf("unreadable (%s; DDL made on the source during the migration is not migrated)", dst_error);
		(*compared)++;
		if (strcmp(a, b) != 0)
			appendStringInfo(differences, "%s%s.%s: source %s, destination %s",
							 differences->len ? "; " : "", db->name, table, a, b);
	}
	PQclear(res);
	PQfinish(src);
	PQfinish(dst);
	return ok;
}

/*
 * Promotes a job; true when it is done (*error then holds the promoted
 * event's message), false with *error when it failed (the fence lifted,
 * replication left running), false with *error NULL when the job was
 * deleted or changed meanwhile.
 */
bool
promote_job(EngineJob *job, Endpoint *source, List *databases, char **error)
{
	ListCell   *lc;
	char	   *lsn = NULL;
	TimestampTz started = GetCurrentTimestamp();
	StringInfoData differences;
	int			compared = 0;
	int			fenced = 0;		/* how many databases the fence holds */

	/* a failed database has no replication left to promote */
	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		if (db->state == DB_FAILED)
		{
			*error = psprintf("database \"%s\" failed and its replication was taken down (%s); remove it from the job with dms_remove_database, or restart the job",
							  db->name, db->last_error ? db->last_error : "no message");
			return false;
		}
	}

	/* every database streams: a stopped one is enabled for the catch-up */
	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		if (db->state == DB_DONE)
			continue;
		if (db->state != DB_STREAMING && db->state != DB_PROMOTING &&
			!stream_set_enabled(job->id, db, true, error))
		{
			*error = psprintf("database \"%s\" cannot be promoted: %s", db->name, *error);
			return false;
		}
		db->state = DB_PROMOTING;
		engine_save_database(job->id, db);
	}

	if (engine_fence_source)
	{
		foreach(lc, databases)
		{
			EngineDatabase *db = lfirst(lc);

			fenced++;			/* lifted on failure, even half made */
			if (!fence_database(source, db->name, true, error))
			{
				*error = psprintf("source \"%s\" (%s), database \"%s\": could not fence the source: %s",
								  source->server, source->where, db->name, *error);
				goto failed;
			}
		}
	}

	/* the source's position after the fence: everything written before it */
	{
		PGconn	   *conn = remote_connect(source, ((EngineDatabase *) linitial(databases))->name, false, error);

		if (conn != NULL)
		{
			lsn = remote_value(conn, "SELECT pg_catalog.pg_current_wal_lsn()::text", error);
			PQfinish(conn);
		}
		if (lsn == NULL)
		{
			*error = psprintf("source \"%s\" (%s): cannot read its WAL position: %s",
							  source->server, source->where, *error);
			goto failed;
		}
	}

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		while (!stream_caught_up(job->id, source, db, lsn, error))
		{
			if (TimestampDifferenceExceeds(started, GetCurrentTimestamp(),
										   engine_promote_timeout_s * 1000L))
			{
				*error = psprintf("database \"%s\" did not catch up with the source within dms_lifecycle.promote_timeout (%d s)",
								  db->name, engine_promote_timeout_s);
				goto failed;
			}
			if (copy_should_stop(job))
			{
				*error = NULL;
				goto failed;	/* stopped or deleted meanwhile: as a failed promotion, without its event */
			}
			engine_wait(Min(engine_naptime_ms, 200));
		}
	}

	initStringInfo(&differences);
	if (engine_verify != VERIFY_OFF)
		foreach(lc, databases)
		{
			if (!verify_database(source, lfirst(lc), &differences, &compared, error))
			{
				*error = psprintf("database \"%s\": cannot compare the tables: %s",
								  ((EngineDatabase *) lfirst(lc))->name, *error);
				goto failed;
			}
		}
	if (differences.len > 0)
	{
		*error = psprintf("the tables differ: %s", differences.data);
		goto failed;
	}
	foreach(lc, databases)
		if (!copy_finish(source, lfirst(lc), error))
			goto failed;

	*error = psprintf("promoted %d database%s in %.1f s; %s", list_length(databases),
					  list_length(databases) == 1 ? "" : "s",
					  (GetCurrentTimestamp() - started) / 1e6,
					  engine_verify == VERIFY_OFF ? "tables not compared (dms_lifecycle.verify = off)" :
					  psprintf("%d table%s compared (%s)", compared, compared == 1 ? "" : "s",
							   engine_verify == VERIFY_CHECKSUM ? "rows and checksums" : "row counts"));
	return true;

failed:
	fence_lift(source, list_copy_head(databases, fenced));
	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		if (db->state == DB_PROMOTING)
		{
			db->state = DB_STREAMING;
			engine_save_database(job->id, db);
		}
	}
	return false;
}
