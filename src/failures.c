/*
 * src/failures.c: keeps dms_job_failure and its job consistent, in both directions.
 *
 * A failure row appearing (or failing again) is the event "failed" for its
 * job.  A job leaving "Failed" loses its failure rows; a database leaving the
 * migration loses its row; and a failed job whose last failed database left,
 * with no job-level error, recovers.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

#include "job.h"

PG_FUNCTION_INFO_V1(dms_failure_guard);
PG_FUNCTION_INFO_V1(dms_failure_removed);

/* Applies an event to a job and returns the job's new phase. */
static Datum
job_report_event(Catalog *catalog, Request *request)
{
	return job_change(catalog, request, Anum_job_phase);
}

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
	TupleDesc	desc;
	HeapTuple	newtuple;
	int64		job_id;
	char	   *database;
	char	   *message;
	JobRow		job;
	Request		request;
	OwnerSwitch sw;
	bool		isnull;
	Datum		phase;
	Datum		values[Natts_failure];
	bool		nulls[Natts_failure] = {false};
	bool		replace[Natts_failure] = {false};

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_failure_guard: not called by trigger manager");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "dms_failure_guard: must be fired before, for each row");

	catalog = catalog_for_relation(trigdata->tg_relation);
	desc = RelationGetDescr(trigdata->tg_relation);
	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? trigdata->tg_newtuple
		: trigdata->tg_trigtuple;

	for (int attnum = Anum_failure_job_id; attnum <= Anum_failure_error_message; attnum++)
		if (attnum != Anum_failure_phase && heap_attisnull(newtuple, attnum, desc))
			report_null_column(desc, attnum);
	job_id = DatumGetInt64(heap_getattr(newtuple, Anum_failure_job_id, desc, &isnull));
	database = TextDatumGetCString(heap_getattr(newtuple, Anum_failure_database_name, desc,
												&isnull));
	message = TextDatumGetCString(heap_getattr(newtuple, Anum_failure_error_message, desc,
											   &isnull));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldtuple = trigdata->tg_trigtuple;

		if (DatumGetInt64(heap_getattr(oldtuple, Anum_failure_job_id, desc, &isnull)) != job_id ||
			strcmp(TextDatumGetCString(heap_getattr(oldtuple, Anum_failure_database_name,
													desc, &isnull)), database) != 0)
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

	request_init(&request, EDGE_EVENT, EV_FAILED, job_id);
	request.actor = request_actor();
	request.message = message;
	request.database = database;

	SPI_connect();
	owner_switch_begin(catalog, &sw);
	if (!job_lock(catalog, job_id, &job))
		report_job_missing(job_id);
	if (!job.databases_null && !text_array_contains(job.databases, database))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration job " INT64_FORMAT " does not migrate database \"%s\"",
						job_id, database)));

	if (request_loading_rows(trigdata->tg_relation))
	{
		/* a failure row loaded by COPY FROM belongs to a job loaded as failed */
		if (job.status != ST_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("failure of database \"%s\" cannot be loaded for migration job " INT64_FORMAT " while it is %s",
							database, job_id, state_text(job.status, job.phase))));
		owner_switch_end(&sw);
		SPI_finish();
		return PointerGetDatum(newtuple);
	}

	phase = job_report_event(catalog, &request);
	owner_switch_end(&sw);
	SPI_finish();

	values[Anum_failure_phase - 1] = phase;
	replace[Anum_failure_phase - 1] = true;
	values[Anum_failure_failed_at - 1] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	replace[Anum_failure_failed_at - 1] = true;
	return PointerGetDatum(heap_modify_tuple(newtuple, desc, values, nulls, replace));
}

/*
 * dms_failure_removed: AFTER DELETE FOR EACH ROW on dms_job_failure.  When
 * the last failed database of a failed job has left the migration and the
 * job has no job-level error, the job recovers.
 */
Datum
dms_failure_removed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Catalog    *catalog;
	TupleDesc	desc;
	int64		job_id;
	char	   *database;
	JobRow		job;
	OwnerSwitch sw;
	Oid			actor = request_actor();
	bool		isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_failure_removed: not called by trigger manager");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		elog(ERROR, "dms_failure_removed: must be fired after delete");

	catalog = catalog_for_relation(trigdata->tg_relation);
	desc = RelationGetDescr(trigdata->tg_relation);
	job_id = DatumGetInt64(heap_getattr(trigdata->tg_trigtuple, Anum_failure_job_id, desc,
										&isnull));
	database = TextDatumGetCString(heap_getattr(trigdata->tg_trigtuple,
												Anum_failure_database_name, desc, &isnull));

	SPI_connect();
	owner_switch_begin(catalog, &sw);
	if (job_lock(catalog, job_id, &job) &&
		job.status == ST_FAILED && job.error_null && !job.databases_null &&
		!text_array_contains(job.databases, database))
	{
		Datum		id = Int64GetDatum(job_id);

		if (plan_execute(catalog, PLAN_FAILURE_ANY, &id, NULL, false) == 0)
		{
			Request		request;

			request_init(&request, EDGE_EVENT, EV_RECOVERED, job_id);
			request.actor = actor;
			job_report_event(catalog, &request);
		}
	}
	owner_switch_end(&sw);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * Called by the history trigger after every UPDATE of a job: a job that left
 * "Failed" has no failed databases, and a database that left the migration
 * has no failure row.
 */
void
failures_follow_job(Catalog *catalog, const JobRow *old, const JobRow *new)
{
	bool		left_failed = old->status == ST_FAILED && new->status != ST_FAILED;
	bool		databases_changed;
	OwnerSwitch sw;
	Request		frame;
	Datum		args[2];

	databases_changed = !new->databases_null &&
		(old->databases_null || !datumIsEqual(old->databases, new->databases, false, -1));
	if (!left_failed && !databases_changed)
		return;

	args[0] = Int64GetDatum(new->id);
	args[1] = new->databases;
	request_init_actor(&frame);
	request_push(&frame);
	PG_TRY();
	{
		SPI_connect();
		owner_switch_begin(catalog, &sw);
		plan_execute(catalog, left_failed ? PLAN_FAILURE_DELETE_ALL : PLAN_FAILURE_DELETE_GONE,
					 args, NULL, false);
		owner_switch_end(&sw);
		SPI_finish();
	}
	PG_FINALLY();
	{
		request_pop(&frame);
	}
	PG_END_TRY();
}
