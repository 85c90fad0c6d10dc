/*
 * src/change.c: a job's creation, change and deletion: one write of its row each, through the executor.
 *
 * Every action and event is a change of one job's row: the row is found
 * through the primary key and locked as UPDATE locks it, then written
 * through the executor's single-row entry points (src/write.c) with the
 * request pushed, so that the guard (BEFORE trigger) applies the request's
 * edge and the history trigger (AFTER) records it and applies its
 * follow-up.  A direct UPDATE, INSERT or DELETE of the table meets the same
 * triggers on the same road; only the request is missing, and the guard
 * then names the edge from the change itself.
 *
 * The writes run as the caller: the function is the permission check, and
 * the executor's single-row road checks none.  Triggers a user added run as
 * they would for a direct write by the caller, never with more privilege.
 */
#include "postgres.h"

#include "access/table.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "job.h"
#include "write.h"

/*
 * Reads a job with a prepared read (PLAN_JOB_FETCH, or PLAN_JOB_LOCK, which
 * locks its row as UPDATE would), as the tables' owner; false if it does
 * not exist.  The caller's memory holds the row.
 */
bool
job_read(Catalog *catalog, int64 job_id, PlanId plan, bool read_only, JobRow *job)
{
	Datum		values[JOB_ROW_DATABASES];
	bool		nulls[JOB_ROW_DATABASES];

	if (!owner_read(catalog, plan, Int64GetDatum(job_id), read_only, JOB_ROW_DATABASES,
					values, nulls))
		return false;
	memset(job, 0, sizeof(*job));
	job->id = job_id;
	job->status = status_index(catalog, values[JOB_ROW_STATUS - 1]);
	job->phase = nulls[JOB_ROW_PHASE - 1] ? PHASE_NULL :
		phase_index(catalog, values[JOB_ROW_PHASE - 1]);
	job->migration_type = type_index(catalog, values[JOB_ROW_TYPE - 1]);
	job->error_message = values[JOB_ROW_ERROR - 1];
	job->error_null = nulls[JOB_ROW_ERROR - 1];
	job->databases = values[JOB_ROW_DATABASES - 1];
	job->databases_null = nulls[JOB_ROW_DATABASES - 1];
	return true;
}

/*
 * See src/engine.h.  Not read-only: the read takes a new snapshot, so that
 * after the row was locked it sees the version locked.
 */
char *
job_source_server(Catalog *catalog, int64 job_id, bool *found)
{
	Relation	rel;
	bool		has_column;
	Datum		value;
	bool		isnull;

	/* a database still at 1.0 has no such column: no job of it is engine-driven */
	rel = table_open(catalog->job_relid, AccessShareLock);
	has_column =
		table_layout(catalog, TABLE_JOB, rel)->attnum[JOB_SOURCE_SERVER] != InvalidAttrNumber;
	table_close(rel, AccessShareLock);
	if (!has_column)
	{
		JobRow		job;

		*found = job_read(catalog, job_id, PLAN_JOB_FETCH, false, &job);
		return NULL;
	}
	*found = owner_read(catalog, PLAN_JOB_SOURCE_SERVER, Int64GetDatum(job_id), false, 1,
						&value, &isnull);
	return *found && !isnull ? TextDatumGetCString(value) : NULL;
}

/* A change of a job from inside the triggers of a change of it not yet written. */
static void
refuse_nested_change(int64 job_id)
{
	if (request_in_flight(job_id))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("migration job " INT64_FORMAT " is being changed by the current command",
						job_id),
				 errdetail("A trigger changed the job while a change of it was being written."),
				 errhint("A trigger must not change the job whose change fired it.")));
}

/*
 * The state a job is in before its change: what the call returns if a
 * trigger of the user's skips the change.
 */
static void
request_result_from_found(Catalog *catalog, RowWrite *w, Request *request)
{
	bool		isnull;
	Datum		value;

	value = row_get(w->found, w->layout, JOB_STATUS, &isnull);
	request->result_status = isnull ? ST_NOT_STARTED : status_index(catalog, value);
	value = row_get(w->found, w->layout, JOB_PHASE, &isnull);
	request->result_phase = isnull ? PHASE_NULL : phase_index(catalog, value);
}

/*
 * The columns the guard may write for a request: the SET list of the UPDATE
 * it stands for (UPDATE OF column triggers read it).  An edge sets the state,
 * the error message and the timestamps (a restart also the parallelism); an
 * edit sets what it edits.
 */
