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
 */
#include "postgres.h"

#include "utils/timestamp.h"

#include "job.h"
#include "write.h"

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
 * Applies a request to its job, as the owner of the tables.  Raises P0002 if
 * the job does not exist.  The request's result_status and result_phase
 * tell the job's state after the change and its follow-up.
 */
void
job_change(Catalog *catalog, Request *request)
{
	OwnerSwitch sw;

	request_push(request);		/* before the switch: the actor is the caller */
	owner_switch_begin(catalog, &sw);
	PG_TRY();
	{
		RowWrite	w;

		row_write_begin(&w, catalog, TABLE_JOB, "UPDATE");
		if (!row_find_job(&w, request->job_id, LockTupleNoKeyExclusive))
			report_job_missing(request->job_id);
		request_result_from_found(catalog, &w, request);
		row_from_found(&w);
		row_update(&w);
		row_write_end(&w);
	}
	PG_FINALLY();
	{
		request_pop(request);
	}
	PG_END_TRY();
	owner_switch_end(&sw);
}

/* Deletes a job; false if a trigger of the user's skipped the delete. */
bool
job_delete(Catalog *catalog, Request *request)
{
	OwnerSwitch sw;

	request_push(request);		/* before the switch: the actor is the caller */
	owner_switch_begin(catalog, &sw);
	PG_TRY();
	{
		RowWrite	w;

		row_write_begin(&w, catalog, TABLE_JOB, "DELETE");
		if (!row_find_job(&w, request->job_id, LockTupleExclusive))
			report_job_missing(request->job_id);
		row_delete(&w);
		row_write_end(&w);
	}
	PG_FINALLY();
	{
		request_pop(request);
	}
	PG_END_TRY();
	owner_switch_end(&sw);
	return request->recorded;
}

/*
 * Inserts a new job, "Not started", and returns its id; *created is false if
 * a trigger of the user's skipped the row.  The guard checks the name and
 * the database list, and sets the timestamps.
 */
Datum
job_create(Catalog *catalog, Datum name, Datum migration_type, Datum databases,
		   bool databases_null, Datum dump_parallelism, bool *created)
{
	volatile Datum id = (Datum) 0;
	Request		frame;
	OwnerSwitch sw;

	request_init_actor(&frame);
	request_push(&frame);
	owner_switch_begin(catalog, &sw);
	PG_TRY();
	{
		RowWrite	w;
		Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		bool		isnull;

		row_write_begin(&w, catalog, TABLE_JOB, "INSERT");
		row_new(&w);
		row_set(&w, JOB_NAME, name, false);
		row_set(&w, JOB_MIGRATION_TYPE, migration_type, false);
		row_set(&w, JOB_STATUS, ObjectIdGetDatum(catalog->status_oids[ST_NOT_STARTED]), false);
		row_set(&w, JOB_DATABASES, databases, databases_null);
		row_set(&w, JOB_DUMP_PARALLELISM, dump_parallelism, false);
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
	owner_switch_end(&sw);
	return id;
}
