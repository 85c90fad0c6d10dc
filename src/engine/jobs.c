/*
 * src/engine/jobs.c: what a job worker reads and writes in the extension's
 * database: the job as dms_job says it now, the engine's own rows
 * (dms_job_database), and the events it reports through dms_report, as any
 * engine would.  Every access is SQL through SPI, in short transactions.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"

#include "internal.h"
#include "lifecycle.h"

const char *const database_state_names[N_DB_STATE] = {
	"preflight", "schema", "copying", "indexing", "streaming", "stopped", "failed",
	"promoting", "done"
};

static int
name_index(const char *const *names, int n, const char *value)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], value) == 0)
			return i;
	elog(ERROR, "dms_lifecycle engine: unknown value \"%s\"", value);
	return -1;
}

/* the caller's memory context, which a commit would leave for TopMemoryContext */
static MemoryContext caller_context = NULL;

void
engine_begin(void)
{
	caller_context = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
}

void
engine_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(caller_context);
}

/* The extension's schema, quoted; within a transaction with SPI. */
char *
engine_schema(void)
{
	static char *schema = NULL;

	if (schema == NULL)
	{
		char	   *name;

		if (SPI_execute("SELECT n.nspname FROM pg_catalog.pg_extension e "
						"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
						"WHERE e.extname = 'dms_lifecycle'", true, 1) != SPI_OK_SELECT ||
			SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("extension \"dms_lifecycle\" is not installed in database \"%s\"",
							engine_database)));
		name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		schema = MemoryContextStrdup(TopMemoryContext, quote_identifier(name));
	}
	return schema;
}

/* A column's text, in the caller's context (SPI's own is gone at commit). */
static char *
column_text(int row, int col)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(caller_context, v) : NULL;
}

/* Reads the job, in the caller's memory context; job->exists is false when it was deleted. */
bool
engine_read_job(int64 job_id, EngineJob *job)
{
	StringInfoData sql;
	Datum		arg = Int64GetDatum(job_id);
	Oid			argtype = INT8OID;

	memset(job, 0, sizeof(*job));
	job->id = job_id;
	engine_begin();
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT name, status::text, phase::text, migration_type::text, "
					 "dump_parallelism::text, databases, source_server "
					 "FROM %s.dms_job WHERE id = $1", engine_schema());
	if (SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "dms_lifecycle engine: could not read migration job " INT64_FORMAT, job_id);
	if (SPI_processed == 1)
	{
		char	   *phase = column_text(0, 3);
		bool		isnull;
		Datum		dbs;

		job->exists = true;
		job->name = column_text(0, 1);
		job->status = name_index(status_names, N_STATUS, column_text(0, 2));
		job->phase = phase ? name_index(phase_names, N_PHASE, phase) : PHASE_NULL;
		job->migration_type = name_index(migration_type_names, N_MIGRATION_TYPE, column_text(0, 4));
		job->parallelism = name_index(dump_parallelism_names, N_DUMP_PARALLELISM, column_text(0, 5));
		job->source_server = column_text(0, 7);
		dbs = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6, &isnull);
		job->all_databases = isnull;
		if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n;

			deconstruct_array(DatumGetArrayTypeP(dbs), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, &nulls, &n);
			for (int i = 0; i < n; i++)
				if (!nulls[i])
				{
					MemoryContext old = MemoryContextSwitchTo(caller_context);

					job->databases = lappend(job->databases, TextDatumGetCString(elems[i]));
					MemoryContextSwitchTo(old);
				}
		}
	}
	engine_commit();
	return job->exists;
}

