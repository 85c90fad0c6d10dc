/*
 * src/engine/stream.c: the streaming of one database, by PostgreSQL's own
 * logical replication: a subscription in the destination database on the
 * slot the full dump created (no slot of its own, no copy of its own), and
 * taking all of it down again.
 */
#include "postgres.h"

#include <unistd.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "internal.h"

/*
 * The subscription's oid and database, from the shared catalog (InvalidOid
 * if none), and with applied, how far it has applied the source's WAL: its
 * replication origin's position, which moves at each applied commit (0 if
 * unknown).
 */
static Oid
subscription_oid(const char *name, char **database, uint64 *applied)
{
	Oid			oid = InvalidOid;
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(name);
	MemoryContext caller = CurrentMemoryContext;

	if (applied)
		*applied = 0;
	engine_begin();
	if (SPI_execute_with_args("SELECT s.oid, d.datname, "
							  "(SELECT pg_catalog.pg_wal_lsn_diff(o.remote_lsn, '0/0')::bigint "
							  "FROM pg_catalog.pg_replication_origin_status o WHERE o.external_id = 'pg_' || s.oid) "
							  "FROM pg_catalog.pg_subscription s "
							  "JOIN pg_catalog.pg_database d ON d.oid = s.subdbid WHERE s.subname = $1",
							  1, &argtype, &arg, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		bool		isnull;
		Datum		value;

		oid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (database)
			*database = MemoryContextStrdup(caller,
											SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2));
		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
		if (applied && !isnull)
			*applied = (uint64) DatumGetInt64(value);
	}
	engine_commit();
	return oid;
}

/*
 * Takes down a database's replication: the subscription (without touching
 * the source: its slot is dropped here, even if the source was unreachable
 * when it was made), the slot and the publications on the source, and the
 * dump files.  Each part is dropped if it exists, so this can be redone;
 * false when something could not be dropped (the source unreachable): the
 * caller keeps the database's row and tries again.
 */
bool
stream_take_down(int64 job_id, Endpoint *source, EngineDatabase *db)
{
	char	   *name;
	char	   *subdb = NULL;
	Oid			subid;
	char	   *error = NULL;
	PGconn	   *conn;
	bool		done = true;
	const char *const suffixes[] = {".dump", ".dump.list", ".dump.grants"};

	if (!OidIsValid(db->source_oid))
		return true;			/* nothing was made: the preflight gives the oid */
	name = engine_object_name(job_id, db->source_oid, NULL);
	subid = subscription_oid(name, &subdb, NULL);
	if (OidIsValid(subid))
	{
		conn = remote_connect(endpoint_local(), subdb, false, &error);
		if (conn != NULL)
		{
			const char *q = quote_identifier(name);

			remote_command(conn, psprintf("ALTER SUBSCRIPTION %s DISABLE", q), NULL);
			remote_command(conn, psprintf("ALTER SUBSCRIPTION %s SET (slot_name = NONE)", q), NULL);
			if (!remote_command(conn, psprintf("DROP SUBSCRIPTION %s", q), &error))
				done = false;
			PQfinish(conn);
		}
		else
			done = false;
		if (done)
			engine_forget_apply_errors(subid);
		else
			ereport(WARNING,
					(errmsg("dms_lifecycle: migration job " INT64_FORMAT ": could not drop subscription %s: %s",
							job_id, name, error)));
	}

	if (source == NULL)
		done = false;
	else
	{
		conn = remote_connect(source, db->name, false, &error);
		if (conn != NULL)
		{
			const char *values[1] = {name};
			bool		slot_gone = false;

			/* a walsender may still hold the slot for a moment after its subscription went */
			for (int tries = 0; tries < 100 && !slot_gone; tries++)
			{
				PGresult   *res = remote_exec_params(conn,
													 "SELECT active_pid IS NOT NULL, pg_catalog.pg_terminate_backend(active_pid) "
													 "FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
													 1, values);

				if (!remote_ok(res))
				{
					error = remote_error(conn, res);
					PQclear(res);
					break;
				}
				if (PQntuples(res) == 0)
					slot_gone = true;
				else if (PQgetvalue(res, 0, 0)[0] != 't')
				{
					PGresult   *drop = remote_exec_params(conn, "SELECT pg_catalog.pg_drop_replication_slot($1)", 1, values);

					if (!remote_ok(drop))
						error = remote_error(conn, drop);
					PQclear(drop);
				}
				else
				{
					pg_usleep(100 * 1000L);
					CHECK_FOR_INTERRUPTS();
				}
				PQclear(res);
			}
			if (!slot_gone ||
				!remote_command(conn, psprintf("DROP PUBLICATION IF EXISTS %s, %s",
											   quote_identifier(name),
											   quote_identifier(engine_object_name(job_id, db->source_oid, "ins"))),
								&error))
			{
				done = false;
				ereport(WARNING,
						(errmsg("dms_lifecycle: source \"%s\" (%s), database \"%s\": could not drop the slot or publications of migration job " INT64_FORMAT ": %s",
								source->server, source->where, db->name, job_id,
								error ? error : "the slot stayed active")));
			}
			PQfinish(conn);
		}
		else
		{
			done = false;
			ereport(WARNING,
					(errmsg("dms_lifecycle: source \"%s\" (%s), database \"%s\": cannot connect to drop the slot and publications of migration job " INT64_FORMAT ": %s",
							source->server, source->where, db->name, job_id, error),
					 errhint("The engine tries again; the slot keeps WAL on the source until it is dropped.")));
		}
	}
	for (int i = 0; i < (int) lengthof(suffixes); i++)
		unlink(psprintf("%s/dms_lifecycle/job_" INT64_FORMAT "_%u%s", DataDir, job_id,
						db->source_oid, suffixes[i]));
	return done;
}

