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
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

#include "job.h"
#include "write.h"

PG_FUNCTION_INFO_V1(dms_failure_guard);
PG_FUNCTION_INFO_V1(dms_failure_record);
PG_FUNCTION_INFO_V1(dms_failure_removed);

/* A failure row as the triggers read it. */
typedef struct FailureRow
{
	int64		job_id;
	char	   *database;
	char	   *message;
	int			phase;			/* PHASE_NULL if NULL */
} FailureRow;

/* Reads a failure row by name, and refuses what no failure row may hold. */
static void
failure_row_read(Catalog *catalog, Relation rel, HeapTuple tuple, FailureRow *row)
{
	const TableLayout *layout = table_layout(catalog, TABLE_FAILURE, rel);
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;
	Datum		phase;

	for (int c = FAILURE_JOB_ID; c <= FAILURE_ERROR_MESSAGE; c++)
		if (c != FAILURE_PHASE && heap_attisnull(tuple, layout->attnum[c], desc))
			report_null_column(rel, layout->attnum[c]);
	row->job_id = DatumGetInt64(heap_getattr(tuple, layout->attnum[FAILURE_JOB_ID], desc, &isnull));
	row->database = TextDatumGetCString(heap_getattr(tuple, layout->attnum[FAILURE_DATABASE_NAME],
													 desc, &isnull));
	row->message = TextDatumGetCString(heap_getattr(tuple, layout->attnum[FAILURE_ERROR_MESSAGE],
													desc, &isnull));
	phase = heap_getattr(tuple, layout->attnum[FAILURE_PHASE], desc, &isnull);
	row->phase = isnull ? PHASE_NULL : phase_index(catalog, phase);

	validate_name_text(row->database, "database name");
	if (message_is_blank(row->message))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the error message of failed database \"%s\" must not be blank",
						row->database)));
}

/*
 * The row a write of dms_job_failure writes, read; an UPDATE must keep its
 * job and database (it would be another failure).
 */
static HeapTuple
failure_row_of_write(Catalog *catalog, TriggerData *trigdata, FailureRow *row)
{
	HeapTuple	newtuple = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;

	failure_row_read(catalog, trigdata->tg_relation, newtuple, row);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		FailureRow	old;

		failure_row_read(catalog, trigdata->tg_relation, trigdata->tg_trigtuple, &old);
		if (old.job_id != row->job_id || strcmp(old.database, row->database) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("a failure row cannot move to another job or database"),
					 errhint("Delete it and report the failure of the other database.")));
	}
	return newtuple;
}

/*
 * The trigger that fails the job once its failure row is written (1.1): the
 * first, in firing order, that runs the extension's dms_failure_record,
 * fires now for every row (enabled for this session's replication role, as
 * trigger.c decides; no WHEN clause, no column list, not deferred), AFTER
 * INSERT OR UPDATE FOR EACH ROW.  InvalidOid if there is none: a database
 * still at 1.0, or the trigger disabled or changed; the BEFORE trigger then
 * fails the job itself, as 1.0 did, and no other trigger does it again.
 */
static Oid
failure_record_trigger(Catalog *catalog, Relation rel)
{
	TriggerDesc *desc = rel->trigdesc;

	for (int i = 0; desc != NULL && i < desc->numtriggers; i++)
	{
		Trigger    *trigger = &desc->triggers[i];
		char	   *function;
		bool		fires = trigger->tgenabled == TRIGGER_FIRES_ALWAYS ||
			(SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA ?
			 trigger->tgenabled == TRIGGER_FIRES_ON_REPLICA :
			 trigger->tgenabled == TRIGGER_FIRES_ON_ORIGIN);

		if (!fires || trigger->tgqual != NULL || trigger->tgnattr != 0 ||
			trigger->tgdeferrable || !TRIGGER_FOR_ROW(trigger->tgtype) ||
			!TRIGGER_FOR_AFTER(trigger->tgtype) || !TRIGGER_FOR_INSERT(trigger->tgtype) ||
			!TRIGGER_FOR_UPDATE(trigger->tgtype) ||
			get_func_namespace(trigger->tgfoid) != catalog->namespace)
			continue;
		function = get_func_name(trigger->tgfoid);
		if (function != NULL && strcmp(function, "dms_failure_record") == 0)
			return trigger->tgoid;
	}
	return InvalidOid;
}