static void
mark_request_columns(RowWrite *w, const Request *request)
{
	static const int edge_columns[] = {
		JOB_STATUS, JOB_PHASE, JOB_ERROR_MESSAGE, JOB_DUMP_PARALLELISM,
		JOB_PENDING_DUMP_PARALLELISM, JOB_UPDATED_AT, JOB_STATUS_CHANGED_AT
	};

	row_mark_set(w, JOB_UPDATED_AT);
	switch (request->edit)
	{
		case EDIT_DUMP_PARALLELISM:
			row_mark_set(w, JOB_DUMP_PARALLELISM);
			row_mark_set(w, JOB_PENDING_DUMP_PARALLELISM);
			break;
		case EDIT_ADD_DATABASE:
		case EDIT_REMOVE_DATABASE:
			row_mark_set(w, JOB_DATABASES);
			break;
		case EDIT_NONE:
			for (int i = 0; i < (int) lengthof(edge_columns); i++)
				row_mark_set(w, edge_columns[i]);
			break;
	}
}

/*
 * Writes a request's change of its job's row, an UPDATE or a DELETE.
 * Raises P0002 if the job does not exist.
 */
static void
job_write(Catalog *catalog, Request *request, CmdType command)
{
	refuse_nested_change(request->job_id);
	request_push(request);
	PG_TRY();
	{
		RowWrite	w;
		bool		update = command == CMD_UPDATE;

		row_write_begin(&w, catalog, TABLE_JOB, update ? "UPDATE" : "DELETE");
		if (!row_find_job(&w, request->job_id,
						  update ? LockTupleNoKeyExclusive : LockTupleExclusive))
			report_job_missing(request->job_id);
		request_result_from_found(catalog, &w, request);
		if (update)
		{
			row_from_found(&w);
			mark_request_columns(&w, request);
		}
		request_begin_write(request);
		if (update)
			row_update(&w);
		else
			row_delete(&w);
		if (request->stage < REQUEST_WRITTEN)
			request->stage = REQUEST_WRITTEN;
		row_write_end(&w);
	}
	PG_FINALLY();
	{
		request_pop(request);
	}
	PG_END_TRY();
}

/*
 * Applies a request to its job.  The request's stage says whether the
 * change was recorded (a BEFORE trigger of the user's may skip it), and
 * result_status and result_phase the job's state after the change and its
 * follow-up.
 */
void
job_change(Catalog *catalog, Request *request)
{
	job_write(catalog, request, CMD_UPDATE);
}

/* Deletes a job; false if a trigger of the user's skipped the delete. */
bool
job_delete(Catalog *catalog, Request *request)
{
	job_write(catalog, request, CMD_DELETE);
	return request->stage == REQUEST_RECORDED;
}

/*
 * Inserts a new job, "Not started", and returns its id; *created is false if
 * a trigger of the user's skipped the row.  The guard checks the name, the
 * database list and the servers, and sets the timestamps.
 */
Datum
job_create(Catalog *catalog, const NewJob *job, bool *created)
{
	volatile Datum id = (Datum) 0;
	Request		frame;

	request_init_actor(&frame);
	request_push(&frame);
	PG_TRY();
	{
		RowWrite	w;
		Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		bool		isnull;

		row_write_begin(&w, catalog, TABLE_JOB, "INSERT");
		row_new(&w);
		row_set(&w, JOB_NAME, job->name, false);
		row_set(&w, JOB_MIGRATION_TYPE, job->migration_type, false);
		row_set(&w, JOB_STATUS, ObjectIdGetDatum(catalog->status_oids[ST_NOT_STARTED]), false);
		row_set(&w, JOB_DATABASES, job->databases, job->databases_null);
		row_set(&w, JOB_DUMP_PARALLELISM, job->dump_parallelism, false);
		/* stored as given; the guard checks the servers as the caller */
		row_set(&w, JOB_SOURCE_SERVER, job->source_server, job->source_server_null);
		row_set(&w, JOB_DESTINATION_SERVER, job->destination_server,
				job->destination_server_null);
		row_set(&w, JOB_CREATED_AT, now, false);
		row_set(&w, JOB_UPDATED_AT, now, false);
		row_set(&w, JOB_STATUS_CHANGED_AT, now, false);
		*created = row_insert(&w);
		if (*created)
			id = row_get(w.row, w.layout, JOB_ID, &isnull);
		row_write_end(&w);
	}
	PG_FINALLY();
	{
		request_pop(&frame);
	}
	PG_END_TRY();
	return id;
}
