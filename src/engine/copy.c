/*
 * src/engine/copy.c: the full dump of one database, from one consistent
 * point (ENGINE.md sections 3 and 8).
 *
 *   1. the destination database is created if absent;
 *   2. the source's tables are published (tables without a replica
 *      identity for inserts only, so that no write on the source fails);
 *   3. a logical slot is created with an exported snapshot, on a
 *      replication connection held open during the copy: the slot's
 *      consistent point is where streaming will start;
 *   4. pg_dump of this PostgreSQL reads the schema in that snapshot; its
 *      pre-data section (tables, types, functions) is restored;
 *   5. dump_parallelism streams copy the tables, largest first, each a COPY
 *      out of the source in the snapshot and into the destination; with
 *      several streams and a source of PostgreSQL 14 or later, a table of
 *      at least dms_lifecycle.split_table_size is copied in ranges of its
 *      blocks, several at once;
 *   6. the post-data section (indexes, constraints, triggers) is built,
 *      in parallel, after the data.
 * A database whose copy is interrupted starts over: the snapshot died with
 * the connection that exported it.
 */
#include "postgres.h"

#include <sys/socket.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "internal.h"
#include "lifecycle.h"

typedef struct SourceTable
{
	char	   *qualified;		/* schema.name, quoted */
	char	   *columns;		/* quoted column list, NULL for none */
	int64		bytes;
	bool		has_identity;
	int			pieces_left;	/* of its copy: pieces not copied yet */
} SourceTable;

/* What one COPY of a copy stream moves: a whole table, or a range of its blocks. */
typedef struct CopyPiece
{
	SourceTable *table;
	int64		first_block;	/* -1: the whole table */
	int64		end_block;		/* the block after the range; -1: to the table's end */
	int64		bytes;			/* its share of the table's size: the order, the progress */
	int			order;			/* the table's place, then the range's: ties keep it */
} CopyPiece;

typedef struct CopyStream
{
	PGconn	   *src;
	PGconn	   *dst;
	CopyPiece  *piece;			/* NULL when idle */
	int64		streamed;		/* bytes of COPY text sent for this piece */
	bool		flushing;		/* the destination has not taken all it was sent */
	StringInfoData pending;		/* rows read from the source, not yet sent on */
} CopyStream;

/* Rows go on to the destination in messages of about this size, not one a row. */
#define COPY_CHUNK 65536

/*
 * What a copy stream's destination socket may hold: enough rows for the
 * destination to work on while the job worker attends to other streams or
 * waits for a processor.
 */
#define COPY_SOCKET_BUFFER (4 * 1024 * 1024)

static const int streams_per_level[] = {1, 2, 4};

/*
 * A table's name as this PostgreSQL quotes it (a word reserved here, and
 * not on the source, is quoted), from source_tables_sql's row.
 */
char *
source_table_name(PGresult *res, int row)
{
	return psprintf("%s.%s", quote_identifier(PQgetvalue(res, row, 4)),
					quote_identifier(PQgetvalue(res, row, 5)));
}

/* Its column list, quoted here, from the source's names (',' separated, '\\' escaped). */
static char *
source_table_columns(const char *names)
{
	StringInfoData out;
	StringInfoData name;

	initStringInfo(&out);
	initStringInfo(&name);
	for (const char *p = names;; p++)
	{
		if (*p == '\\' && p[1] != '\0')
			appendStringInfoChar(&name, *++p);
		else if (*p == ',' || *p == '\0')
		{
			appendStringInfo(&out, "%s%s", out.len ? ", " : "", quote_identifier(name.data));
			resetStringInfo(&name);
			if (*p == '\0')
				break;
		}
		else
			appendStringInfoChar(&name, *p);
	}
	return out.data;
}

/*
 * The tables the engine copies and publishes: ordinary, permanent tables
 * (partitions included: their rows live there), not the system's, not an
 * extension's; largest first.  Generated columns are not copied: the
 * destination computes them.  Columns: qualified, bytes, has_identity,
 * columns, nspname, relname, oid.
 */
char *
source_tables_sql(int server_version)
{
	return psprintf("SELECT format('%%I.%%I', n.nspname, c.relname) AS qualified, "
					"pg_catalog.pg_relation_size(c.oid) AS bytes, "
					"(c.relreplident IN ('f', 'i') OR (c.relreplident = 'd' AND EXISTS "
					"(SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))) AS has_identity, "
					"(SELECT string_agg(replace(replace(a.attname, '\\', '\\\\'), ',', '\\,'), ',' ORDER BY a.attnum) "
					"FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 "
					"AND NOT a.attisdropped%s) AS columns, n.nspname, c.relname, c.oid AS oid "
					"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
					"WHERE c.relkind = 'r' AND c.relpersistence = 'p' "
					"AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_' "
					"AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
					"AND d.objid = c.oid AND d.deptype = 'e') "
					"ORDER BY 2 DESC, 1",
					server_version >= 120000 ? " AND a.attgenerated = ''" : "");
}

