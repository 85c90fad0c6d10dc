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

#include "job.h"

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

static void
state_values(Catalog *catalog, const JobRow *row, Datum *values, bool *nulls)
{
	nulls[0] = row == NULL;
	values[0] = row ? ObjectIdGetDatum(catalog->status_oids[row->status]) : (Datum) 0;
	nulls[1] = row == NULL || row->phase == PHASE_NULL;
	values[1] = nulls[1] ? (Datum) 0 : ObjectIdGetDatum(catalog->phase_oids[row->phase]);
}

/* Writes the history row of a change and sends its notification. */
static void
record_change(Catalog *catalog, const Change *change)
{
	const JobRow *job = change->to ? change->to : change->from;
	Oid			actor_id = request_actor();
	char	   *actor = GetUserNameFromId(actor_id, true);
	char	   *job_name = TextDatumGetCString(job->name);
	Datum		values[10];
	bool		nulls[10] = {false};
	OwnerSwitch sw;
	int64		history_id;
	bool		isnull;

	if (actor == NULL)
		actor = psprintf("role %u", actor_id);

	values[0] = Int64GetDatum(job->id);
	values[1] = job->name;
	values[2] = CStringGetTextDatum(change->cause);
	state_values(catalog, change->from, &values[3], &nulls[3]);
	state_values(catalog, change->to, &values[5], &nulls[5]);
	nulls[7] = change->database == NULL;
	values[7] = nulls[7] ? (Datum) 0 : CStringGetTextDatum(change->database);
	nulls[8] = change->message == NULL;
	values[8] = nulls[8] ? (Datum) 0 : CStringGetTextDatum(change->message);
	values[9] = CStringGetTextDatum(actor);

	SPI_connect();
	owner_switch_begin(catalog, &sw);
	plan_execute(catalog, PLAN_HISTORY_INSERT, values, nulls, false);
	history_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
											 1, &isnull));
	owner_switch_end(&sw);
	SPI_finish();

	notify_change(change, job->id, job_name, actor, history_id);
}

/* What an UPDATE of a job did: the request's cause, or the edge named by the change. */
static bool
update_change(TupleDesc desc, HeapTuple oldtuple, const JobRow *old,
			  HeapTuple newtuple, const JobRow *new, Change *change)
{
	Request    *request = request_for_job(old->id);
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

	judge_update(desc, oldtuple, old, newtuple, new, &judgement);
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
		default:
			return false;		/* nothing changed; the guard let nothing else by */
	}
}

/*
 * dms_job_record: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW on dms_job.
 * Records the change, announces it, and keeps the job's failure rows in step.
 */
Datum
dms_job_record(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Catalog    *catalog;
	TupleDesc	desc;
	JobRow		old,
				new;
	Change		change = {0};

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_job_record: not called by trigger manager");
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "dms_job_record: must be fired after, for each row");

	catalog = catalog_for_relation(trigdata->tg_relation);
	desc = RelationGetDescr(trigdata->tg_relation);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		/* a job loaded by COPY FROM brings its history rows along */
		if (request_loading_rows(trigdata->tg_relation))
			return PointerGetDatum(NULL);
		job_row_read(catalog, desc, trigdata->tg_trigtuple, &new);
		change.cause = "create";
		change.to = &new;
		record_change(catalog, &change);
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
	{
		job_row_read(catalog, desc, trigdata->tg_trigtuple, &old);
		change.cause = action_names[ACT_DELETE];
		change.from = &old;
		record_change(catalog, &change);
	}
	else
	{
		job_row_read(catalog, desc, trigdata->tg_trigtuple, &old);
		job_row_read(catalog, desc, trigdata->tg_newtuple, &new);
		if (update_change(desc, trigdata->tg_trigtuple, &old, trigdata->tg_newtuple, &new,
						  &change))
			record_change(catalog, &change);
		failures_follow_job(catalog, &old, &new);
	}
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
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the history of migration jobs is append-only"),
			 errdetail("%s on dms_job_history is refused.",
					   TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ? "UPDATE" : "DELETE"),
			 errhint("TRUNCATE removes the whole history.")));
	return PointerGetDatum(NULL);
}
