/*
 * src/history.c: the AFTER trigger on dms_job; one history row and one notification per change.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "catalog/index.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/timestamp.h"

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

static int64 history_append_by_statement(Catalog *catalog, Datum *columns, bool *nulls);

/*
 * Appends one row to dms_job_history without the executor: the row is
 * formed here and inserted into the heap and each index, as the catalogs do.
 * The history has plain column indexes only (the install script's); should a
 * user have added an expression or partial index, the prepared INSERT is used.
 */
static int64
history_append(Catalog *catalog, Datum *columns, bool *nulls)
{
	Relation	rel = table_open(catalog->history_relid, RowExclusiveLock);
	ResultRelInfo *info = makeNode(ResultRelInfo);
	HeapTuple	tuple;
	int64		id;

	InitResultRelInfo(info, rel, 1, NULL, 0);
	ExecOpenIndices(info, false);
	for (int i = 0; i < info->ri_NumIndices; i++)
	{
		IndexInfo  *index = info->ri_IndexRelationInfo[i];

		if (index->ii_Expressions != NIL || index->ii_Predicate != NIL)
		{
			ExecCloseIndices(info);
			table_close(rel, RowExclusiveLock);
			return history_append_by_statement(catalog, columns, nulls);
		}
	}

	id = nextval_internal(catalog->history_sequence, false);
	columns[Anum_history_id - 1] = Int64GetDatum(id);
	nulls[Anum_history_id - 1] = false;
	tuple = heap_form_tuple(RelationGetDescr(rel), columns, nulls);
	simple_heap_insert(rel, tuple);

	for (int i = 0; i < info->ri_NumIndices; i++)
	{
		IndexInfo  *index = info->ri_IndexRelationInfo[i];
		Datum		keys[INDEX_MAX_KEYS];
		bool		key_nulls[INDEX_MAX_KEYS];

		for (int k = 0; k < index->ii_NumIndexAttrs; k++)
		{
			AttrNumber	attnum = index->ii_IndexAttrNumbers[k];

			keys[k] = columns[attnum - 1];
			key_nulls[k] = nulls[attnum - 1];
		}
		index_insert(info->ri_IndexRelationDescs[i], keys, key_nulls, &tuple->t_self, rel,
					 index->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, false, index);
	}
	ExecCloseIndices(info);
	heap_freetuple(tuple);
	table_close(rel, RowExclusiveLock);
	return id;
}

/* The same row through the prepared INSERT, for a history with unusual indexes. */
static int64
history_append_by_statement(Catalog *catalog, Datum *columns, bool *nulls)
{
	OwnerSwitch sw;
	int64		id;
	bool		isnull;

	SPI_connect();
	owner_switch_begin(catalog, &sw);
	plan_execute(catalog, PLAN_HISTORY_INSERT, &columns[Anum_history_job_id - 1],
				 &nulls[Anum_history_job_id - 1], false);
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	owner_switch_end(&sw);
	SPI_finish();
	return id;
}

static void
state_columns(Catalog *catalog, const JobRow *row, Datum *columns, bool *nulls,
			  int status_attnum, int phase_attnum)
{
	nulls[status_attnum - 1] = row == NULL;
	columns[status_attnum - 1] = row ? ObjectIdGetDatum(catalog->status_oids[row->status]) : (Datum) 0;
	nulls[phase_attnum - 1] = row == NULL || row->phase == PHASE_NULL;
	columns[phase_attnum - 1] = nulls[phase_attnum - 1] ? (Datum) 0 :
		ObjectIdGetDatum(catalog->phase_oids[row->phase]);
}

/* Writes the history row of a change and sends its notification. */
static void
record_change(Catalog *catalog, const Change *change)
{
	const JobRow *job = change->to ? change->to : change->from;
	Oid			actor_id = request_actor();
	char	   *actor = GetUserNameFromId(actor_id, true);
	Datum		columns[Natts_history];
	bool		nulls[Natts_history] = {false};
	int64		history_id;

	if (actor == NULL)
		actor = psprintf("role %u", actor_id);

	columns[Anum_history_job_id - 1] = Int64GetDatum(job->id);
	columns[Anum_history_job_name - 1] = job->name;
	columns[Anum_history_cause - 1] = CStringGetTextDatum(change->cause);
	state_columns(catalog, change->from, columns, nulls,
				  Anum_history_from_status, Anum_history_from_phase);
	state_columns(catalog, change->to, columns, nulls,
				  Anum_history_to_status, Anum_history_to_phase);
	nulls[Anum_history_database_name - 1] = change->database == NULL;
	columns[Anum_history_database_name - 1] =
		change->database ? CStringGetTextDatum(change->database) : (Datum) 0;
	nulls[Anum_history_message - 1] = change->message == NULL;
	columns[Anum_history_message - 1] =
		change->message ? CStringGetTextDatum(change->message) : (Datum) 0;
	columns[Anum_history_actor - 1] = CStringGetTextDatum(actor);
	columns[Anum_history_occurred_at - 1] =
		TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	history_id = history_append(catalog, columns, nulls);
	notify_change(change, job->id, TextDatumGetCString(job->name), actor, history_id);
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

	judge_update(desc, oldtuple, old, newtuple, new, true, &judgement);
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
		job_record_update(catalog, desc, trigdata->tg_trigtuple, trigdata->tg_newtuple);
	return PointerGetDatum(NULL);
}

/* After an UPDATE of a job: its history row and notification, and its failure rows. */
void
job_record_update(Catalog *catalog, TupleDesc desc, HeapTuple oldtuple, HeapTuple newtuple)
{
	JobRow		old,
				new;
	Change		change = {0};

	job_row_read(catalog, desc, oldtuple, &old);
	job_row_read(catalog, desc, newtuple, &new);
	if (update_change(desc, oldtuple, &old, newtuple, &new, &change))
		record_change(catalog, &change);
	failures_follow_job(catalog, &old, &new);
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