/* The engine's rows for a job, as EngineDatabase in TopMemoryContext. */
List *
engine_read_databases(int64 job_id)
{
	StringInfoData sql;
	Datum		arg = Int64GetDatum(job_id);
	Oid			argtype = INT8OID;
	List	   *dbs = NIL;

	engine_begin();
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT database_name, state::text, created_database, source_oid, "
					 "tables_total, tables_copied, bytes_total, bytes_copied, rows_copied, last_error, source_server, "
					 "destination_oid "
					 "FROM %s.dms_job_database WHERE job_id = $1 ORDER BY database_name",
					 engine_schema());
	if (SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "dms_lifecycle engine: could not read the databases of migration job " INT64_FORMAT,
			 job_id);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		EngineDatabase *db = palloc0(sizeof(EngineDatabase));
		char	   *v;

		MemoryContextSwitchTo(old);
		db->name = MemoryContextStrdup(TopMemoryContext, column_text(i, 1));
		db->state = name_index(database_state_names, N_DB_STATE, column_text(i, 2));
		db->created_database = strcmp(column_text(i, 3), "t") == 0;
		v = column_text(i, 4);
		db->source_oid = v ? (Oid) strtoul(v, NULL, 10) : InvalidOid;
		v = column_text(i, 5);
		db->tables_total = v ? atoi(v) : 0;
		db->tables_copied = atoi(column_text(i, 6));
		v = column_text(i, 7);
		db->bytes_total = v ? strtoll(v, NULL, 10) : 0;
		db->bytes_copied = strtoll(column_text(i, 8), NULL, 10);
		db->rows_copied = strtoll(column_text(i, 9), NULL, 10);
		v = column_text(i, 10);
		db->last_error = v ? MemoryContextStrdup(TopMemoryContext, v) : NULL;
		db->source_server = MemoryContextStrdup(TopMemoryContext, column_text(i, 11));
		v = column_text(i, 12);
		db->destination_oid = v ? (Oid) strtoul(v, NULL, 10) : InvalidOid;
		db->lag_bytes = -1;
		db->lag_seconds = -1;
		old = MemoryContextSwitchTo(TopMemoryContext);
		dbs = lappend(dbs, db);
		MemoryContextSwitchTo(old);
	}
	engine_commit();
	return dbs;
}

/* Writes the engine's row for a database (state and progress). */
void
engine_save_database(int64 job_id, EngineDatabase *db)
{
	StringInfoData sql;
	Oid			types[14] = {INT8OID, TEXTOID, TEXTOID, BOOLOID, OIDOID, INT4OID, INT4OID,
	INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID, OIDOID};
	Datum		values[14];
	char		nulls[15] = "              ";
	char	   *schema;

	engine_begin();
	schema = engine_schema();
	values[0] = Int64GetDatum(job_id);
	values[1] = CStringGetTextDatum(db->name);
	values[2] = CStringGetTextDatum(database_state_names[db->state]);
	values[3] = BoolGetDatum(db->created_database);
	values[4] = ObjectIdGetDatum(db->source_oid);
	if (!OidIsValid(db->source_oid))
		nulls[4] = 'n';
	values[5] = Int32GetDatum(db->tables_total);
	values[6] = Int32GetDatum(db->tables_copied);
	values[7] = Int64GetDatum(db->bytes_total);
	values[8] = Int64GetDatum(db->bytes_copied);
	values[9] = Int64GetDatum(db->rows_copied);
	values[10] = Int64GetDatum(db->lag_bytes);
	if (db->lag_bytes < 0)
		nulls[10] = 'n';
	values[11] = db->last_error ? CStringGetTextDatum(db->last_error) : (Datum) 0;
	if (db->last_error == NULL)
		nulls[11] = 'n';
	values[12] = CStringGetTextDatum(db->source_server);
	values[13] = ObjectIdGetDatum(db->destination_oid);
	if (!OidIsValid(db->destination_oid))
		nulls[13] = 'n';
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s.dms_job_database AS d (job_id, database_name, state, "
					 "created_database, source_oid, tables_total, tables_copied, bytes_total, "
					 "bytes_copied, rows_copied, lag_bytes, lag, last_error, source_server, destination_oid, observed_at) "
					 "VALUES ($1, $2, $3::%s.dms_database_state, $4, $5, $6, $7, $8, $9, $10, $11, "
					 "%s, $12, $13, $14, now()) "
					 "ON CONFLICT (job_id, database_name) DO UPDATE SET state = excluded.state, "
					 "created_database = excluded.created_database, destination_oid = excluded.destination_oid, "
					 "source_oid = excluded.source_oid, "
					 "tables_total = excluded.tables_total, tables_copied = excluded.tables_copied, "
					 "bytes_total = excluded.bytes_total, bytes_copied = excluded.bytes_copied, "
					 "rows_copied = excluded.rows_copied, lag_bytes = excluded.lag_bytes, "
					 "lag = excluded.lag, last_error = excluded.last_error, observed_at = now()",
					 schema, schema,
					 db->lag_seconds >= 0 ? psprintf("make_interval(secs => %.3f)", db->lag_seconds)
					 : "NULL");
	if (SPI_execute_with_args(sql.data, 14, types, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "dms_lifecycle engine: could not record database \"%s\"", db->name);
	engine_commit();
	db->progress_dirty = false;
}

void
engine_forget_database(int64 job_id, const char *name)
{
	StringInfoData sql;
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	engine_begin();
	values[0] = Int64GetDatum(job_id);
	values[1] = CStringGetTextDatum(name);
	initStringInfo(&sql);
	appendStringInfo(&sql, "DELETE FROM %s.dms_job_database WHERE job_id = $1 AND database_name = $2",
					 engine_schema());
	SPI_execute_with_args(sql.data, 2, types, values, NULL, false, 0);
	engine_commit();
}

/*
 * The databases other jobs' engine rows hold (preflight: no two jobs migrate
 * one): pairs of list cells, the database's name then "job N ('name')".
 */
List *
engine_databases_of_other_jobs(int64 job_id)
{
	StringInfoData sql;
	Datum		arg = Int64GetDatum(job_id);
	Oid			argtype = INT8OID;
	List	   *names = NIL;

	engine_begin();
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT d.database_name, pg_catalog.format('job %%s (%%s)', d.job_id, "
					 "coalesce(pg_catalog.quote_literal(j.name), 'deleted')) "
					 "FROM %s.dms_job_database d LEFT JOIN %s.dms_job j ON j.id = d.job_id "
					 "WHERE d.job_id <> $1 AND d.state <> 'done'", engine_schema(), engine_schema());
	SPI_execute_with_args(sql.data, 1, &argtype, &arg, NULL, true, 0);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(caller_context);

		names = lappend(names, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1)));
		names = lappend(names, pstrdup(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2)));
		MemoryContextSwitchTo(old);
	}
	engine_commit();
	return names;
}

