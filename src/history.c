/*
 * src/history.c: the AFTER trigger on dms_job; one history row and one notification per change.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "job.h"
#include "write.h"

PG_FUNCTION_INFO_V1(dms_job_record);
PG_FUNCTION_INFO_V1(dms_history_append_only);

#define NOTIFY_CHANNEL "dms_lifecycle"

/* One change of one job, as the history row and the notification tell it. */
typedef struct Change
{
	const char *cause;
	const JobRow *from;			/* NULL for create */
	const JobRow *to;			/* NULL for delete */
	const char *database;
	const char *message;
	int64		job_id;			/* with no from and no to: a row about no job */
	const char *job_name;
} Change;

static void
json_key_string(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, ",\"%s\":", key);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

static const char *
phase_name_or_null(const JobRow *row)
{
	return row == NULL || row->phase == PHASE_NULL ? NULL : phase_names[row->phase];
}

/* The notification: SPEC section 8, and the id of the history row it announces. */
static void
notify_change(const Change *change, int64 job_id, const char *job_name, const char *actor,
			  int64 history_id)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"job_id\":" INT64_FORMAT, job_id);
	json_key_string(&buf, "name", job_name);
	json_key_string(&buf, "cause", change->cause);
	json_key_string(&buf, "from_status", change->from ? status_names[change->from->status] : NULL);
	json_key_string(&buf, "from_phase", phase_name_or_null(change->from));
	json_key_string(&buf, "to_status", change->to ? status_names[change->to->status] : NULL);
	json_key_string(&buf, "to_phase", phase_name_or_null(change->to));
	json_key_string(&buf, "actor", actor);
	appendStringInfo(&buf, ",\"history_id\":" INT64_FORMAT "}", history_id);
	Async_Notify(NOTIFY_CHANNEL, buf.data);
	pfree(buf.data);
}

/*
 * Appends one row to dms_job_history through the executor: the history's
 * own triggers (a user's that ships rows elsewhere), constraints and
 * indexes apply.  Returns false if a BEFORE trigger skipped
 * the row, else sets *id to the row's id.
 */
static bool
history_append(Catalog *catalog, const Datum *columns, const bool *nulls, int64 *id)
{
	RowWrite	w;
	bool		inserted;
	bool		isnull;

	row_write_begin(&w, catalog, TABLE_HISTORY, "INSERT");
	row_new(&w);
	for (int c = 0; c < N_HISTORY_COLUMN; c++)
		if (c != HISTORY_ID)
			row_set(&w, c, columns[c], nulls[c]);
	inserted = row_insert(&w);
	if (inserted)
	{
		Datum		value = row_get(w.row, w.layout, HISTORY_ID, &isnull);

		*id = isnull ? 0 : DatumGetInt64(value);
	}
	row_write_end(&w);
	return inserted;
}

static void
state_columns(Catalog *catalog, const JobRow *row, Datum *columns, bool *nulls,
			  int status_column, int phase_column)
{
	nulls[status_column] = row == NULL;
	columns[status_column] = row ? ObjectIdGetDatum(catalog->status_oids[row->status]) : (Datum) 0;
	nulls[phase_column] = row == NULL || row->phase == PHASE_NULL;
	columns[phase_column] = nulls[phase_column] ? (Datum) 0 :
		ObjectIdGetDatum(catalog->phase_oids[row->phase]);
}

/* Writes the history row of a change and sends its notification. */
static void
record_change(Catalog *catalog, const Change *change)
{
	const JobRow *job = change->to ? change->to : change->from;
	int64		job_id = job ? job->id : change->job_id;
	Datum		job_name = job ? job->name : CStringGetTextDatum(change->job_name);
	Oid			actor_id = request_actor();
	char	   *actor = GetUserNameFromId(actor_id, true);
	Datum		columns[N_HISTORY_COLUMN];
	bool		nulls[N_HISTORY_COLUMN] = {false};
	int64		history_id;

	/* an engine-driven job's worker looks at it once this commits */
	engine_wake_at_commit();

	if (actor == NULL)
		actor = psprintf("role %u", actor_id);

	columns[HISTORY_JOB_ID] = Int64GetDatum(job_id);
	columns[HISTORY_JOB_NAME] = job_name;
	columns[HISTORY_CAUSE] = CStringGetTextDatum(change->cause);
	state_columns(catalog, change->from, columns, nulls,
				  HISTORY_FROM_STATUS, HISTORY_FROM_PHASE);
	state_columns(catalog, change->to, columns, nulls,
				  HISTORY_TO_STATUS, HISTORY_TO_PHASE);
	nulls[HISTORY_DATABASE_NAME] = change->database == NULL;
	columns[HISTORY_DATABASE_NAME] =
		change->database ? CStringGetTextDatum(change->database) : (Datum) 0;
	nulls[HISTORY_MESSAGE] = change->message == NULL;
	columns[HISTORY_MESSAGE] =
		change->message ? CStringGetTextDatum(change->message) : (Datum) 0;
	columns[HISTORY_ACTOR] = CStringGetTextDatum(actor);
	columns[HISTORY_OCCURRED_AT] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	/* a BEFORE trigger of the user's may skip the row: nothing to announce then */
	if (history_append(catalog, columns, nulls, &history_id))
		notify_change(change, job_id, TextDatumGetCString(job_name), actor, history_id);
}

/*
 * The history row of a pruning, about no job (job id 0): how many rows of
 * how many jobs left, and from before when.
 */