static List *
read_tables(PGconn *conn, char **error)
{
	PGresult   *res = remote_exec(conn, source_tables_sql(PQserverVersion(conn)));
	List	   *tables = NIL;

	if (!remote_ok(res))
	{
		*error = psprintf("cannot list the tables: %s", remote_error(conn, res));
		PQclear(res);
		return NIL;
	}
	for (int i = 0; i < PQntuples(res); i++)
	{
		SourceTable *t = palloc0(sizeof(SourceTable));

		t->qualified = source_table_name(res, i);
		t->bytes = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		t->has_identity = PQgetvalue(res, i, 2)[0] == 't';
		t->columns = PQgetisnull(res, i, 3) ? NULL : source_table_columns(PQgetvalue(res, i, 3));
		tables = lappend(tables, t);
	}
	PQclear(res);
	return tables;
}

/* CREATE PUBLICATION name [FOR TABLE ...] [WITH (publish = 'insert')] */
static char *
publication_sql(const char *name, List *tables, bool identity)
{
	StringInfoData s;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&s);
	appendStringInfo(&s, "CREATE PUBLICATION %s", quote_identifier(name));
	foreach(lc, tables)
	{
		SourceTable *t = lfirst(lc);

		if (t->has_identity != identity)
			continue;
		appendStringInfoString(&s, first ? " FOR TABLE ONLY " : ", ONLY ");
		appendStringInfoString(&s, t->qualified);
		first = false;
	}
	if (!identity)
		appendStringInfoString(&s, " WITH (publish = 'insert')");
	return s.data;
}

/* The job, read again: has it been stopped, deleted or moved on since the copy began? */
bool
copy_should_stop(EngineJob *job)
{
	static MemoryContext scratch = NULL;
	MemoryContext old;
	EngineJob	now;
	bool		stop;

	if (scratch == NULL)
		scratch = AllocSetContextCreate(TopMemoryContext, "dms_lifecycle job check",
										ALLOCSET_SMALL_SIZES);
	MemoryContextReset(scratch);
	old = MemoryContextSwitchTo(scratch);
	stop = !engine_read_job(job->id, &now) ||
		!(now.status == ST_RUNNING || now.status == ST_RUNNING_WITH_ERRORS ||
		  now.status == ST_FAILED) ||
		now.phase != job->phase;
	MemoryContextSwitchTo(old);
	return stop;
}

static char *
dump_path(int64 job_id, Oid oid)
{
	return psprintf("%s/dms_lifecycle/job_" INT64_FORMAT "_%u.dump", DataDir, job_id, oid);
}

/*
 * pg_restore of one section of the dump into the destination database,
 * with its owners and grants: the pre-data section in one transaction, so
 * that no function is there without its grants (a SECURITY DEFINER one
 * callable by PUBLIC for a moment would run anything as its owner).  Every
 * role they name exists here (preflight).  The post-data section's many
 * statements (an index, a constraint each) commit without waiting for
 * their WAL to be flushed: the engine's own, synchronous, commit of the
 * database's next state flushes them all, and a crash before it starts the
 * database's copy over.
 */
static bool
restore_section(EngineDatabase *db, const char *file, const char *section, int jobs,
				char **error)
{
	char	   *restore = pg_program_path("pg_restore");
	char	   *conninfo = endpoint_conninfo(endpoint_local(), db->name, NULL);
	const char *argv[16];
	int			i = 0;
	char	   *output;

	if (strcmp(section, "post-data") == 0)
		conninfo = psprintf("%s options='-c synchronous_commit=off'", conninfo);
	argv[i++] = restore;
	argv[i++] = psprintf("--section=%s", section);
	argv[i++] = "--no-tablespaces";
	argv[i++] = "--exit-on-error";
	if (jobs > 1)
		argv[i++] = psprintf("--jobs=%d", jobs);
	else
		argv[i++] = "--single-transaction";
	argv[i++] = psprintf("--dbname=%s", conninfo);
	argv[i++] = file;
	argv[i] = NULL;
	if (run_program(argv, NULL, &output) != 0)
	{
		*error = psprintf("restoring the schema (%s) failed: %s", section, output);
		return false;
	}
	return true;
}

/* Makes the destination database if it does not exist, like the source's. */
static bool
ensure_destination(int64 job_id, PGconn *src, EngineDatabase *db, char **error)
{
	PGconn	   *local = remote_connect(endpoint_local(), engine_database, false, error);
	const char *values[1] = {db->name};
	PGresult   *res;
	bool		exists;
	bool		ok = true;

	if (local == NULL)
		return false;
	res = remote_exec_params(local, "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", 1, values);
	exists = remote_ok(res) && PQntuples(res) == 1;
	PQclear(res);
	if (!exists)
	{
		PGresult   *like = remote_exec(src, "SELECT pg_catalog.pg_encoding_to_char(encoding), datcollate, datctype "
									   "FROM pg_catalog.pg_database WHERE datname = current_database()");

		if (!remote_ok(like) || PQntuples(like) != 1)
		{
			*error = psprintf("cannot read the source database's encoding: %s", remote_error(src, like));
			PQclear(like);
			PQfinish(local);
			return false;
		}
		/* recorded first: a crash right after CREATE DATABASE still knows it made it */
		db->created_database = true;
		engine_save_database(job_id, db);
		ok = remote_command(local,
							psprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s",
									 quote_identifier(db->name),
									 quote_literal_cstr(PQgetvalue(like, 0, 0)),
									 quote_literal_cstr(PQgetvalue(like, 0, 1)),
									 quote_literal_cstr(PQgetvalue(like, 0, 2))),
							error);
		if (!ok)
			*error = psprintf("cannot create the destination database like the source's (encoding %s, collation %s): %s; create it yourself, empty",
							  PQgetvalue(like, 0, 0), PQgetvalue(like, 0, 1), *error);
		PQclear(like);
		if (ok)
		{
			/* the database the engine made, and no other of its name, is the one a restart drops */
			res = remote_exec_params(local, "SELECT oid FROM pg_catalog.pg_database WHERE datname = $1", 1, values);
			if (remote_ok(res) && PQntuples(res) == 1)
				db->destination_oid = (Oid) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
			PQclear(res);
			engine_save_database(job_id, db);
		}
	}
	PQfinish(local);
	return ok;
}

