/*
 * src/guard.c: the BEFORE trigger on dms_job; every write is an edge of the lifecycle or is refused.
 *
 * An action or event performed through the extension's functions arrives as a
 * request naming its edge: the guard checks that the edge starts at the row's
 * current state and writes the edge's target.  A direct write (any role, the
 * superuser included) has no request: the guard names the edge from the old
 * and new row, and refuses the write if there is none.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "access/xact.h"
#include "catalog/pg_trigger.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "engine.h"
#include "job.h"

PG_FUNCTION_INFO_V1(dms_job_guard);
PG_FUNCTION_INFO_V1(dms_refuse_truncate);

/* The new values the guard writes into the row, by JobColumn. */
typedef struct RowUpdate
{
	Datum		values[N_JOB_COLUMN];
	bool		nulls[N_JOB_COLUMN];
	bool		replace[N_JOB_COLUMN];
} RowUpdate;

static void
set_column(RowUpdate *u, int column, Datum value, bool isnull)
{
	u->values[column] = value;
	u->nulls[column] = isnull;
	u->replace[column] = true;
}

/* The row with the guard's values, found by name wherever ALTER TABLE put them. */
static HeapTuple
row_with_update(Catalog *catalog, Relation rel, HeapTuple tuple, const RowUpdate *u)
{
	const TableLayout *layout = table_layout(catalog, TABLE_JOB, rel);
	int			attnums[N_JOB_COLUMN];
	Datum		values[N_JOB_COLUMN];
	bool		nulls[N_JOB_COLUMN];
	int			n = 0;

	for (int c = 0; c < N_JOB_COLUMN; c++)
		if (u->replace[c])
		{
			if (layout->attnum[c] == InvalidAttrNumber)
			{
				/* a column of 1.1 in a database at 1.0: it stays NULL */
				if (!u->nulls[c])
					column_refuse_missing(layout, c);
				continue;
			}
			attnums[n] = layout->attnum[c];
			values[n] = u->values[c];
			nulls[n] = u->nulls[c];
			n++;
		}
	return heap_modify_tuple_by_cols(tuple, RelationGetDescr(rel), n, attnums, values, nulls);
}

/* The value of a column of a job's row. */
static Datum
job_column(Relation rel, const TableLayout *layout, HeapTuple tuple, int column, bool *isnull)
{
	return heap_getattr(tuple, layout->attnum[column], RelationGetDescr(rel), isnull);
}

/* The columns the guard cannot judge a row without: NULL there is 23502. */
static const bool column_required[N_JOB_COLUMN] = {
	[JOB_ID] = true, [JOB_NAME] = true, [JOB_MIGRATION_TYPE] = true, [JOB_STATUS] = true,
	[JOB_DUMP_PARALLELISM] = true,
};

/*
 * Reads a job row, deforming the tuple once, and finding each column by
 * name: a user may have added and dropped columns of the table.
 */
void
job_row_read(Catalog *catalog, Relation rel, HeapTuple tuple, JobRow *row)
{
	const TableLayout *layout = table_layout(catalog, TABLE_JOB, rel);
	TupleDesc	desc = RelationGetDescr(rel);
	Datum	   *all_values = palloc(sizeof(Datum) * desc->natts);
	bool	   *all_nulls = palloc(sizeof(bool) * desc->natts);
	Datum		values[N_JOB_COLUMN];
	bool		nulls[N_JOB_COLUMN];

	heap_deform_tuple(tuple, desc, all_values, all_nulls);
	for (int c = 0; c < N_JOB_COLUMN; c++)
	{
		AttrNumber	attnum = layout->attnum[c];

		if (attnum == InvalidAttrNumber)
		{
			/* a column of 1.1 that a database at 1.0 lacks */
			values[c] = (Datum) 0;
			nulls[c] = true;
			continue;
		}
		values[c] = all_values[attnum - 1];
		nulls[c] = all_nulls[attnum - 1];
		/* NOT NULL is checked after BEFORE triggers: say it here, as PostgreSQL would */
		if (nulls[c] && (column_required[c] || TupleDescAttr(desc, attnum - 1)->attnotnull))
			report_null_column(rel, attnum);
	}
	pfree(all_values);
	pfree(all_nulls);

	row->id = DatumGetInt64(values[JOB_ID]);
	row->name = values[JOB_NAME];
	row->migration_type = type_index(catalog, values[JOB_MIGRATION_TYPE]);
	row->status = status_index(catalog, values[JOB_STATUS]);
	row->phase = nulls[JOB_PHASE] ? PHASE_NULL : phase_index(catalog, values[JOB_PHASE]);
	row->databases = values[JOB_DATABASES];
	row->databases_null = nulls[JOB_DATABASES];
	row->parallelism = parallelism_index(catalog, values[JOB_DUMP_PARALLELISM]);
	row->pending = nulls[JOB_PENDING_DUMP_PARALLELISM] ? -1 :
		parallelism_index(catalog, values[JOB_PENDING_DUMP_PARALLELISM]);
	row->error_message = values[JOB_ERROR_MESSAGE];
	row->error_null = nulls[JOB_ERROR_MESSAGE];
	row->has_source_server = !nulls[JOB_SOURCE_SERVER];
	row->source_server = values[JOB_SOURCE_SERVER];
	row->has_destination_server = !nulls[JOB_DESTINATION_SERVER];
	row->destination_server = values[JOB_DESTINATION_SERVER];
}

