/*
 * src/failures.c: keeps dms_job_failure and its job consistent, in both directions.
 *
 * A failure row appearing (or failing again) is the event "failed" for its
 * job.  The other direction is a change's follow-up: a job leaving "Failed"
 * loses its failure rows; a database leaving the migration loses its row;
 * and a failed job whose last failed database left, with no job-level
 * error, recovers.  The history trigger applies that follow-up after the
 * change, so data flows one way: from a job's change to its failure rows.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

#include "job.h"
#include "write.h"

PG_FUNCTION_INFO_V1(dms_failure_guard);
PG_FUNCTION_INFO_V1(dms_failure_removed);

/* Locks a job and reads it; false if it does not exist.  The caller is connected to SPI. */
static bool
job_lock(Catalog *catalog, int64 job_id, JobRow *job)
{
	Datum		id = Int64GetDatum(job_id);
	HeapTuple	tuple;
	TupleDesc	desc;
	bool		isnull;

	if (plan_execute(catalog, PLAN_JOB_LOCK, &id, NULL, false) == 0)
		return false;
	tuple = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	job->id = job_id;
	job->status = status_index(catalog, SPI_getbinval(tuple, desc, JOB_ROW_STATUS, &isnull));
	job->phase = PHASE_NULL;
	{
		Datum		phase = SPI_getbinval(tuple, desc, JOB_ROW_PHASE, &isnull);

		if (!isnull)
			job->phase = phase_index(catalog, phase);
	}
	job->migration_type = type_index(catalog, SPI_getbinval(tuple, desc, JOB_ROW_TYPE, &isnull));
	job->error_message = SPI_getbinval(tuple, desc, JOB_ROW_ERROR, &job->error_null);
	job->databases = SPI_getbinval(tuple, desc, JOB_ROW_DATABASES, &job->databases_null);
	return true;
}

/*
 * dms_failure_guard: BEFORE INSERT OR UPDATE FOR EACH ROW on dms_job_failure.
 * A database that fails puts its job into "Failed" (or, if it is failed
 * already, records another failure); the row takes the phase it failed in.
 */
Datum
dms_failure_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Catalog    *catalog;
	Relation	rel;
	TupleDesc	desc;
	const TableLayout *layout;
	HeapTuple	newtuple;
	int64		job_id;
	char	   *database;
	char	   *message;
	JobRow		job;
	Request		request;
	OwnerSwitch sw;
	bool		isnull;
	int			attnums[2];
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_failure_guard: not called by trigger manager");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "dms_failure_guard: must be fired before, for each row");

	rel = trigdata->tg_relation;
	catalog = catalog_for_relation(rel);
	desc = RelationGetDescr(rel);
	layout = table_layout(catalog, TABLE_FAILURE, rel);
	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple
		: trigdata->tg_trigtuple;

	for (int c = FAILURE_JOB_ID; c <= FAILURE_ERROR_MESSAGE; c++)
		if (c != FAILURE_PHASE && heap_attisnull(newtuple, layout->attnum[c], desc))
			report_null_column(rel, layout->attnum[c]);
	job_id = DatumGetInt64(heap_getattr(newtuple, layout->attnum[FAILURE_JOB_ID], desc, &isnull));
	database = TextDatumGetCString(heap_getattr(newtuple, layout->attnum[FAILURE_DATABASE_NAME],
												desc, &isnull));
	message = TextDatumGetCString(heap_getattr(newtuple, layout->attnum[FAILURE_ERROR_MESSAGE],
											   desc, &isnull));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldtuple = trigdata->tg_trigtuple;
		int64		old_job = DatumGetInt64(heap_getattr(oldtuple, layout->attnum[FAILURE_JOB_ID],
														 desc, &isnull));
		char	   *old_database = TextDatumGetCString(heap_getattr(oldtuple,
																	layout->attnum[FAILURE_DATABASE_NAME],
																	desc, &isnull));

		if (old_job != job_id || strcmp(old_database, database) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("a failure row cannot move to another job or database"),
					 errhint("Delete it and report the failure of the other database.")));
	}
	validate_name_text(database, "database name");
	if (message_is_blank(message))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the error message of failed database \"%s\" must not be blank", database)));

	SPI_connect();
	owner_switch_begin(catalog, &sw);
	if (!job_lock(catalog, job_id, &job))
		report_job_missing(job_id);
	if (!job.databases_null && !text_array_contains(job.databases, database))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration job " INT64_FORMAT " does not migrate database \"%s\"",
						job_id, database)));
	owner_switch_end(&sw);
	SPI_finish();

	if (request_loading_rows(rel))
	{
		/* a failure row loaded by COPY FROM belongs to a job loaded as failed */
		if (job.status != ST_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("failure of database \"%s\" cannot be loaded for migration job " INT64_FORMAT " while it is %s",
							database, job_id, state_text(job.status, job.phase))));
		return PointerGetDatum(newtuple);
	}

	request_init(&request, EDGE_EVENT, EV_FAILED, job_id);
	request.actor = request_actor();
	request.message = message;
	request.database = database;
	job_change(catalog, &request);
	if (request.stage != REQUEST_RECORDED)
		return PointerGetDatum(NULL);	/* a trigger of the user's kept the job as it was */

	attnums[0] = layout->attnum[FAILURE_PHASE];
	values[0] = ObjectIdGetDatum(catalog->phase_oids[request.result_phase]);
	attnums[1] = layout->attnum[FAILURE_FAILED_AT];
	values[1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	return PointerGetDatum(heap_modify_tuple_by_cols(newtuple, desc, 2, attnums, values, nulls));
}