void
history_record_prune(Catalog *catalog, int64 removed, int64 jobs, const char *cutoff)
{
	Change		change = {0};

	change.cause = "prune";
	change.job_id = 0;
	change.job_name = "dms_prune_history";
	change.message = psprintf("removed " INT64_FORMAT " history rows of " INT64_FORMAT
							  " jobs deleted or completed before %s", removed, jobs, cutoff);
	record_change(catalog, &change);
}

/*
 * What an UPDATE of a job did: the request's cause, or the edge named by the
 * change.  guard_check_written() has made sure the row is the guard's.
 */
static bool
update_change(Catalog *catalog, Relation rel, HeapTuple oldtuple, const JobRow *old,
			  HeapTuple newtuple, const JobRow *new, Request *request, Change *change)
{
	UpdateJudgement judgement;

	change->from = old;
	change->to = new;
	if (request != NULL)
	{
		change->cause = request_cause(request);
		change->database = request->database;
		change->message = request->history_message ? request->history_message : request->message;
		return true;
	}

	judge_update(catalog, rel, oldtuple, old, newtuple, new, true, &judgement);
	switch (judgement.kind)
	{
		case UPDATE_EDGE:
			change->cause = edge_name(judgement.edge.edge);
			if (judgement.edge.edge->flags & EDGE_SETS_MESSAGE)
				change->message = new->error_null ? NULL : TextDatumGetCString(new->error_message);
			return true;
		case UPDATE_EDIT:
			change->cause = action_names[ACT_EDIT];
			return true;
		case UPDATE_NOTHING:
			return false;
		case UPDATE_INVALID:
		case UPDATE_MIXED:
			break;
	}
	refuse_transition(old, new);
}

/*
 * A change of the job made after this one and before this one was recorded
 * (by an AFTER trigger of the user's that fires before the history trigger,
 * or one on the history row): its history row would come first.
 */
static void
refuse_changed_before_recorded(Relation rel, HeapTuple newtuple, int64 job_id)
{
	if (row_changed_since(rel, &newtuple->t_self))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("migration job " INT64_FORMAT " was changed again before its change was recorded",
						job_id),
				 errdetail("A trigger changed the job between its change and the history row of that change."),
				 errhint("Change the job from an AFTER trigger that fires after dms_job_record (triggers fire in name order).")));
}

/*
 * After an UPDATE of a job: its history row and notification, then its
 * follow-up.  The change is complete when this runs; the follow-up (failure
 * rows the change left behind, and the recovery of a job whose last failed
 * database left) comes after it, and is told to the request.
 */
static void
record_update(Catalog *catalog, Relation rel, HeapTuple oldtuple, HeapTuple newtuple)
{
	JobRow		old,
				new;
	Change		change = {0};
	Request    *request;

	job_row_read(catalog, rel, oldtuple, &old);
	job_row_read(catalog, rel, newtuple, &new);
	request = request_for_job(old.id, REQUEST_WRITTEN);
	guard_check_written(catalog, rel, oldtuple, newtuple);
	if (update_change(catalog, rel, oldtuple, &old, newtuple, &new, request, &change))
		record_change(catalog, &change);
	refuse_changed_before_recorded(rel, newtuple, new.id);
	if (request != NULL)
	{
		request->stage = REQUEST_RECORDED;
		request->result_status = new.status;
		request->result_phase = new.phase;
	}

	if (failures_follow_job(catalog, &old, &new))
	{
		Request		recovery;

		request_init(&recovery, EDGE_EVENT, EV_RECOVERED, new.id);
		recovery.actor = request_actor();
		job_change(catalog, &recovery);
		if (request != NULL && recovery.stage == REQUEST_RECORDED)
		{
			request->result_status = recovery.result_status;
			request->result_phase = recovery.result_phase;
		}
	}
}

/*
 * dms_job_record: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on dms_job.
 * Records the change, announces it, and applies its follow-up.
 */
Datum
dms_job_record(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Catalog    *catalog;
	Relation	rel;
	JobRow		old,
				new;
	Change		change = {0};

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_job_record: not called by trigger manager");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "dms_job_record: must be fired after, for each row");

	rel = trigdata->tg_relation;
	catalog = catalog_for_relation(rel);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		/* a job loaded by COPY FROM brings its history rows along */
		if (request_loading_rows(rel))
			return PointerGetDatum(NULL);
		job_row_read(catalog, rel, trigdata->tg_trigtuple, &new);
		guard_check_written(catalog, rel, NULL, trigdata->tg_trigtuple);
		change.cause = "create";
		change.to = &new;
		record_change(catalog, &change);
		refuse_changed_before_recorded(rel, trigdata->tg_trigtuple, new.id);
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		Request    *request;

		job_row_read(catalog, rel, trigdata->tg_trigtuple, &old);
		change.cause = action_names[ACT_DELETE];
		change.from = &old;
		record_change(catalog, &change);
		request = request_for_job(old.id, REQUEST_WRITTEN);
		if (request != NULL)
			request->stage = REQUEST_RECORDED;
	}
	else
		record_update(catalog, rel, trigdata->tg_trigtuple, trigdata->tg_newtuple);
	return PointerGetDatum(NULL);
}

/*
 * dms_history_append_only: BEFORE UPDATE OR DELETE FOR EACH ROW on
 * dms_job_history.  The audit log is never rewritten.
 */
Datum
dms_history_append_only(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_history_append_only: not called by trigger manager");
	/* dms_prune_history()'s own deletes: the one way out besides TRUNCATE */
	if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) && history_pruning())
		return PointerGetDatum(trigdata->tg_trigtuple);
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the history of migration jobs is append-only"),
			 errdetail("%s on dms_job_history is refused.",
					   TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" : "DELETE"),
			 errhint("TRUNCATE removes the whole history.")));
	return PointerGetDatum(NULL);
}