static bool
column_changed(Catalog *catalog, Relation rel, HeapTuple a, HeapTuple b, int column)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnum = table_layout(catalog, TABLE_JOB, rel)->attnum[column];
	Form_pg_attribute att;
	bool		a_null,
				b_null;
	Datum		a_value,
				b_value;

	if (attnum == InvalidAttrNumber)
		return false;			/* a column the database at 1.0 lacks */
	att = TupleDescAttr(desc, attnum - 1);
	a_value = heap_getattr(a, attnum, desc, &a_null);
	b_value = heap_getattr(b, attnum, desc, &b_null);
	if (a_null || b_null)
		return a_null != b_null;
	/* datum_image_eq: a stored value may be compressed or out of line, a new one not */
	return !datum_image_eq(a_value, b_value, att->attbyval, att->attlen);
}

/*
 * Names what a direct UPDATE does.  The history trigger calls this again on
 * the row the guard wrote (guarded): there, columns changed along with the
 * state are the edge's own effects (a restart applies the pending
 * parallelism), not an edit.
 */
void
judge_update(Catalog *catalog, Relation rel, HeapTuple oldtuple, const JobRow *old,
			 HeapTuple newtuple, const JobRow *new, bool guarded, UpdateJudgement *out)
{
	bool		state_changed = old->status != new->status || old->phase != new->phase;
	bool		message_changed = column_changed(catalog, rel, oldtuple, newtuple, JOB_ERROR_MESSAGE);
	bool		edited;

	memset(out, 0, sizeof(*out));
	out->name_changed = column_changed(catalog, rel, oldtuple, newtuple, JOB_NAME);
	out->type_changed = old->migration_type != new->migration_type;
	out->databases_changed = column_changed(catalog, rel, oldtuple, newtuple, JOB_DATABASES);
	out->servers_changed =
		column_changed(catalog, rel, oldtuple, newtuple, JOB_SOURCE_SERVER) ||
		column_changed(catalog, rel, oldtuple, newtuple, JOB_DESTINATION_SERVER);
	edited = out->name_changed || out->type_changed || out->databases_changed ||
		out->servers_changed ||
		old->parallelism != new->parallelism || old->pending != new->pending;

	if (state_changed)
	{
		if (edited && !guarded)
			out->kind = UPDATE_MIXED;
		else if (lifecycle_find_edge(old->status, old->phase, new->status, new->phase,
									 old->migration_type, &out->edge))
			out->kind = UPDATE_EDGE;
		else
			out->kind = UPDATE_INVALID;
	}
	else if (message_changed)
	{
		/* A new message is the self-loop that replaces it ("error", "failed"). */
		if (edited)
			out->kind = UPDATE_MIXED;
		else if (lifecycle_message_loop(old->status, old->phase, old->migration_type,
										&out->edge))
			out->kind = UPDATE_EDGE;
		else
			out->kind = UPDATE_INVALID;
	}
	else if (edited)
		out->kind = UPDATE_EDIT;
	else
		out->kind = UPDATE_NOTHING;
}

const char *
request_cause(const Request *request)
{
	return request->kind == EDGE_ACTION ? action_names[request->name] : event_names[request->name];
}

