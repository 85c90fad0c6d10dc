/*
 * src/actions.c: the operator actions and dms_report(): each names its edge and lets the guard apply it.
 *
 * Every call is one change of the job's row (src/change.c): the row is
 * locked, the guard sees its current state (after waiting for a concurrent
 * call, the state that call left) and applies the edge or refuses.  A refused
 * call raises an error, so nothing it did stays.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"

#include "engine.h"
#include "job.h"

PG_FUNCTION_INFO_V1(dms_create_job);
PG_FUNCTION_INFO_V1(dms_start);
PG_FUNCTION_INFO_V1(dms_stop);
PG_FUNCTION_INFO_V1(dms_resume);
PG_FUNCTION_INFO_V1(dms_restart);
PG_FUNCTION_INFO_V1(dms_promote);
PG_FUNCTION_INFO_V1(dms_delete);
PG_FUNCTION_INFO_V1(dms_set_dump_parallelism);
PG_FUNCTION_INFO_V1(dms_add_database);
PG_FUNCTION_INFO_V1(dms_remove_database);
PG_FUNCTION_INFO_V1(dms_report);

/* See src/engine.h: set by the engine worker in its own sessions. */
bool		engine_session = false;

/* Applies a request to its job and returns the job's status after it and its follow-up. */
static Datum
job_apply(FunctionCallInfo fcinfo, Request *request)
{
	Catalog    *catalog = catalog_for_function(fcinfo);

	job_change(catalog, request);
	return ObjectIdGetDatum(catalog->status_oids[request->result_status]);
}

static Datum
action_apply(FunctionCallInfo fcinfo, JobAction action)
{
	Request		request;

	require_argument(fcinfo, 0, "job_id");
	request_init(&request, EDGE_ACTION, action, PG_GETARG_INT64(0));
	return job_apply(fcinfo, &request);
}

/*
 * dms_create_job(name, migration_type, databases, dump_parallelism,
 * source_server, destination_server): a new job, "Not started".  With a
 * source server the built-in engine drives it; the guard checks the server
 * as the caller (it exists, is of dms_lifecycle_connection, and the caller
 * may use it).  A database still at 1.0 declares the first four arguments
 * only.
 */
Datum
dms_create_job(PG_FUNCTION_ARGS)
{
	Catalog    *catalog = catalog_for_function(fcinfo);
	NewJob		job;
	bool		created;
	Datum		id;

	require_argument(fcinfo, 0, "name");
	require_argument(fcinfo, 1, "migration_type");
	require_argument(fcinfo, 3, "dump_parallelism");
	job.name = PG_GETARG_DATUM(0);
	job.migration_type = PG_GETARG_DATUM(1);
	job.databases_null = PG_ARGISNULL(2);
	job.databases = job.databases_null ? (Datum) 0 : PG_GETARG_DATUM(2);
	job.dump_parallelism = PG_GETARG_DATUM(3);
	job.source_server_null = PG_NARGS() < 5 || PG_ARGISNULL(4);
	job.source_server = job.source_server_null ? (Datum) 0 : PG_GETARG_DATUM(4);
	job.destination_server_null = PG_NARGS() < 6 || PG_ARGISNULL(5);
	job.destination_server = job.destination_server_null ? (Datum) 0 : PG_GETARG_DATUM(5);
	id = job_create(catalog, &job, &created);
	if (!created)
		PG_RETURN_NULL();		/* a BEFORE trigger of the user's skipped the row */
	PG_RETURN_DATUM(id);
}

/* dms_start(job_id): Not started -> Starting... */
Datum
dms_start(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(action_apply(fcinfo, ACT_START));
}

/* dms_stop(job_id): Running or Running with errors -> Stopping... */
Datum
dms_stop(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(action_apply(fcinfo, ACT_STOP));
}

/* dms_resume(job_id): Stopped in CDC -> Resuming */
Datum
dms_resume(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(action_apply(fcinfo, ACT_RESUME));
}

/* dms_restart(job_id): -> Restarting, with the pending parallelism and no errors */
Datum
dms_restart(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(action_apply(fcinfo, ACT_RESTART));
}

/* dms_promote(job_id): a job in CDC -> Running (Promote in progress) */
Datum
dms_promote(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(action_apply(fcinfo, ACT_PROMOTE));
}