/* Largest first; among equals, the tables' order, then the ranges'. */
static int
piece_cmp(const ListCell *a, const ListCell *b)
{
	const CopyPiece *pa = lfirst(a);
	const CopyPiece *pb = lfirst(b);

	if (pa->bytes != pb->bytes)
		return pa->bytes > pb->bytes ? -1 : 1;
	return pa->order - pb->order;
}

/*
 * A range's query: its columns, from ONLY the table, the rows of blocks
 * first_block to end_block (-1: to the table's end).
 */
static char *
range_query(SourceTable *t, int64 first_block, int64 end_block)
{
	if (end_block < 0)
		return psprintf("SELECT %s FROM ONLY %s WHERE ctid >= '(" INT64_FORMAT ",0)'::pg_catalog.tid",
						t->columns, t->qualified, first_block);
	return psprintf("SELECT %s FROM ONLY %s WHERE ctid >= '(" INT64_FORMAT ",0)'::pg_catalog.tid "
					"AND ctid < '(" INT64_FORMAT ",0)'::pg_catalog.tid",
					t->columns, t->qualified, first_block, end_block);
}

/* Did the command fail because a lock was not available (55P03: NOWAIT, lock_timeout)? */
static bool
lock_not_available(PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return state != NULL && strcmp(state, "55P03") == 0;
}

/*
 * What a copy stream says of an error of its source on table t.  A lock
 * the stream waited for longer than dms_lifecycle.copy_lock_timeout
 * (55P03) was held by someone else's DDL, which may itself wait for a lock
 * the copy holds: the copy fails rather than waiting for ever, and can be
 * started again once that DDL is done.
 */
static char *
stream_source_error(PGconn *conn, PGresult *res, SourceTable *t)
{
	if (lock_not_available(res))
		return psprintf("table %s: a concurrent DDL on the source held a lock the copy needed for longer than dms_lifecycle.copy_lock_timeout (%s); restart the job once it is done",
						t->qualified, remote_error(conn, res));
	return psprintf("table %s: %s", t->qualified, remote_error(conn, res));
}

/* Ends lock_for_ranges' savepoint in every stream, keeping its locks or not. */
static bool
release_ranges_lock(CopyStream *streams, int n, bool keep, char **error)
{
	for (int i = 0; i < n; i++)
		if (!remote_command(streams[i].src,
							keep ? "RELEASE SAVEPOINT dms_ranges" :
							"ROLLBACK TO SAVEPOINT dms_ranges; RELEASE SAVEPOINT dms_ranges",
							error))
			return false;
	return true;
}

/*
 * Takes, in every stream's transaction, the locks on t that its range
 * queries would take, for the table to be copied in ranges: *locked says
 * whether every stream has them.  A stream keeps the locks of a table it
 * has read until the copy ends (the table cannot be rewritten, its rows
 * moved, between two of its ranges).  Were a stream to ask for its first
 * lock on the table, or on one of its indexes, that another stream holds,
 * behind someone's ACCESS EXCLUSIVE request on it (a VACUUM FULL, an
 * ALTER TABLE on the table; a REINDEX on its indexes), it would wait for
 * that request, which waits for the other stream's transaction, which
 * ends with the copy: for ever.  So every stream takes them now, before
 * any range is read, without waiting: the table's with LOCK TABLE NOWAIT,
 * its indexes' (which the planner takes, and LOCK TABLE does not) by
 * planning a range's query (EXPLAIN) under a lock_timeout of 100 ms,
 * lock_timeout then set back to the stream's (stream_lock_timeout).  If a
 * stream cannot (55P03), the locks taken here go again (the savepoint's,
 * and its lock_timeout with them) and the table is copied whole, by one
 * stream, as any other.  Any other error fails the copy.
 */