/* "started, failed": the events a job in this state accepts. */
static char *
accepted_events_text(const JobRow *job)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int e = 0; e < N_EVENT; e++)
	{
		ResolvedEdge edge;

		if (!lifecycle_resolve(EDGE_EVENT, e, job->status, job->phase,
							   job->migration_type, &edge))
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, event_names[e]);
	}
	return buf.data;
}

/* '"Not started", "Stopped" or "Failed"': the statuses for which a test holds. */
static char *
status_list(bool (*test) (int status))
{
	StringInfoData buf;
	int			statuses[N_STATUS];
	int			n = 0;

	for (int s = 0; s < N_STATUS; s++)
		if (test(s))
			statuses[n++] = s;
	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s\"%s\"", i == 0 ? "" : i == n - 1 ? " or " : ", ",
						 status_labels[statuses[i]]);
	return buf.data;
}

void
refuse_request(const Request *request, const JobRow *job)
{
	if (request->kind == EDGE_ACTION)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s migration job " INT64_FORMAT " while it is %s",
						action_names[request->name], job->id,
						state_text(job->status, job->phase)),
				 errdetail("Allowed actions: %s.",
						   allowed_actions_text(job->status, job->phase))));
	else
	{
		char	   *accepted = accepted_events_text(job);

		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot report \"%s\" for migration job " INT64_FORMAT " while it is %s",
						event_names[request->name], job->id,
						state_text(job->status, job->phase)),
				 accepted[0] ? errdetail("Events accepted now: %s.", accepted) :
				 errdetail("A job in this state accepts no event.")));
	}
}

/*
 * dms_report() on an engine-driven job from a session other than the
 * engine's: the built-in engine knows what really happens to the job, and a
 * second reporter would contradict it.
 */
void
refuse_engine_driven_report(int64 job_id, const char *source_server)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("migration job " INT64_FORMAT " is driven by the built-in engine", job_id),
			 errdetail("The job migrates from the server \"%s\"; the built-in engine reports its events.",
					   source_server),
			 errhint("Operators act on the job with the action functions (dms_stop(), dms_restart(), ...); dms_job_progress shows what the engine does.")));
}

/*
 * The servers a new or edited job names: the source must be a server of
 * dms_lifecycle_connection that the role writing may use; 1.1 has no
 * destination but this cluster.
 */
static void
validate_servers(const JobRow *job)
{
	if (job->has_source_server)
		connection_server_check(TextDatumGetCString(job->source_server), "source server");
	if (job->has_destination_server)
		connection_destination_refuse(TextDatumGetCString(job->destination_server));
}

void
refuse_transition(const JobRow *old, const JobRow *new)
{
	if (old->status == new->status && old->phase == new->phase)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration job " INT64_FORMAT " has no error message while it is %s",
						old->id, state_text(old->status, old->phase)),
				 errdetail("A job has an error message only while it is %s.",
						   status_list(lifecycle_keeps_message))));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("invalid transition of migration job " INT64_FORMAT " from %s to %s",
					old->id, state_text(old->status, old->phase),
					lifecycle_state_is_legal(new->status, new->phase) || new->phase != PHASE_NULL ?
					state_text(new->status, new->phase) :
					psprintf("%s (no phase)", state_text(new->status, new->phase))),
			 errdetail("Allowed actions: %s.", allowed_actions_text(old->status, old->phase)),
			 errhint("Use the dms_lifecycle functions, or an UPDATE along an edge listed by dms_transitions().")));
}

bool
text_array_contains(Datum array, const char *value)
{
	Datum	   *items;
	bool	   *nulls;
	int			n;
	bool		found = false;

	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &items, &nulls, &n);
	for (int i = 0; i < n && !found; i++)
		found = !nulls[i] && strcmp(TextDatumGetCString(items[i]), value) == 0;
	return found;
}

/* A database list: NULL (all databases), or one or more distinct valid names. */
static void
validate_databases(Datum array)
{
	ArrayType  *a = DatumGetArrayTypeP(array);
	Datum	   *items;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the database list must be a one-dimensional array")));
	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the database list must not be empty"),
				 errhint("Use NULL to migrate all databases of the source.")));
	for (int i = 0; i < n; i++)
	{
		char	   *name;

		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the database list must not contain NULL")));
		name = TextDatumGetCString(items[i]);
		validate_name_text(name, "database name");
		for (int j = 0; j < i; j++)
			if (!nulls[j] && strcmp(TextDatumGetCString(items[j]), name) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("database \"%s\" appears twice in the database list", name)));
	}
}