/*
 * Returns a destination database to its state before the first start:
 * absent.  Only the database the engine created is dropped (by its oid:
 * not another one made since under its name); one that existed before the
 * job is never dropped, and false says so: its owner empties it.
 */
bool
stream_empty_destination(EngineDatabase *db, char **error)
{
	PGconn	   *conn = remote_connect(endpoint_local(), engine_database, false, error);
	const char *values[1] = {db->name};
	PGresult   *res;
	Oid			oid = InvalidOid;
	bool		ok = true;

	if (conn == NULL)
		return false;
	res = remote_exec_params(conn, "SELECT oid FROM pg_catalog.pg_database WHERE datname = $1", 1, values);
	if (remote_ok(res) && PQntuples(res) == 1)
		oid = (Oid) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (!OidIsValid(oid))
		;						/* nothing to empty */
	else if (db->created_database && oid == db->destination_oid)
		ok = remote_command(conn, psprintf("DROP DATABASE %s WITH (FORCE)", quote_identifier(db->name)), error);
	else
	{
		*error = psprintf("database \"%s\": the destination database existed before the job (or was made again since), and the engine drops only the one it created; drop its objects, or the database, then restart the job",
						  db->name);
		ok = false;
	}
	PQfinish(conn);
	return ok;
}

/*
 * The subscription that streams a copied database from its slot's
 * consistent point on.  Its connection string names the job's password
 * file, never the password.
 */
bool
stream_subscribe(int64 job_id, Endpoint *source, EngineDatabase *db, char **error)
{
	char	   *name = engine_object_name(job_id, db->source_oid, NULL);
	char	   *conninfo;
	PGconn	   *conn;
	char	   *literal;
	bool		ok;

	if (OidIsValid(subscription_oid(name, NULL, NULL)))
		return true;
	conn = remote_connect(endpoint_local(), db->name, false, error);
	if (conn == NULL)
		return false;
	conninfo = endpoint_conninfo(source, db->name, source->password ? job_passfile_path(job_id) : NULL);
	literal = PQescapeLiteral(conn, conninfo, strlen(conninfo));
	ok = remote_command(conn,
						psprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s, %s "
								 "WITH (create_slot = false, slot_name = %s, copy_data = false, enabled = true)",
								 quote_identifier(name), literal, quote_identifier(name),
								 quote_identifier(engine_object_name(job_id, db->source_oid, "ins")),
								 quote_literal_cstr(name)),
						error);
	PQfreemem(literal);
	PQfinish(conn);
	if (!ok)
		*error = psprintf("database \"%s\": cannot subscribe: %s", db->name, *error);
	return ok;
}

bool
stream_set_enabled(int64 job_id, EngineDatabase *db, bool enabled, char **error)
{
	char	   *name = engine_object_name(job_id, db->source_oid, NULL);
	char	   *subdb = NULL;
	PGconn	   *conn;
	bool		ok;
	char	   *ignored = NULL;

	if (error == NULL)
		error = &ignored;
	if (!OidIsValid(subscription_oid(name, &subdb, NULL)))
	{
		*error = psprintf("the subscription %s does not exist", name);
		return false;
	}
	conn = remote_connect(endpoint_local(), subdb, false, error);
	if (conn == NULL)
		return false;
	ok = remote_command(conn, psprintf("ALTER SUBSCRIPTION %s %s", quote_identifier(name),
									   enabled ? "ENABLE" : "DISABLE"), error);
	PQfinish(conn);
	return ok;
}

/* A worker that starts takes the apply errors already counted as known. */
void
stream_errors_known(int64 job_id, EngineDatabase *db)
{
	Oid			subid;
	char		message[1024];
	uint64		count;
	TimestampTz at;

	if (!OidIsValid(db->source_oid))
		return;
	subid = subscription_oid(engine_object_name(job_id, db->source_oid, NULL), NULL, NULL);
	if (OidIsValid(subid) && engine_apply_error(subid, &count, &at, message, sizeof(message)))
		db->errors_seen = count;
}