/*
 * The failure row the extension itself is writing (failure_record), to tell
 * its own write from a user's: a write of the row by the extension is a
 * failure even with the same message (the database failed again).  Kept on
 * the C stack of failure_record, innermost first.
 */
typedef struct FailureWrite
{
	ItemPointerData row;		/* the row version it updates */
	int			trigger_depth;	/* its triggers fire one level below */
	struct FailureWrite *outer;
} FailureWrite;

static FailureWrite *failure_write = NULL;

/*
 * Is this write of a failure row a failure of its database?  An INSERT is;
 * so is the extension's own write, and an UPDATE that changes the message.
 * An UPDATE that changes only a user's own column is not.
 */
static bool
failure_is_event(TriggerData *trigdata, const FailureRow *row, Catalog *catalog)
{
	FailureRow	old;

	if (!TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return true;
	if (failure_write != NULL &&
		ItemPointerEquals(&failure_write->row, &trigdata->tg_trigtuple->t_self) &&
		trigger_depth() == failure_write->trigger_depth + 1)
		return true;
	failure_row_read(catalog, trigdata->tg_relation, trigdata->tg_trigtuple, &old);
	return strcmp(old.message, row->message) != 0;
}

/*
 * A write of a failure row that is no failure keeps the columns the
 * triggers own: the phase the job failed in, and when.
 */
static HeapTuple
failure_keep_owned_columns(Catalog *catalog, Relation rel, HeapTuple oldtuple,
						   HeapTuple newtuple)
{
	const TableLayout *layout = table_layout(catalog, TABLE_FAILURE, rel);
	TupleDesc	desc = RelationGetDescr(rel);
	int			attnums[2] = {layout->attnum[FAILURE_PHASE], layout->attnum[FAILURE_FAILED_AT]};
	Datum		values[2];
	bool		nulls[2];

	for (int i = 0; i < 2; i++)
		values[i] = heap_getattr(oldtuple, attnums[i], desc, &nulls[i]);
	return heap_modify_tuple_by_cols(newtuple, desc, 2, attnums, values, nulls);
}

/* The event "failed" of a failure row's database, applied to its job. */
static void
failure_fails_job(Catalog *catalog, const FailureRow *row, Request *request)
{
	request_init(request, EDGE_EVENT, EV_FAILED, row->job_id);
	request->actor = request_actor();
	request->message = row->message;
	request->database = row->database;
	job_change(catalog, request);
}

/*
 * dms_failure_guard: BEFORE INSERT OR UPDATE FOR EACH ROW on dms_job_failure.
 * Checks that a database that fails belongs to a job that can fail now, and
 * gives the row the phase the job fails in; the AFTER trigger fails the job
 * once the row is written.
 */
Datum
dms_failure_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Catalog    *catalog;
	Relation	rel;
	const TableLayout *layout;
	HeapTuple	newtuple;
	FailureRow	row;
	JobRow		job;
	Request		request;
	int			phase;
	int			attnums[2];
	Datum		values[2];
	bool		nulls[2] = {false, false};

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_failure_guard: not called by trigger manager");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "dms_failure_guard: must be fired before, for each row");

	rel = trigdata->tg_relation;
	catalog = catalog_for_relation(rel);
	layout = table_layout(catalog, TABLE_FAILURE, rel);
	newtuple = failure_row_of_write(catalog, trigdata, &row);

	if (!job_read(catalog, row.job_id, PLAN_JOB_LOCK, false, &job))
		report_job_missing(row.job_id);
	if (!job.databases_null && !text_array_contains(job.databases, row.database))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration job " INT64_FORMAT " does not migrate database \"%s\"",
						row.job_id, row.database)));

	if (request_loading_rows(rel))
	{
		/* a failure row loaded by COPY FROM belongs to a job loaded as failed */
		if (job.status != ST_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("failure of database \"%s\" cannot be loaded for migration job " INT64_FORMAT " while it is %s",
							row.database, row.job_id, state_text(job.status, job.phase))));
		return PointerGetDatum(newtuple);
	}

	if (!failure_is_event(trigdata, &row, catalog))
		return PointerGetDatum(failure_keep_owned_columns(catalog, rel, trigdata->tg_trigtuple,
														  newtuple));	/* no event */
	if (OidIsValid(failure_record_trigger(catalog, rel)))
	{
		ResolvedEdge edge;

		request_init(&request, EDGE_EVENT, EV_FAILED, row.job_id);
		if (!lifecycle_resolve(EDGE_EVENT, EV_FAILED, job.status, job.phase,
							   job.migration_type, &edge))
			refuse_request(&request, &job);
		phase = edge.to_phase;
	}
	else
	{
		/* a database at 1.0: no AFTER trigger, the job fails here */
		failure_fails_job(catalog, &row, &request);
		if (request.stage != REQUEST_RECORDED)
			return PointerGetDatum(NULL);	/* a trigger of the user's kept the job as it was */
		phase = request.result_phase;
	}

	attnums[0] = layout->attnum[FAILURE_PHASE];
	values[0] = ObjectIdGetDatum(catalog->phase_oids[phase]);
	attnums[1] = layout->attnum[FAILURE_FAILED_AT];
	values[1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	return PointerGetDatum(heap_modify_tuple_by_cols(newtuple, RelationGetDescr(rel), 2,
													 attnums, values, nulls));
}