/*
 * Writes an edge's target and its effects on the row: the job-level error
 * message belongs to "Running with errors" and "Failed" only, and a restart
 * applies the pending dump parallelism.
 */
static void
apply_edge(Catalog *catalog, const ResolvedEdge *edge, const char *message,
		   const char *database, const JobRow *old, RowUpdate *u)
{
	const LifecycleEdge *e = edge->edge;

	set_column(u, JOB_STATUS, ObjectIdGetDatum(catalog->status_oids[edge->to_status]), false);
	if (edge->to_phase == PHASE_NULL)
		set_column(u, JOB_PHASE, (Datum) 0, true);
	else
		set_column(u, JOB_PHASE, ObjectIdGetDatum(catalog->phase_oids[edge->to_phase]), false);

	if (!lifecycle_keeps_message(edge->to_status))
		set_column(u, JOB_ERROR_MESSAGE, (Datum) 0, true);
	else if (database != NULL)
	{
		/* a database failed: the job-level error is only a failure's own */
		if (old->status != edge->to_status)
			set_column(u, JOB_ERROR_MESSAGE, (Datum) 0, true);
	}
	else if (e->flags & EDGE_SETS_MESSAGE)
	{
		if (message_is_blank(message))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("migration job " INT64_FORMAT " cannot become %s without an error message",
							old->id, state_text(edge->to_status, edge->to_phase))));
		set_column(u, JOB_ERROR_MESSAGE, CStringGetTextDatum(message), false);
	}

	/* A restart applies the pending parallelism; a job that ends never will. */
	if (e->flags & EDGE_APPLIES_PENDING)
	{
		if (old->pending >= 0)
			set_column(u, JOB_DUMP_PARALLELISM,
					   ObjectIdGetDatum(catalog->parallelism_oids[old->pending]), false);
		set_column(u, JOB_PENDING_DUMP_PARALLELISM, (Datum) 0, true);
	}
	else if (lifecycle_is_final(edge->to_status))
		set_column(u, JOB_PENDING_DUMP_PARALLELISM, (Datum) 0, true);
}

static void
require_database_edit(const ResolvedEdge *edit, const JobRow *job, const char *verb)
{
	if (!(edit->edge->flags & EDGE_EDITS_DATABASES))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s migration job " INT64_FORMAT " while it is %s",
						verb, job->id, state_text(job->status, job->phase)),
				 errdetail("The databases of a job can change while it is %s.",
						   status_list(lifecycle_edits_databases))));
	if (job->databases_null)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration job " INT64_FORMAT " migrates all databases of its source", job->id),
				 errhint("Create a job with a list of databases to choose them one by one.")));
}