/*
 * dms_failure_removed: the AFTER DELETE trigger of dms_job_failure in
 * databases still at version 1.0.  From 1.1 the recovery it applied is the
 * follow-up of the job's change (failures_follow_job), and it does nothing.
 */
Datum
dms_failure_removed(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_failure_removed: not called by trigger manager");
	return PointerGetDatum(NULL);
}

/*
 * Writes a database's failure through the executor: a new failure row, or a
 * new message on its row.  The row's BEFORE trigger (above) fails the job.
 */
void
failure_record(Catalog *catalog, int64 job_id, const char *database, const char *message)
{
	RowWrite	w;
	ItemPointerData *tids;
	bool		found;

	row_write_begin(&w, catalog, TABLE_FAILURE, "INSERT");
	found = row_find_failures(&w, job_id, database, &tids) > 0 &&
		row_lock(&w, &tids[0], LockTupleNoKeyExclusive);
	if (found)
	{
		row_from_found(&w);
		row_set(&w, FAILURE_ERROR_MESSAGE, CStringGetTextDatum(message), false);
		row_update(&w);
	}
	else
	{
		row_new(&w);
		row_set(&w, FAILURE_JOB_ID, Int64GetDatum(job_id), false);
		row_set(&w, FAILURE_DATABASE_NAME, CStringGetTextDatum(database), false);
		row_set(&w, FAILURE_ERROR_MESSAGE, CStringGetTextDatum(message), false);
		row_set(&w, FAILURE_PHASE, (Datum) 0, true);	/* the trigger sets it */
		row_set(&w, FAILURE_FAILED_AT,
				TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
		row_insert(&w);
	}
	row_write_end(&w);
}

/*
 * The follow-up of a change of a job, for its failure rows: a job that left
 * "Failed" has no failed databases, and a database that left the migration
 * has no failure row.  Returns true if the job must then recover: it is
 * failed with no job-level error, and its last failed database just left.
 */
bool
failures_follow_job(Catalog *catalog, const JobRow *old, const JobRow *new)
{
	bool		left_failed = old->status == ST_FAILED && new->status != ST_FAILED;
	bool		databases_changed;
	int			removed = 0,
				kept = 0;
	RowWrite	w;
	ItemPointerData *tids;
	int			n;

	databases_changed = !new->databases_null &&
		(old->databases_null || !datumIsEqual(old->databases, new->databases, false, -1));
	if (!left_failed && !databases_changed)
		return false;

	row_write_begin(&w, catalog, TABLE_FAILURE, "DELETE");
	n = row_find_failures(&w, new->id, NULL, &tids);
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		char	   *database;

		if (!row_lock(&w, &tids[i], LockTupleExclusive))
			continue;			/* gone meanwhile */
		database = TextDatumGetCString(row_get(w.found, w.layout, FAILURE_DATABASE_NAME,
											   &isnull));
		if (!left_failed && text_array_contains(new->databases, database))
		{
			kept++;
			continue;
		}
		row_delete(&w);
		removed++;
	}
	row_write_end(&w);

	return !left_failed && removed > 0 && kept == 0 &&
		new->status == ST_FAILED && new->error_null;
}