/*
 * dms_failure_record: AFTER INSERT OR UPDATE FOR EACH ROW on dms_job_failure.
 * The failure row is written: its job fails (or records another failure).
 * The row must still be the one the guard checked, in the phase the job
 * fails in; a BEFORE trigger of the user's that skipped the row has kept
 * this trigger from firing, and the job from failing.
 */
Datum
dms_failure_record(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Catalog    *catalog;
	Relation	rel;
	FailureRow	row;
	Request		request;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_failure_record: not called by trigger manager");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "dms_failure_record: must be fired after, for each row");

	rel = trigdata->tg_relation;
	if (request_loading_rows(rel))
		return PointerGetDatum(NULL);
	catalog = catalog_for_relation(rel);
	/* not the trigger the BEFORE trigger counted on: that one failed the job itself */
	if (trigdata->tg_trigger->tgoid != failure_record_trigger(catalog, rel))
		return PointerGetDatum(NULL);
	failure_row_of_write(catalog, trigdata, &row);

	if (!failure_is_event(trigdata, &row, catalog))
		return PointerGetDatum(NULL);
	failure_fails_job(catalog, &row, &request);
	if (request.stage != REQUEST_RECORDED || request.result_phase != row.phase)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the failure of database \"%s\" does not match migration job " INT64_FORMAT,
						row.database, row.job_id),
				 errdetail("A trigger changed the failure row, or kept the job from failing, after the row had been checked.")));
	return PointerGetDatum(NULL);
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
	FailureWrite marker;

	row_write_begin(&w, catalog, TABLE_FAILURE, "INSERT");
	found = row_find_failures(&w, job_id, database, &tids) > 0 &&
		row_lock(&w, &tids[0], LockTupleNoKeyExclusive);
	if (found)
	{
		row_from_found(&w);
		row_set(&w, FAILURE_ERROR_MESSAGE, CStringGetTextDatum(message), false);
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
	}
	/* the same message again is a new failure all the same: the write is ours */
	if (found)
		marker.row = w.found->tts_tid;
	else
		ItemPointerSetInvalid(&marker.row);	/* an INSERT is a failure anyway */
	marker.trigger_depth = trigger_depth();
	marker.outer = failure_write;
	failure_write = &marker;
	PG_TRY();
	{
		if (found)
			row_update(&w);
		else
			row_insert(&w);
		row_write_end(&w);
	}
	PG_FINALLY();
	{
		failure_write = marker.outer;
	}
	PG_END_TRY();
}

/* Is the job failed, with no job-level error and no failed database left, as it is now? */
static bool
job_recoverable(Catalog *catalog, int64 job_id)
{
	JobRow		job;
	Datum		any;
	bool		any_null;

	return job_read(catalog, job_id, PLAN_JOB_LOCK, false, &job) &&
		job.status == ST_FAILED && job.error_null &&
		!owner_read(catalog, PLAN_FAILURE_ANY, Int64GetDatum(job_id), false, 0, &any, &any_null);
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
		(old->databases_null || !datum_image_eq(old->databases, new->databases, false, -1));
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

	if (left_failed || removed == 0 || kept > 0 || new->status != ST_FAILED || !new->error_null)
		return false;
	/* the deletes' triggers (a user's) may have failed a database or the job since */
	return job_recoverable(catalog, new->id);
}