/* An edit asked for by dms_set_dump_parallelism(), dms_add_database(), dms_remove_database(). */
static void
apply_edit(Catalog *catalog, Request *request, const ResolvedEdge *edit, const JobRow *old,
		   RowUpdate *u)
{
	switch (request->edit)
	{
		case EDIT_DUMP_PARALLELISM:
			{
				Datum		level = ObjectIdGetDatum(catalog->parallelism_oids[request->parallelism]);

				if (old->status == ST_NOT_STARTED)
				{
					set_column(u, JOB_DUMP_PARALLELISM, level, false);
					set_column(u, JOB_PENDING_DUMP_PARALLELISM, (Datum) 0, true);
					request->history_message = psprintf("dump parallelism set to %s",
														dump_parallelism_names[request->parallelism]);
				}
				else
				{
					set_column(u, JOB_PENDING_DUMP_PARALLELISM, level, false);
					request->history_message = psprintf("dump parallelism %s from the next restart",
														dump_parallelism_names[request->parallelism]);
				}
				break;
			}
		case EDIT_ADD_DATABASE:
			{
				Datum	   *items;
				bool	   *nulls;
				int			n;
				Datum		list;

				require_database_edit(edit, old, "add a database to");
				if (text_array_contains(old->databases, request->database))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("migration job " INT64_FORMAT " already migrates database \"%s\"",
									old->id, request->database)));
				deconstruct_array(DatumGetArrayTypeP(old->databases), TEXTOID, -1, false,
								  TYPALIGN_INT, &items, &nulls, &n);
				items = repalloc(items, sizeof(Datum) * (n + 1));
				items[n] = CStringGetTextDatum(request->database);
				list = PointerGetDatum(construct_array(items, n + 1, TEXTOID, -1, false,
													   TYPALIGN_INT));
				validate_databases(list);
				set_column(u, JOB_DATABASES, list, false);
				request->history_message = psprintf("database \"%s\" added", request->database);
				break;
			}
		case EDIT_REMOVE_DATABASE:
			{
				Datum	   *items;
				bool	   *nulls;
				int			n,
							kept = 0;

				require_database_edit(edit, old, "remove a database from");
				if (!text_array_contains(old->databases, request->database))
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("migration job " INT64_FORMAT " does not migrate database \"%s\"",
									old->id, request->database)));
				deconstruct_array(DatumGetArrayTypeP(old->databases), TEXTOID, -1, false,
								  TYPALIGN_INT, &items, &nulls, &n);
				if (n <= 1)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("migration job " INT64_FORMAT " must keep at least one database",
									old->id),
							 errhint("Delete the job instead.")));
				for (int i = 0; i < n; i++)
					if (strcmp(TextDatumGetCString(items[i]), request->database) != 0)
						items[kept++] = items[i];
				set_column(u, JOB_DATABASES,
						   PointerGetDatum(construct_array(items, kept, TEXTOID, -1, false,
														   TYPALIGN_INT)), false);
				request->history_message = psprintf("database \"%s\" removed", request->database);
				break;
			}
		case EDIT_NONE:
			break;
	}
}

/* An action or event performed through the extension's functions. */
static void
guard_request(Catalog *catalog, Request *request, const JobRow *old, RowUpdate *u)
{
	ResolvedEdge edge;

	/* only the built-in engine reports the events of a job it drives */
	if (request->reported && old->has_source_server && !engine_session)
		refuse_engine_driven_report(old->id, TextDatumGetCString(old->source_server));

	/* a database's failure: a database of the job */
	if (request->kind == EDGE_EVENT && request->database != NULL && !old->databases_null &&
		!text_array_contains(old->databases, request->database))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration job " INT64_FORMAT " does not migrate database \"%s\"",
						old->id, request->database)));

	if (!lifecycle_resolve(request->kind, request->name, old->status, old->phase,
						   old->migration_type, &edge))
		refuse_request(request, old);

	if (request->kind == EDGE_ACTION && request->name == ACT_EDIT)
		apply_edit(catalog, request, &edge, old, u);
	else
		apply_edge(catalog, &edge, request->message, request->database, old, u);
}

/*
 * A direct UPDATE: it must be one edge, one edit, or nothing at all.  Returns
 * false if it changes nothing.
 */
static bool
guard_direct_update(Catalog *catalog, Relation rel, HeapTuple oldtuple, const JobRow *old,
					HeapTuple newtuple, const JobRow *new, RowUpdate *u)
{
	UpdateJudgement judgement;
	ResolvedEdge edit;

	judge_update(catalog, rel, oldtuple, old, newtuple, new, false, &judgement);
	switch (judgement.kind)
	{
		case UPDATE_NOTHING:
			return false;
		case UPDATE_INVALID:
			refuse_transition(old, new);
			break;
		case UPDATE_MIXED:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("migration job " INT64_FORMAT " cannot change status and be edited in one UPDATE",
							old->id),
					 errhint("Make the transition and the edit in two statements.")));
			break;
		case UPDATE_EDGE:
			apply_edge(catalog, &judgement.edge,
					   new->error_null ? NULL : TextDatumGetCString(new->error_message),
					   NULL, old, u);
			break;
		case UPDATE_EDIT:
			if (!lifecycle_resolve(EDGE_ACTION, ACT_EDIT, old->status, old->phase,
								   old->migration_type, &edit))
			{
				Request request;

				request_init(&request, EDGE_ACTION, ACT_EDIT, old->id);
				refuse_request(&request, old);
			}
			if (judgement.name_changed)
				validate_name_text(TextDatumGetCString(new->name), "job name");
			if (judgement.databases_changed)
			{
				if (!(edit.edge->flags & EDGE_EDITS_DATABASES))
					require_database_edit(&edit, old, "change the databases of");
				if (!new->databases_null)
					validate_databases(new->databases);
			}
			if (judgement.type_changed && old->status != ST_NOT_STARTED)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("cannot change the migration type of migration job " INT64_FORMAT " while it is %s",
								old->id, state_text(old->status, old->phase)),
						 errdetail("The migration type can change only before the job starts.")));
			if (judgement.servers_changed)
			{
				if (old->status != ST_NOT_STARTED)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("cannot change the servers of migration job " INT64_FORMAT " while it is %s",
									old->id, state_text(old->status, old->phase)),
							 errdetail("The source and destination servers of a job can change only before it starts.")));
				validate_servers(new);
			}
			break;
	}
	return true;
}