static bool
lock_for_ranges(CopyStream *streams, int n, SourceTable *t, const char *stream_lock_timeout,
				bool *locked, char **error)
{
	const char *steps[] = {
		psprintf("LOCK TABLE ONLY %s IN ACCESS SHARE MODE NOWAIT", t->qualified),
		"SELECT pg_catalog.set_config('lock_timeout', '100ms', false)",
		psprintf("EXPLAIN (COSTS OFF) %s", range_query(t, 0, -1)),
		psprintf("SELECT pg_catalog.set_config('lock_timeout', %s, false)",
				 quote_literal_cstr(stream_lock_timeout)),
	};

	*locked = true;
	for (int i = 0; i < n; i++)
		if (!remote_command(streams[i].src, "SAVEPOINT dms_ranges", error))
			return false;
	for (int i = 0; i < n && *locked; i++)
		for (int j = 0; j < (int) lengthof(steps) && *locked; j++)
		{
			PGresult   *res = remote_exec(streams[i].src, steps[j]);

			if (!remote_ok(res))
			{
				if (!lock_not_available(res))
				{
					*error = psprintf("table %s: %s", t->qualified, remote_error(streams[i].src, res));
					PQclear(res);
					return false;
				}
				*locked = false;
			}
			PQclear(res);
		}
	if (!*locked)
		return release_ranges_lock(streams, n, false, error);
	return true;
}

/*
 * The pieces of a copy, largest first.  With several streams and a source
 * of PostgreSQL 14 or later, a table of at least
 * dms_lifecycle.split_table_size (its size read now, in the snapshot) is
 * copied in ranges of its blocks of about that size, which the streams copy
 * at once: a TID Range Scan reads only a range's blocks (before 14, each
 * range would read the whole table, so tables are not split there).  The
 * last range has no end: rows in blocks past the size read here still
 * arrive, and each row is in exactly one range.  Every stream holds the
 * locks of a table copied in ranges, and of its indexes, from here on
 * (lock_for_ranges); stream_lock_timeout is the streams' lock_timeout.
 */
static bool
plan_pieces(int64 job_id, EngineDatabase *db, CopyStream *streams, List *tables, int n,
			const char *stream_lock_timeout, List **out, char **error)
{
	List	   *pieces = NIL;
	PGconn	   *src = streams[0].src;
	int64		split_bytes = (int64) engine_split_table_kb * 1024;
	bool		may_split = n > 1 && split_bytes > 0 && PQserverVersion(src) >= 140000;
	int			order = 0;
	ListCell   *lc;

	foreach(lc, tables)
	{
		SourceTable *t = lfirst(lc);
		int64		blocks = 0;
		int64		block_size = 0;
		int64		ranges = 1;
		bool		locked = false;

		if (may_split && t->columns != NULL && t->bytes >= split_bytes)
		{
			if (!lock_for_ranges(streams, n, t, stream_lock_timeout, &locked, error))
				return false;
			if (!locked)
				ereport(LOG,
						(errmsg("dms_lifecycle: migration job " INT64_FORMAT ", database \"%s\": table %s or one of its indexes is locked on the source, copied whole",
								job_id, db->name, t->qualified)));
		}
		if (locked)
		{
			const char *values[1] = {t->qualified};
			PGresult   *res = remote_exec_params(src,
												 "SELECT pg_catalog.pg_relation_size($1::pg_catalog.regclass), "
												 "pg_catalog.current_setting('block_size')::bigint",
												 1, values);

			if (!remote_ok(res) || PQntuples(res) != 1)
			{
				*error = psprintf("table %s: cannot read its size: %s", t->qualified, remote_error(src, res));
				PQclear(res);
				return false;
			}
			block_size = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
			blocks = strtoll(PQgetvalue(res, 0, 0), NULL, 10) / block_size;
			PQclear(res);
			/* at least a block each, and as many for each stream, so that they end the table together */
			ranges = Min((blocks * block_size + split_bytes - 1) / split_bytes, blocks);
			if (ranges > 1)
				ranges = (ranges + n - 1) / n * n;
			/* a table copied whole keeps no lock of it in the streams */
			if (!release_ranges_lock(streams, n, ranges > 1, error))
				return false;
		}
		if (ranges < 2)
		{
			CopyPiece  *p = palloc0(sizeof(CopyPiece));

			p->table = t;
			p->first_block = p->end_block = -1;
			p->bytes = t->bytes;
			p->order = order++;
			pieces = lappend(pieces, p);
			t->pieces_left = 1;
			continue;
		}
		{
			int64		step = (blocks + ranges - 1) / ranges;

			ereport(LOG,
					(errmsg("dms_lifecycle: migration job " INT64_FORMAT ", database \"%s\": table %s (" INT64_FORMAT " blocks) copied in " INT64_FORMAT " ranges of " INT64_FORMAT " blocks",
							job_id, db->name, t->qualified, blocks, ranges, step)));
			for (int64 i = 0; i < ranges; i++)
			{
				CopyPiece  *p = palloc0(sizeof(CopyPiece));

				p->table = t;
				p->first_block = i * step;
				p->end_block = i == ranges - 1 ? -1 : (i + 1) * step;
				p->bytes = i == ranges - 1 ? t->bytes - (ranges - 1) * (t->bytes / ranges) : t->bytes / ranges;
				p->order = order++;
				pieces = lappend(pieces, p);
			}
			t->pieces_left = ranges;
		}
	}
	list_sort(pieces, piece_cmp);
	*out = pieces;
	return true;
}