/* dms_delete(job_id): removes the job; its history stays.  False if a user's trigger skipped it. */
Datum
dms_delete(PG_FUNCTION_ARGS)
{
	Request		request;

	require_argument(fcinfo, 0, "job_id");
	request_init(&request, EDGE_ACTION, ACT_DELETE, PG_GETARG_INT64(0));
	PG_RETURN_BOOL(job_delete(catalog_for_function(fcinfo), &request));
}

/* dms_set_dump_parallelism(job_id, level): an edit, applied now or at the next restart */
Datum
dms_set_dump_parallelism(PG_FUNCTION_ARGS)
{
	Catalog    *catalog = catalog_for_function(fcinfo);
	Request		request;

	require_argument(fcinfo, 0, "job_id");
	require_argument(fcinfo, 1, "level");
	request_init(&request, EDGE_ACTION, ACT_EDIT, PG_GETARG_INT64(0));
	request.edit = EDIT_DUMP_PARALLELISM;
	request.parallelism = parallelism_index(catalog, PG_GETARG_DATUM(1));
	PG_RETURN_DATUM(job_apply(fcinfo, &request));
}

/* An edit of the database list; removing the last failed database may make the job recover. */
static Datum
database_edit(FunctionCallInfo fcinfo, EditKind edit)
{
	Request		request;

	require_argument(fcinfo, 0, "job_id");
	require_argument(fcinfo, 1, "database_name");
	request_init(&request, EDGE_ACTION, ACT_EDIT, PG_GETARG_INT64(0));
	request.edit = edit;
	request.database = text_to_cstring(PG_GETARG_TEXT_PP(1));
	validate_name_text(request.database, "database name");
	return job_apply(fcinfo, &request);
}

/* dms_add_database(job_id, database_name): an edit of a job not started, stopped or failed */
Datum
dms_add_database(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(database_edit(fcinfo, EDIT_ADD_DATABASE));
}

/* dms_remove_database(job_id, database_name): the edit that also drops the database's failure */
Datum
dms_remove_database(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(database_edit(fcinfo, EDIT_REMOVE_DATABASE));
}

/*
 * A database failed: its failure row is written, and its trigger fails the
 * job.  Returns the job's status after it (a trigger of the user's may have
 * skipped the change).
 */
static Datum
report_database_failure(Catalog *catalog, Request *request)
{
	Request		frame;
	JobRow		job;

	request_init_actor(&frame);
	request_push(&frame);
	PG_TRY();
	{
		/* the job first, locked: a missing job is P0002, not a foreign key's error */
		if (!job_read(catalog, request->job_id, PLAN_JOB_LOCK, false, &job))
			report_job_missing(request->job_id);
		if (!engine_session)
		{
			bool		found;
			char	   *server = job_source_server(catalog, request->job_id, &found);

			if (server != NULL)
				refuse_engine_driven_report(request->job_id, server);
		}
		failure_record(catalog, request->job_id, request->database, request->message);
	}
	PG_FINALLY();
	{
		request_pop(&frame);
	}
	PG_END_TRY();
	if (!job_read(catalog, request->job_id, PLAN_JOB_FETCH, false, &job))
		report_job_missing(request->job_id);
	return ObjectIdGetDatum(catalog->status_oids[job.status]);
}

/*
 * dms_report(job_id, event, message, database_name): the migration engine
 * reports an event.  "error" and "failed" need a message; "failed" with a
 * database_name is that database's failure.  An engine-driven job (one with
 * a source server) takes events only from the built-in engine's sessions.
 */
Datum
dms_report(PG_FUNCTION_ARGS)
{
	Catalog    *catalog = catalog_for_function(fcinfo);
	Request		request;
	int			event;

	require_argument(fcinfo, 0, "job_id");
	require_argument(fcinfo, 1, "event");
	event = event_index(catalog, PG_GETARG_DATUM(1));
	request_init(&request, EDGE_EVENT, event, PG_GETARG_INT64(0));
	request.reported = true;	/* only the engine reports for a job it drives */
	if (!PG_ARGISNULL(2))
		request.message = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(3))
	{
		request.database = text_to_cstring(PG_GETARG_TEXT_PP(3));
		if (event != EV_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a database_name is reported only with the event \"failed\""),
					 errdetail("The event was \"%s\".", event_names[event])));
		validate_name_text(request.database, "database name");
	}
	if (lifecycle_event_needs_message(event) &&
		message_is_blank(request.message))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the event \"%s\" needs a message saying what went wrong",
						event_names[event])));

	if (request.database != NULL)
		PG_RETURN_DATUM(report_database_failure(catalog, &request));
	PG_RETURN_DATUM(job_apply(fcinfo, &request));
}