/*
 * A job loaded by COPY FROM (pg_restore) may be in any legal state, and
 * keeps its timestamps; its error message must fit its status.
 */
static void
guard_loaded_row(const JobRow *new)
{
	if (!lifecycle_state_is_legal(new->status, new->phase))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration job " INT64_FORMAT " cannot be loaded with status %s and phase %s",
						new->id, status_names[new->status],
						new->phase == PHASE_NULL ? "NULL" : phase_names[new->phase])));
	if (!new->error_null && !lifecycle_keeps_message(new->status))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration job " INT64_FORMAT " cannot be loaded as %s with an error message",
						new->id, state_text(new->status, new->phase))));
	/* a failed job may owe its status to failed databases alone (SPEC 5) */
	if (new->error_null && lifecycle_keeps_message(new->status) && new->status != ST_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("migration job " INT64_FORMAT " cannot be loaded as %s without an error message",
						new->id, state_text(new->status, new->phase))));
}

static HeapTuple guard_insert(Catalog *catalog, Relation rel, HeapTuple newtuple, RowUpdate *u);

/*
 * Does a BEFORE row trigger other than the guard fire for this event?  Such
 * a trigger may run after the guard (triggers fire in name order) and change
 * the row it checked, so the history trigger checks the row as written.
 */
static Oid	guard_function = InvalidOid;	/* dms_job_guard's own function */

static bool
other_before_row_triggers(Relation rel, int16 event)
{
	TriggerDesc *desc = rel->trigdesc;

	if (desc == NULL)
		return false;
	for (int i = 0; i < desc->numtriggers; i++)
	{
		Trigger    *trigger = &desc->triggers[i];

		if (TRIGGER_FOR_ROW(trigger->tgtype) && TRIGGER_FOR_BEFORE(trigger->tgtype) &&
			(trigger->tgtype & event) && trigger->tgenabled != TRIGGER_DISABLED &&
			trigger->tgfoid != guard_function)
			return true;
	}
	return false;
}

/*
 * The rows the guard made in this transaction while another BEFORE trigger
 * could still change them, by the row version they replace: the history
 * trigger compares the row as written with them.  The guard of every update
 * stores or forgets the entry of the version it replaces, so an entry left
 * by a write that never reached the heap (skipped, or rolled back to a
 * savepoint) is never read for another one.
 */
typedef struct GuardedRow
{
	ItemPointerData replaced;
	HeapTuple	tuple;
} GuardedRow;

static HTAB *guarded_rows = NULL;

static void
guarded_rows_forget(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		guarded_rows = NULL;	/* its memory goes with the transaction's */
}