static bool
start_stream(CopyStream *s, CopyPiece *p, char **error)
{
	SourceTable *t = p->table;
	PGresult   *res;
	char	   *cols = t->columns ? psprintf(" (%s)", t->columns) : "";
	char	   *out;

	s->piece = p;
	s->streamed = 0;
	s->flushing = false;
	if (p->first_block < 0)
		out = psprintf("COPY %s%s TO STDOUT", t->qualified, cols);
	else
		out = psprintf("COPY (%s) TO STDOUT", range_query(t, p->first_block, p->end_block));
	res = remote_exec(s->src, out);
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_OUT)
	{
		*error = stream_source_error(s->src, res, t);
		PQclear(res);
		return false;
	}
	PQclear(res);
	res = remote_exec(s->dst, psprintf("COPY %s%s FROM STDIN", t->qualified, cols));
	if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN)
	{
		*error = psprintf("table %s: %s", t->qualified, remote_error(s->dst, res));
		PQclear(res);
		return false;
	}
	PQclear(res);
	return true;
}

/*
 * Hands the rows read so far to the destination's connection, in one
 * message, and sends what its socket takes.  Never waits: what the socket
 * does not take yet stays in libpq, and s->flushing says so; nothing more
 * is read for this stream until the destination has it all, so that libpq
 * holds at most about one message (a buffer that grew with the source's
 * lead would be shifted at every partial send).
 */
static bool
send_pending(CopyStream *s, char **error)
{
	int			r;

	if (s->pending.len > 0)
	{
		r = PQputCopyData(s->dst, s->pending.data, s->pending.len);
		if (r < 0)
		{
			*error = psprintf("table %s: %s", s->piece->table->qualified, remote_error(s->dst, NULL));
			return false;
		}
		/* 0: libpq could not make room now; the rows stay here */
		if (r > 0)
			resetStringInfo(&s->pending);
	}
	r = PQflush(s->dst);
	if (r < 0)
	{
		*error = psprintf("table %s: %s", s->piece->table->qualified, remote_error(s->dst, NULL));
		return false;
	}
	s->flushing = r > 0 || s->pending.len > 0;
	return true;
}

/* The end of a piece: the source's COPY done, the destination's ended and counted. */
static bool
finish_piece(CopyStream *s, int64 *rows, char **error)
{
	const char *table = s->piece->table->qualified;
	PGresult   *res = remote_wait_result(s->src);
	bool		ok = remote_ok(res);

	if (!ok)
		*error = stream_source_error(s->src, res, s->piece->table);
	PQclear(res);
	while ((res = remote_wait_result(s->src)) != NULL)
		PQclear(res);
	if (!ok)
		return false;
	while (s->pending.len > 0)
	{
		if (!send_pending(s, error))
			return false;
		if (s->pending.len > 0)
			remote_wait_socket(s->dst, true, 1000);
	}
	while (PQputCopyEnd(s->dst, NULL) == 0)
		remote_wait_socket(s->dst, true, 1000);
	res = remote_wait_result(s->dst);
	ok = remote_ok(res);
	if (!ok)
		*error = psprintf("table %s: %s", table, remote_error(s->dst, res));
	else
		*rows += strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	while ((res = remote_wait_result(s->dst)) != NULL)
		PQclear(res);
	s->flushing = false;
	return ok;
}

/*
 * Moves what the source has sent of a stream's piece on to the
 * destination, without waiting for either.  Returns 1 if rows moved, 0 if
 * the stream waits (for the source to send, or, while s->flushing, for
 * the destination to take what it was sent), 2 when the piece is copied,
 * -1 on error.
 */
static int
pump_stream(CopyStream *s, int64 *rows, char **error)
{
	bool		moved = false;
	bool		drained = false;	/* the source's socket had nothing more */

	if (s->flushing)
	{
		if (!send_pending(s, error))
			return -1;
		if (s->flushing)
			return 0;
	}
	for (int round = 0; round < 1000; round++)
	{
		char	   *buf = NULL;
		int			n = PQgetCopyData(s->src, &buf, 1);

		if (n > 0)
		{
			appendBinaryStringInfo(&s->pending, buf, n);
			PQfreemem(buf);
			s->streamed += n;
			moved = true;
			drained = false;
			if (s->pending.len >= COPY_CHUNK)
			{
				if (!send_pending(s, error))
					return -1;
				if (s->flushing)
					return 1;
			}
			continue;
		}
		if (n == 0)
		{
			/* no whole row in libpq: read the socket once, then wait for it */
			if (drained)
				break;
			if (!PQconsumeInput(s->src))
			{
				*error = psprintf("table %s: %s", s->piece->table->qualified, remote_error(s->src, NULL));
				return -1;
			}
			drained = true;
			continue;
		}
		if (n == -1)
			return finish_piece(s, rows, error) ? 2 : -1;
		*error = psprintf("table %s: %s", s->piece->table->qualified, remote_error(s->src, NULL));
		return -1;
	}
	/* the source is slower than the destination: what was read goes on meanwhile */
	if (drained && !send_pending(s, error))
		return -1;
	return moved ? 1 : 0;
}

/*
 * Waits until a stream can move (its source has sent something, or its
 * destination can take more of what it holds), the latch is set, or
 * timeout_ms passed.
 */