/*
 * Reports an event through dms_report, as any engine does.  False when the
 * lifecycle refuses it (an operator changed the job meanwhile: the worker
 * reads the job again and goes on from its new status).
 */
bool
engine_report(int64 job_id, const char *event, const char *message, const char *database)
{
	StringInfoData sql;
	Oid			types[4] = {INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[5] = "    ";
	volatile bool ok = true;
	MemoryContext cxt;
	ResourceOwner owner;
	char	   *schema;

	engine_begin();
	/* the transaction's, which the subtransaction below returns to */
	cxt = CurrentMemoryContext;
	owner = CurrentResourceOwner;
	schema = engine_schema();
	values[0] = Int64GetDatum(job_id);
	values[1] = CStringGetTextDatum(event);
	values[2] = message ? CStringGetTextDatum(message) : (Datum) 0;
	nulls[2] = message ? ' ' : 'n';
	values[3] = database ? CStringGetTextDatum(database) : (Datum) 0;
	nulls[3] = database ? ' ' : 'n';
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s.dms_report($1, $2::%s.dms_event, $3, $4)", schema, schema);

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		SPI_execute_with_args(sql.data, 4, types, values, nulls, false, 0);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE &&
			edata->sqlerrcode != ERRCODE_NO_DATA_FOUND)
			ReThrowError(edata);
		ereport(LOG,
				(errmsg("dms_lifecycle: migration job " INT64_FORMAT " did not take the event \"%s\": %s",
						job_id, event, edata->message)));
		ok = false;
	}
	PG_END_TRY();
	engine_commit();
	return ok;
}

/* dms_<job>_<source database oid>[_suffix]: what the engine makes is named so. */
char *
engine_object_name(int64 job_id, Oid source_oid, const char *suffix)
{
	return psprintf("dms_" INT64_FORMAT "_%u%s%s", job_id, source_oid,
					suffix ? "_" : "", suffix ? suffix : "");
}