/* Stores the row the guard made, or with NULL forgets any stored before. */
static void
guarded_row_remember(ItemPointer replaced, HeapTuple tuple)
{
	static bool callback_registered = false;
	GuardedRow *entry;
	bool		found;
	MemoryContext old;
	HeapTuple	copy;

	if (guarded_rows == NULL)
	{
		HASHCTL		ctl;

		if (tuple == NULL)
			return;
		if (!callback_registered)
		{
			RegisterXactCallback(guarded_rows_forget, NULL);
			callback_registered = true;
		}
		ctl.keysize = sizeof(ItemPointerData);
		ctl.entrysize = sizeof(GuardedRow);
		ctl.hcxt = TopTransactionContext;
		guarded_rows = hash_create("dms_lifecycle guarded rows", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (tuple == NULL)
	{
		entry = hash_search(guarded_rows, replaced, HASH_FIND, NULL);
		if (entry != NULL)
		{
			heap_freetuple(entry->tuple);
			hash_search(guarded_rows, replaced, HASH_REMOVE, NULL);
		}
		return;
	}
	/* the copy first: an error there leaves the entry as it was */
	old = MemoryContextSwitchTo(TopTransactionContext);
	copy = heap_copytuple(tuple);
	MemoryContextSwitchTo(old);
	entry = hash_search(guarded_rows, replaced, HASH_ENTER, &found);
	if (found)
		heap_freetuple(entry->tuple);
	entry->tuple = copy;
}

/* 55000 unless the written row has every column of the extension as the guard made it. */
static void
compare_written(Catalog *catalog, Relation rel, int64 job_id, HeapTuple expected,
				HeapTuple written)
{
	const TableLayout *layout = table_layout(catalog, TABLE_JOB, rel);
	TupleDesc	desc = RelationGetDescr(rel);

	for (int c = 0; c < N_JOB_COLUMN; c++)
	{
		AttrNumber	attnum = layout->attnum[c];
		Form_pg_attribute att;
		bool		expected_null,
					written_null;
		Datum		a,
					b;

		if (attnum == InvalidAttrNumber)
			continue;			/* a column the database at 1.0 lacks */
		att = TupleDescAttr(desc, attnum - 1);
		a = heap_getattr(expected, attnum, desc, &expected_null);
		b = heap_getattr(written, attnum, desc, &written_null);
		if (expected_null != written_null ||
			(!expected_null && !datum_image_eq(a, b, att->attbyval, att->attlen)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("migration job " INT64_FORMAT " was changed by a trigger after the lifecycle had checked it",
							job_id),
					 errdetail("Its column \"%s\" is not what the lifecycle made it.",
							   NameStr(att->attname)),
					 errhint("A BEFORE trigger that runs after dms_job_guard must not change the extension's columns.")));
	}
}

/*
 * Called by the history trigger: the row of an INSERT or UPDATE as it was
 * written, after every BEFORE trigger, must be the row the guard made.
 */
void
guard_check_written(Catalog *catalog, Relation rel, HeapTuple oldtuple, HeapTuple newtuple)
{
	JobRow		job;

	if (oldtuple == NULL)
	{
		RowUpdate	u;

		/* a new job: the guard's checks hold for the row as written, or it fails */
		if (!other_before_row_triggers(rel, TRIGGER_TYPE_INSERT) || request_loading_rows(rel))
			return;
		memset(&u, 0, sizeof(u));
		job_row_read(catalog, rel, newtuple, &job);
		compare_written(catalog, rel, job.id, guard_insert(catalog, rel, newtuple, &u), newtuple);
		return;
	}
	if (guarded_rows != NULL)
	{
		GuardedRow *entry = hash_search(guarded_rows, &oldtuple->t_self, HASH_FIND, NULL);

		if (entry != NULL)
		{
			bool		isnull;
			int64		job_id = DatumGetInt64(job_column(rel, table_layout(catalog, TABLE_JOB, rel),
														  oldtuple, JOB_ID, &isnull));

			compare_written(catalog, rel, job_id, entry->tuple, newtuple);
			guarded_row_remember(&oldtuple->t_self, NULL);
		}
	}
}

static HeapTuple
guard_insert(Catalog *catalog, Relation rel, HeapTuple newtuple, RowUpdate *u)
{
	JobRow		new;
	Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	job_row_read(catalog, rel, newtuple, &new);
	validate_name_text(TextDatumGetCString(new.name), "job name");
	if (!new.databases_null)
		validate_databases(new.databases);
	if (request_loading_rows(rel))
	{
		guard_loaded_row(&new);
		return newtuple;
	}
	if (new.status != ST_NOT_STARTED || new.phase != PHASE_NULL || !new.error_null ||
		new.pending >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a new migration job must be %s, with no phase, error or pending edit",
						state_text(ST_NOT_STARTED, PHASE_NULL)),
				 errdetail("The new row of migration job " INT64_FORMAT " is %s.", new.id,
						   state_text(new.status, new.phase))));
	validate_servers(&new);

	set_column(u, JOB_CREATED_AT, now, false);
	set_column(u, JOB_UPDATED_AT, now, false);
	set_column(u, JOB_STATUS_CHANGED_AT, now, false);
	return row_with_update(catalog, rel, newtuple, u);
}