static void
wait_streams(CopyStream *streams, int n, long timeout_ms)
{
#if PG_VERSION_NUM >= 170000
	WaitEventSet *set = CreateWaitEventSet(CurrentResourceOwner, n + 2);
#else
	WaitEventSet *set = CreateWaitEventSet(CurrentMemoryContext, n + 2);
#endif
	WaitEvent	event;

	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < n; i++)
	{
		CopyStream *s = &streams[i];

		if (s->piece == NULL)
			continue;
		/* the destination's socket readable too: libpq reads what it says as it sends */
		if (s->flushing)
			AddWaitEventToSet(set, WL_SOCKET_WRITEABLE | WL_SOCKET_READABLE, PQsocket(s->dst), NULL, NULL);
		else
			AddWaitEventToSet(set, WL_SOCKET_READABLE, PQsocket(s->src), NULL, NULL);
	}
	if (WaitEventSetWait(set, timeout_ms, &event, 1, PG_WAIT_EXTENSION) > 0 &&
		(event.events & WL_LATCH_SET))
		ResetLatch(MyLatch);
	FreeWaitEventSet(set);
	CHECK_FOR_INTERRUPTS();
}

static void
close_streams(CopyStream *streams, int n)
{
	for (int i = 0; i < n; i++)
	{
		if (streams[i].src)
			PQfinish(streams[i].src);
		if (streams[i].dst)
			PQfinish(streams[i].dst);
		streams[i].src = streams[i].dst = NULL;
	}
}

/*
 * Copies every table in the snapshot, n streams at a time, each taking the
 * largest piece left when it is free.  A table counts as copied once all
 * its pieces are.
 */