/* Whether the subscription's apply worker runs (pg_stat_subscription shows its process). */
bool
stream_worker_running(int64 job_id, EngineDatabase *db)
{
	Oid			argtype = TEXTOID;
	Datum		arg = CStringGetTextDatum(engine_object_name(job_id, db->source_oid, NULL));
	bool		running;

	engine_begin();
	running = SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_stat_subscription "
									"WHERE subname = $1 AND pid IS NOT NULL AND relid IS NULL",
									1, &argtype, &arg, NULL, true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1;
	engine_commit();
	return running;
}

/* One connection to the source per job for watching slots (they are cluster-wide). */
static PGconn *watcher = NULL;

static PGconn *
watch_connection(Endpoint *source, EngineDatabase *db, char **error)
{
	if (watcher != NULL && PQstatus(watcher) != CONNECTION_OK)
	{
		PQfinish(watcher);
		watcher = NULL;
	}
	if (watcher == NULL)
		watcher = remote_connect(source, db->name, false, error);
	return watcher;
}

/*
 * Looks at a streaming database: its last apply error (from the apply
 * worker, shared.c), its slot on the source (lost or missing means the
 * database failed), its lag (lag.c: the source's WAL position and clock,
 * and what the destination applied: the later of its origin's position and
 * what the slot confirmed), and the source's reachability.
 */
void
stream_observe(int64 job_id, Endpoint *source, EngineDatabase *db)
{
	char	   *name = engine_object_name(job_id, db->source_oid, NULL);
	uint64		applied;
	Oid			subid = subscription_oid(name, NULL, &applied);
	char		message[1024];
	uint64		count;
	TimestampTz at;
	char	   *error = NULL;
	PGconn	   *conn;
	const char *values[1] = {name};
	PGresult   *res;

	if (OidIsValid(subid) && engine_apply_error(subid, &count, &at, message, sizeof(message)) &&
		count != db->errors_seen)
	{
		db->errors_seen = count;
		db->last_error_at = at;
		database_error(db, message);
	}

	conn = watch_connection(source, db, &error);
	if (conn == NULL)
	{
		db->errors_seen++;
		db->last_error_at = GetCurrentTimestamp();
		database_error(db, psprintf("source \"%s\" (%s) cannot be reached: %s",
									source->server, source->where, error));
		return;
	}
	res = remote_exec_params(conn,
							 "SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0')::bigint, "
							 "pg_catalog.to_jsonb(s)->>'wal_status', "
							 "(SELECT extract(epoch FROM r.replay_lag) FROM pg_catalog.pg_stat_replication r WHERE r.pid = s.active_pid), "
							 "extract(epoch FROM pg_catalog.clock_timestamp()), "
							 "pg_catalog.pg_wal_lsn_diff(s.confirmed_flush_lsn, '0/0')::bigint "
							 "FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
							 1, values);
	if (!remote_ok(res))
	{
		PQfinish(watcher);
		watcher = NULL;
	}
	else if (PQntuples(res) == 0)
	{
		db->state = DB_FAILED;
		database_error(db, psprintf("database \"%s\": the replication slot %s no longer exists on the source; restart the job",
									db->name, name));
	}
	else if (!PQgetisnull(res, 0, 1) && strcmp(PQgetvalue(res, 0, 1), "lost") == 0)
	{
		db->state = DB_FAILED;
		database_error(db, psprintf("database \"%s\": PostgreSQL invalidated the replication slot %s on the source (max_slot_wal_keep_size); restart the job",
									db->name, name));
	}
	else
	{
		uint64		confirmed = PQgetisnull(res, 0, 4) ? 0 : strtoull(PQgetvalue(res, 0, 4), NULL, 10);

		lag_observe(db, strtoull(PQgetvalue(res, 0, 0), NULL, 10), strtod(PQgetvalue(res, 0, 3), NULL),
					Max(applied, confirmed),
					PQgetisnull(res, 0, 2) ? -1 : strtod(PQgetvalue(res, 0, 2), NULL));
	}
	PQclear(res);
}

/* Whether the slot has confirmed everything up to lsn. */
bool
stream_caught_up(int64 job_id, Endpoint *source, EngineDatabase *db, const char *lsn,
				 char **error)
{
	char	   *name = engine_object_name(job_id, db->source_oid, NULL);
	PGconn	   *conn = watch_connection(source, db, error);
	const char *values[2] = {name, lsn};
	PGresult   *res;
	bool		caught_up;

	if (conn == NULL)
		return false;
	res = remote_exec_params(conn,
							 "SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
							 2, values);
	caught_up = remote_ok(res) && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
	if (!remote_ok(res))
		*error = remote_error(conn, res);
	PQclear(res);
	return caught_up;
}