static HeapTuple
guard_update(Catalog *catalog, Relation rel, HeapTuple oldtuple, HeapTuple newtuple,
			 RowUpdate *u)
{
	JobRow		old,
				new;
	Request    *request;
	bool		changed = true;
	int			to_status,
				to_phase;
	bool		isnull;
	Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	const TableLayout *layout;
	HeapTuple	result;

	job_row_read(catalog, rel, oldtuple, &old);
	job_row_read(catalog, rel, newtuple, &new);
	layout = table_layout(catalog, TABLE_JOB, rel);

	if (new.id != old.id)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the id of migration job " INT64_FORMAT " cannot change", old.id),
				 errdetail("Its history, failures and notifications name it by that id.")));

	request = request_for_job(old.id, REQUEST_PENDING);
	if (request != NULL)
	{
		request->stage = REQUEST_GUARDED;
		guard_request(catalog, request, &old, u);
	}
	else if (request_in_flight(old.id))
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("migration job " INT64_FORMAT " is being changed by the current command",
						old.id),
				 errdetail("A trigger changed the job while a change of it was being written."),
				 errhint("A trigger must not change the job whose change fired it.")));
	else
		changed = guard_direct_update(catalog, rel, oldtuple, &old, newtuple, &new, u);

	to_status = u->replace[JOB_STATUS] ?
		status_index(catalog, u->values[JOB_STATUS]) : new.status;
	to_phase = !u->replace[JOB_PHASE] ? new.phase :
		u->nulls[JOB_PHASE] ? PHASE_NULL :
		phase_index(catalog, u->values[JOB_PHASE]);

	/* The timestamps are the guard's to keep. */
	set_column(u, JOB_CREATED_AT,
			   job_column(rel, layout, oldtuple, JOB_CREATED_AT, &isnull), false);
	set_column(u, JOB_UPDATED_AT, changed ? now :
			   job_column(rel, layout, oldtuple, JOB_UPDATED_AT, &isnull), false);
	set_column(u, JOB_STATUS_CHANGED_AT,
			   to_status != old.status || to_phase != old.phase ? now :
			   job_column(rel, layout, oldtuple, JOB_STATUS_CHANGED_AT, &isnull), false);
	result = row_with_update(catalog, rel, newtuple, u);
	guarded_row_remember(&oldtuple->t_self,
						 other_before_row_triggers(rel, TRIGGER_TYPE_UPDATE) ? result : NULL);
	return result;
}

static void
guard_delete(Catalog *catalog, Relation rel, HeapTuple oldtuple)
{
	JobRow		old;
	ResolvedEdge edge;

	job_row_read(catalog, rel, oldtuple, &old);
	if (!lifecycle_resolve(EDGE_ACTION, ACT_DELETE, old.status, old.phase,
						   old.migration_type, &edge))
	{
		Request		request;

		request_init(&request, EDGE_ACTION, ACT_DELETE, old.id);
		refuse_request(&request, &old);
	}
}

/*
 * dms_job_guard: BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW on dms_job.
 * Lets a write through only if it is an edge of the lifecycle.
 */
Datum
dms_job_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Catalog    *catalog;
	Relation	rel;
	RowUpdate	u;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_job_guard: not called by trigger manager");
	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		elog(ERROR, "dms_job_guard: must be fired before, for each row");

	catalog = catalog_for_relation(trigdata->tg_relation);
	rel = trigdata->tg_relation;
	guard_function = fcinfo->flinfo->fn_oid;
	memset(&u, 0, sizeof(u));

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		return PointerGetDatum(guard_insert(catalog, trigdata->tg_relation,
											trigdata->tg_trigtuple, &u));
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(guard_update(catalog, rel, trigdata->tg_trigtuple,
											trigdata->tg_newtuple, &u));
	guard_delete(catalog, rel, trigdata->tg_trigtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}

/*
 * dms_refuse_truncate: BEFORE TRUNCATE on dms_job and dms_job_failure.  A
 * TRUNCATE would remove jobs (or failures) past the guard and the history.
 */
Datum
dms_refuse_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "dms_refuse_truncate: not called by trigger manager");
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot truncate %s", RelationGetRelationName(trigdata->tg_relation)),
			 errdetail("Migration jobs leave one by one, each with its history row."),
			 errhint("Use dms_delete() for each job.")));
	return PointerGetDatum(NULL);
}