static StepResult
copy_tables(EngineJob *job, Endpoint *source, EngineDatabase *db, List *tables,
			const char *snapshot, int n, char **error)
{
	CopyStream *streams = palloc0(sizeof(CopyStream) * n);
	List	   *pieces;
	ListCell   *next;
	int			busy = 0;
	int64		done_bytes = 0;
	TimestampTz last_check = GetCurrentTimestamp();
	StepResult	result = STEP_DONE;
	char	   *lock_timeout = psprintf("%dms", engine_copy_lock_timeout_ms);

	for (int i = 0; i < n; i++)
	{
		CopyStream *s = &streams[i];

		initStringInfo(&s->pending);
		s->src = remote_connect(source, db->name, false, error);
		/*
		 * In the snapshot.  A range's COPY is a query: it reads its range
		 * alone (a TID Range Scan, whatever the source's settings say), with
		 * no parallel workers and no JIT compilation (from 11) to pay for.
		 * The rows' text is what the destination reads back as the same
		 * values whatever either server's settings, as pg_dump writes it:
		 * dates in ISO (not a DateStyle's day/month order the destination
		 * would read the other way), intervals in PostgreSQL's style, and
		 * floats with every digit (a source before 12, or one set to
		 * extra_float_digits = 0, rounds them to 15).  Row-level security
		 * off: a policy that would hide rows from the source's role (one
		 * made after the preflight) fails the copy, as it fails pg_dump,
		 * instead of copying some of the rows.  A lock waited for longer
		 * than dms_lifecycle.copy_lock_timeout fails the copy
		 * (stream_source_error): a DDL on the source that holds a lock the
		 * stream needs may be waiting for one the copy holds until it ends.
		 */
		if (s->src == NULL ||
			!remote_command(s->src, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", error) ||
			!remote_command(s->src, psprintf("SET TRANSACTION SNAPSHOT %s", quote_literal_cstr(snapshot)), error) ||
			!remote_command(s->src, psprintf("SELECT pg_catalog.set_config('DateStyle', 'ISO', false), "
											 "pg_catalog.set_config('IntervalStyle', 'postgres', false), "
											 "pg_catalog.set_config('extra_float_digits', '3', false), "
											 "pg_catalog.set_config('row_security', 'off', false), "
											 "pg_catalog.set_config('enable_tidscan', 'on', false), "
											 "pg_catalog.set_config('max_parallel_workers_per_gather', '0', false), "
											 "pg_catalog.set_config('lock_timeout', %s, false)%s",
											 quote_literal_cstr(lock_timeout),
											 PQserverVersion(s->src) >= 110000 ?
											 ", pg_catalog.set_config('jit', 'off', false)" : ""),
							error))
		{
			*error = psprintf("cannot open a copy stream on the source: %s", *error);
			close_streams(streams, n);
			return STEP_FAILED;
		}
		s->dst = remote_connect(endpoint_local(), db->name, false, error);
		if (s->dst != NULL)
		{
			int			size = COPY_SOCKET_BUFFER;

			/* best effort: the kernel caps it (net.core.wmem_max on Linux) */
			(void) setsockopt(PQsocket(s->dst), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		}
		if (s->dst == NULL ||
			!remote_command(s->dst, "SELECT pg_catalog.set_config('synchronous_commit', 'off', false), "
							"pg_catalog.set_config('DateStyle', 'ISO', false), "
							"pg_catalog.set_config('IntervalStyle', 'postgres', false), "
							"pg_catalog.set_config('session_replication_role', 'replica', false)", error))
		{
			*error = psprintf("cannot open a copy stream on the destination: %s", *error);
			close_streams(streams, n);
			return STEP_FAILED;
		}
	}
	if (!plan_pieces(job->id, db, streams, tables, n, lock_timeout, &pieces, error))
	{
		close_streams(streams, n);
		return STEP_FAILED;
	}
	next = list_head(pieces);

	while (next != NULL || busy > 0)
	{
		bool		moved = false;

		for (int i = 0; i < n && result == STEP_DONE; i++)
		{
			CopyStream *s = &streams[i];
			int			r;

			if (s->piece == NULL && next != NULL)
			{
				if (!start_stream(s, lfirst(next), error))
				{
					result = STEP_FAILED;
					break;
				}
				next = lnext(pieces, next);
				busy++;
			}
			if (s->piece == NULL)
				continue;
			r = pump_stream(s, &db->rows_copied, error);
			if (r < 0)
				result = STEP_FAILED;
			else if (r == 2)
			{
				done_bytes += s->piece->bytes;
				if (--s->piece->table->pieces_left == 0)
					db->tables_copied++;
				s->piece = NULL;
				busy--;
				moved = true;
				db->progress_dirty = true;
			}
			else if (r == 1)
				moved = true;
		}
		if (result != STEP_DONE)
			break;

		db->bytes_copied = done_bytes;
		for (int i = 0; i < n; i++)
			if (streams[i].piece)
				db->bytes_copied += Min(streams[i].streamed, streams[i].piece->bytes);

		if (TimestampDifferenceExceeds(last_check, GetCurrentTimestamp(), engine_naptime_ms))
		{
			last_check = GetCurrentTimestamp();
			engine_save_database(job->id, db);
			if (copy_should_stop(job))
			{
				result = STEP_INTERRUPTED;
				break;
			}
		}
		if (!moved && busy > 0)
			wait_streams(streams, n, engine_naptime_ms);
	}
	if (result == STEP_DONE)
		for (int i = 0; i < n; i++)
			remote_command(streams[i].src, "COMMIT", NULL);
	close_streams(streams, n);
	return result;
}

/* Closes the exporting connection: the snapshot goes (and a temporary slot with it). */
void
copy_release(EngineDatabase *db)
{
	if (db->exporter != NULL)
		PQfinish(db->exporter);
	db->exporter = NULL;
	db->snapshot = NULL;
	db->tables = NIL;
}

/*
 * Starting...: everything of a database before its rows: the destination
 * database, the publications, the slot and its snapshot (held open in
 * db->exporter until copy_data), the schema's pre-data section.
 */
StepResult
copy_prepare(EngineJob *job, Endpoint *source, EngineDatabase *db, char **error)
{
	PGconn	   *src;
	char	   *slot = engine_object_name(job->id, db->source_oid, NULL);
	char	   *file = dump_path(job->id, db->source_oid);
	char	   *output;
	PGresult   *res;
	bool		continuous = job->migration_type == MT_CONTINUOUS;
	MemoryContext old;

	db->state = DB_SCHEMA;
	db->tables_copied = 0;
	db->bytes_copied = 0;
	db->rows_copied = 0;
	database_error(db, NULL);
	engine_save_database(job->id, db);

	src = remote_connect(source, db->name, false, error);
	if (src == NULL)
	{
		*error = psprintf("database \"%s\": source \"%s\" (%s): cannot connect: %s",
						  db->name, source->server, source->where, *error);
		return STEP_FAILED;
	}
	if (!ensure_destination(job->id, src, db, error))
		goto fail;
	old = MemoryContextSwitchTo(TopMemoryContext);
	db->tables = read_tables(src, error);
	MemoryContextSwitchTo(old);
	if (*error)
		goto fail;
	db->tables_total = list_length(db->tables);
	db->bytes_total = 0;
	{
		ListCell   *lc;

		foreach(lc, db->tables)
			db->bytes_total += ((SourceTable *) lfirst(lc))->bytes;
	}
	engine_save_database(job->id, db);
	engine_directory();

	/* publications first: a slot made before its publication cannot decode it */
	if (continuous &&
		(!remote_command(src, psprintf("DROP PUBLICATION IF EXISTS %s, %s",
									   quote_identifier(slot),
									   quote_identifier(engine_object_name(job->id, db->source_oid, "ins"))), error) ||
		 !remote_command(src, publication_sql(slot, db->tables, true), error) ||
		 !remote_command(src, publication_sql(engine_object_name(job->id, db->source_oid, "ins"), db->tables, false), error)))
	{
		*error = psprintf("cannot publish the tables: %s", *error);
		goto fail;
	}

	db->exporter = remote_connect(source, db->name, true, error);
	if (db->exporter == NULL)
	{
		*error = psprintf("cannot open a replication connection: %s", *error);
		goto fail;
	}
	res = remote_exec(db->exporter, psprintf("CREATE_REPLICATION_SLOT %s %sLOGICAL pgoutput EXPORT_SNAPSHOT",
											 quote_identifier(slot), continuous ? "" : "TEMPORARY "));
	if (!remote_ok(res) || PQntuples(res) != 1)
	{
		*error = psprintf("cannot create the replication slot %s: %s", slot, remote_error(db->exporter, res));
		PQclear(res);
		goto fail;
	}
	db->snapshot = MemoryContextStrdup(TopMemoryContext, PQgetvalue(res, 0, 2));
	PQclear(res);

	/* the schema, read in the snapshot */
	{
		const char *argv[12];
		int			i = 0;

		argv[i++] = pg_program_path("pg_dump");
		argv[i++] = "--schema-only";
		argv[i++] = "--format=custom";
		argv[i++] = "--no-publications";
		argv[i++] = "--no-subscriptions";
		argv[i++] = psprintf("--snapshot=%s", db->snapshot);
		argv[i++] = psprintf("--file=%s", file);
		argv[i++] = psprintf("--dbname=%s", endpoint_conninfo(source, db->name, NULL));
		argv[i] = NULL;
		if (run_program(argv, source->password ? job_passfile_path(job->id) : NULL, &output) != 0)
		{
			*error = psprintf("pg_dump of the schema failed: %s", output);
			goto fail;
		}
	}
	if (!restore_section(db, file, "pre-data", 1, error))
		goto fail;
	PQfinish(src);
	return STEP_DONE;

fail:
	copy_release(db);
	PQfinish(src);
	*error = psprintf("database \"%s\": %s", db->name, *error);
	return STEP_FAILED;
}

/*
 * Running (Full dump): the rows, in the snapshot copy_prepare holds, then
 * the post-data section (indexes, constraints) built after them.
 */
StepResult
copy_data(EngineJob *job, Endpoint *source, EngineDatabase *db, char **error)
{
	StepResult	result;
	int			streams = streams_per_level[job->parallelism];

	db->state = DB_COPYING;
	engine_save_database(job->id, db);
	result = copy_tables(job, source, db, db->tables, db->snapshot, streams, error);
	/* the slot is busy while the exporting connection lives */
	copy_release(db);
	if (result != STEP_DONE)
	{
		if (result == STEP_FAILED)
			*error = psprintf("database \"%s\": %s", db->name, *error);
		return result;
	}
	db->state = DB_INDEXING;
	db->bytes_copied = db->bytes_total;
	engine_save_database(job->id, db);
	if (!restore_section(db, dump_path(job->id, db->source_oid), "post-data", streams, error))
	{
		*error = psprintf("database \"%s\": %s", db->name, *error);
		return STEP_FAILED;
	}
	unlink(dump_path(job->id, db->source_oid));
	return STEP_DONE;
}

/* Runs, on the destination, one statement per row of a query on the source. */
static bool
apply_each(PGconn *src, PGconn *dst, EngineDatabase *db, const char *query,
		   char *(*statement) (PGresult *res, int row), const char *what, char **error)
{
	PGresult   *res = remote_exec(src, query);
	bool		ok = remote_ok(res);

	if (!ok)
		*error = psprintf("database \"%s\": cannot read the %s: %s", db->name, what, remote_error(src, res));
	for (int i = 0; ok && i < PQntuples(res); i++)
	{
		char	   *sql = statement(res, i);

		if (!remote_command(dst, sql, error))
		{
			*error = psprintf("database \"%s\": %s: %s", db->name, sql, *error);
			ok = false;
		}
	}
	PQclear(res);
	return ok;
}

/* setval of a sequence (if the schema has it), at the source's last value, as called */
static char *
sequence_statement(PGresult *res, int row)
{
	char	   *sequence = psprintf("%s.%s", quote_identifier(PQgetvalue(res, row, 0)),
									quote_identifier(PQgetvalue(res, row, 1)));

	return psprintf("SELECT pg_catalog.setval(s, %s::bigint, true) FROM pg_catalog.to_regclass(%s) s WHERE s IS NOT NULL",
					quote_literal_cstr(PQgetvalue(res, row, 2)), quote_literal_cstr(sequence));
}

static char *
refresh_statement(PGresult *res, int row)
{
	return psprintf("REFRESH MATERIALIZED VIEW %s.%s", quote_identifier(PQgetvalue(res, row, 0)),
					quote_identifier(PQgetvalue(res, row, 1)));
}

/*
 * What a copy of the rows leaves out, done at the end of a one-time job and
 * at promotion: the sequences' values (not replicated: last_value, as
 * called), and the materialized views populated on the source, refreshed
 * from the migrated rows.
 */
bool
copy_finish(Endpoint *source, EngineDatabase *db, char **error)
{
	PGconn	   *src;
	PGconn	   *dst;
	bool		ok;

	if (!connect_pair(source, db->name, &src, &dst, error))
		return false;
	ok = apply_each(src, dst, db,
					"SELECT schemaname, sequencename, last_value::text FROM pg_catalog.pg_sequences "
					"WHERE last_value IS NOT NULL",
					sequence_statement, "sequences", error) &&
		apply_each(src, dst, db,
				   "SELECT schemaname, matviewname FROM pg_catalog.pg_matviews WHERE ispopulated ORDER BY 1, 2",
				   refresh_statement, "materialized views", error);
	PQfinish(src);
	PQfinish(dst);
	return ok;
}
