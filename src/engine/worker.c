/*
 * src/engine/worker.c: a job worker drives one engine-driven job.
 *
 * Each turn reads the job as dms_job says it now and does the next step its
 * status asks for (ENGINE.md section 3); every step can be redone, so a
 * worker that stops anywhere (a crash, a restart of the server, SIGTERM)
 * is replaced by one that goes on from what both servers hold: a database
 * whose copy was interrupted starts over (its snapshot is gone), a database
 * that streams goes on streaming from its slot.  The worker ends when the
 * job has nothing for it to do; the manager starts another when it has.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "internal.h"
#include "lifecycle.h"

static int64 job_id;
static Endpoint *source = NULL;
static List *databases = NIL;	/* EngineDatabase * */
static TimestampTz dump_started = 0;

/*
 * The source's endpoint; NULL with a warning when its server or user mapping
 * is gone (a job whose server was dropped cannot reach its source).
 */
static char *source_problem = NULL;

static Endpoint *
endpoint_or_warning(const char *server)
{
	Endpoint   *volatile ep = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	engine_begin();
	PG_TRY();
	{
		ep = endpoint_for_server(server);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("dms_lifecycle: migration job " INT64_FORMAT ": %s", job_id, edata->message),
				 edata->hint ? errhint("%s", edata->hint) : 0));
		source_problem = MemoryContextStrdup(TopMemoryContext,
											 edata->hint ? psprintf("%s; %s", edata->message, edata->hint)
											 : edata->message);
		MemoryContextSwitchTo(cxt);
		return NULL;
	}
	PG_END_TRY();
	engine_commit();
	return ep;
}

static EngineDatabase *
find_database(const char *name)
{
	ListCell   *lc;

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		if (strcmp(db->name, name) == 0)
			return db;
	}
	return NULL;
}

static bool
job_has_database(EngineJob *job, const char *name)
{
	ListCell   *lc;

	if (job->all_databases)
		return true;
	foreach(lc, job->databases)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * Takes a database's replication down and forgets it; false, with its row
 * kept for the next try, if something could not be dropped (the source
 * unreachable: its slot would keep WAL there for ever).
 */
static bool
forget_database(EngineDatabase *db, bool empty_destination)
{
	copy_release(db);
	if (db->state == DB_PROMOTING && source != NULL)
		fence_lift(source, list_make1(db));
	if (!stream_take_down(job_id, source, db))
		return false;
	if (empty_destination)
	{
		char	   *error = NULL;

		if (!stream_empty_destination(db, &error))
		{
			/* a restart that cannot empty a database fails with why (Failed: restart again) */
			engine_report(job_id, "failed", error, NULL);
			return false;
		}
	}
	engine_forget_database(job_id, db->name);
	databases = list_delete_ptr(databases, db);
	return true;
}

/* Forgets every database; false if one is kept for another try. */
static bool
forget_all(bool empty_destination)
{
	List	   *all = list_copy(databases);
	ListCell   *lc;
	bool		done = true;

	foreach(lc, all)
		if (!forget_database(lfirst(lc), empty_destination))
			done = false;
	if (done)
		job_passfile_remove(job_id);
	return done;
}

/* A completed job: replication taken down, every database done (its row stays, for the record). */
static bool
finish_all(void)
{
	ListCell   *lc;
	bool		done = true;

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		if (db->state == DB_DONE)
			continue;
		if (!stream_take_down(job_id, source, db))
		{
			done = false;		/* kept as it is: the next turn tries again */
			continue;
		}
		db->state = DB_DONE;
		db->lag_bytes = 0;
		db->lag_seconds = 0;
		engine_save_database(job_id, db);
	}
	if (done)
		job_passfile_remove(job_id);
	return done;
}

static bool
is_running(int status)
{
	return status == ST_RUNNING || status == ST_RUNNING_WITH_ERRORS;
}

/* Sets a database's last error (kept across turns, the one before freed). */
void
database_error(EngineDatabase *db, const char *error)
{
	char	   *old = db->last_error;

	db->last_error = error ? MemoryContextStrdup(TopMemoryContext, error) : NULL;
	if (old != NULL && old != error)
		pfree(old);
}

/* A database failed: its replication goes, the job reports it (SPEC 5). */
static void
fail_database(EngineDatabase *db, const char *error)
{
	stream_take_down(job_id, source, db);
	db->state = DB_FAILED;
	database_error(db, error);
	engine_save_database(job_id, db);
	engine_report(job_id, "failed", error, db->name);
}

/* Starting... and Restarting: take down what a previous try made, preflight, record the databases. */
static void
start_job(EngineJob *job)
{
	List	   *found = NIL;
	char	   *error;
	char	   *notes = NULL;
	ListCell   *lc;
	bool		restart = job->status == ST_RESTARTING;

	if (!forget_all(true))
		return;					/* the next turn tries again */
	error = preflight_job(job, source, &found, &notes);
	if (error != NULL)
	{
		engine_report(job_id, "failed", error, NULL);
		return;
	}
	foreach(lc, found)
	{
		EngineDatabase *db = lfirst(lc);

		engine_save_database(job_id, db);
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			databases = lappend(databases, db);
			MemoryContextSwitchTo(old);
		}
	}
	job_passfile_write(job_id, source);
	dump_started = GetCurrentTimestamp();

	/* per database: its destination, publications, slot and snapshot, and schema */
	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		error = NULL;
		if (copy_prepare(job, source, db, &error) == STEP_FAILED)
		{
			fail_database(db, error);
			return;
		}
	}
	engine_report(job_id, restart ? "restarted" : "started", notes, NULL);
}

/*
 * Databases the job dropped leave; databases an edit added join (add), each
 * with a preflight and a copy of its own.
 */
static void
reconcile_databases(EngineJob *job, bool add)
{
	ListCell   *lc;
	List	   *gone = NIL;

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		if (!job_has_database(job, db->name))
			gone = lappend(gone, db);
	}
	foreach(lc, gone)
		forget_database(lfirst(lc), false);
	list_free(gone);

	/* a job whose start failed in preflight has no database to add to */
	if (databases == NIL)
		return;
	foreach(lc, job->databases)
	{
		char	   *name = lfirst(lc);

		if (find_database(name) == NULL && add)
		{
			/* a database an edit added: its own preflight, then its own copy */
			EngineDatabase *db = NULL;
			StringInfoData notes;
			char	   *error;
			MemoryContext old;

			initStringInfo(&notes);
			error = preflight_database(job, source, name, 1, &db, &notes);
			if (error != NULL)
			{
				/* recorded as failed: nothing was made, nothing is tried again */
				old = MemoryContextSwitchTo(TopMemoryContext);
				db = palloc0(sizeof(EngineDatabase));
				db->name = pstrdup(name);
				db->source_server = pstrdup(job->source_server);
				db->lag_bytes = -1;
				db->lag_seconds = -1;
				MemoryContextSwitchTo(old);
				db->state = DB_FAILED;
				database_error(db, error);
			}
			old = MemoryContextSwitchTo(TopMemoryContext);
			databases = lappend(databases, db);
			MemoryContextSwitchTo(old);
			engine_save_database(job_id, db);
			if (error != NULL)
				engine_report(job_id, "failed", error, name);
		}
	}
}


static char *
size_text(int64 bytes)
{
	if (bytes >= 10LL * 1024 * 1024 * 1024)
		return psprintf("%.1f GB", bytes / (1024.0 * 1024 * 1024));
	if (bytes >= 10LL * 1024 * 1024)
		return psprintf("%.1f MB", bytes / (1024.0 * 1024));
	return psprintf("%.1f kB", bytes / 1024.0);
}

/*
 * The full dump of every database that has not been copied yet (or whose
 * copy was interrupted), then dump_completed when the job is in its full
 * dump and every database is copied.
 */
static void
copy_databases(EngineJob *job)
{
	ListCell   *lc;
	int			tables = 0;
	int64		bytes = 0;
	bool		all_copied = true;

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);
		char	   *error = NULL;
		StepResult r;

		if (db->state > DB_INDEXING)
			continue;
		if (dump_started == 0)
			dump_started = GetCurrentTimestamp();
		if (db->exporter == NULL)
		{
			/* a copy interrupted (or a database added by an edit): its snapshot is gone, start over */
			if (db->state != DB_PREFLIGHT)
			{
				stream_take_down(job_id, source, db);
				if (!stream_empty_destination(db, &error))
				{
					fail_database(db, error);
					return;
				}
				db->created_database = false;
				db->destination_oid = InvalidOid;
			}
			r = copy_prepare(job, source, db, &error);
			if (r == STEP_DONE)
				r = copy_data(job, source, db, &error);
		}
		else
			r = copy_data(job, source, db, &error);
		if (r == STEP_INTERRUPTED)
			return;
		if (r == STEP_DONE && job->migration_type == MT_CONTINUOUS &&
			!stream_subscribe(job_id, source, db, &error))
			r = STEP_FAILED;
		if (r == STEP_DONE && job->migration_type == MT_ONE_TIME &&
			!copy_finish(source, db, &error))
			r = STEP_FAILED;
		if (r == STEP_FAILED)
		{
			fail_database(db, error);
			return;
		}
		if (job->migration_type == MT_ONE_TIME)
		{
			stream_take_down(job_id, source, db);
			db->state = DB_DONE;
		}
		else
			db->state = DB_STREAMING;
		engine_save_database(job_id, db);
		if (copy_should_stop(job))
			return;
	}

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		if (db->state != DB_STREAMING && db->state != DB_DONE)
			all_copied = false;
		tables += db->tables_total;
		bytes += db->bytes_total;
	}
	if (all_copied && is_running(job->status) && job->phase == PH_FULL_DUMP)
	{
		char	   *message;

		message = psprintf("copied %d table%s, %s, in %.0f s", tables, tables == 1 ? "" : "s",
						   size_text(bytes),
						   dump_started ? (GetCurrentTimestamp() - dump_started) / 1e6 : 0.0);
		if (job->migration_type == MT_ONE_TIME)
			finish_all();
		engine_report(job_id, "dump_completed", message, NULL);
	}
}

/* CDC: watch every streaming database; errors, failures and their clearing. */
static void
watch_databases(EngineJob *job)
{
	ListCell   *lc;
	bool		any_error = false;
	TimestampTz now = GetCurrentTimestamp();
	long		clear_ms = Max(10000L, 10L * engine_naptime_ms);

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);
		uint64		before = db->errors_seen;
		char	   *previous = db->last_error;

		if (db->state != DB_STREAMING)
			continue;
		stream_observe(job_id, source, db);
		if (db->state == DB_FAILED)
		{
			/* the slot is gone: nothing can resume it */
			fail_database(db, db->last_error);
			continue;
		}
		if (db->errors_seen > before && db->last_error != NULL)
		{
			if (db->error_since == 0)
				db->error_since = db->last_error_at;
			if (job->status == ST_RUNNING ||
				(job->status == ST_RUNNING_WITH_ERRORS &&
				 (previous == NULL || strcmp(previous, db->last_error) != 0)))
				engine_report(job_id, "error",
							  psprintf("database \"%s\": %s", db->name, db->last_error), NULL);
		}
		if (db->error_since != 0)
		{
			if (TimestampDifferenceExceeds(db->last_error_at, now, clear_ms))
				db->error_since = 0;	/* applying again, no new error */
			else if (TimestampDifferenceExceeds(db->error_since, now, engine_error_grace_s * 1000L))
			{
				char	   *error = psprintf("database \"%s\": changes failed to apply for longer than dms_lifecycle.error_grace: %s",
											 db->name, db->last_error);

				stream_set_enabled(job_id, db, false, NULL);
				fail_database(db, error);
				continue;
			}
		}
		if (db->error_since != 0)
			any_error = true;
		engine_save_database(job_id, db);
	}
	if (!any_error && job->status == ST_RUNNING_WITH_ERRORS)
		engine_report(job_id, "errors_cleared", NULL, NULL);
}

/* Whether the apply worker of every database in that state runs (or none does). */
static bool
apply_workers_are(DatabaseState state, bool running)
{
	ListCell   *lc;

	foreach(lc, databases)
		if (((EngineDatabase *) lfirst(lc))->state == state &&
			stream_worker_running(job_id, lfirst(lc)) != running)
			return false;
	return true;
}

static void
stop_job(EngineJob *job)
{
	ListCell   *lc;

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);
		char	   *error = NULL;

		copy_release(db);
		if (db->state == DB_STREAMING && stream_set_enabled(job_id, db, false, &error))
		{
			db->state = DB_STOPPED;
			engine_save_database(job_id, db);
		}
	}
	/* stopped once no apply worker holds a slot any more (the next turn looks again) */
	if (apply_workers_are(DB_STOPPED, false))
		engine_report(job_id, "stopped", NULL, NULL);
}

static void
resume_job(EngineJob *job)
{
	ListCell   *lc;

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);
		char	   *error = NULL;

		if (db->state != DB_STOPPED)
			continue;
		if (!stream_set_enabled(job_id, db, true, &error))
		{
			engine_report(job_id, "failed",
						  psprintf("database \"%s\": could not resume streaming: %s", db->name, error),
						  NULL);
			return;
		}
		db->state = DB_STREAMING;
		engine_save_database(job_id, db);
	}
	/* resumed once every database's apply worker runs again (the next turn looks again) */
	if (apply_workers_are(DB_STREAMING, true))
		engine_report(job_id, "resumed", NULL, NULL);
}

static void
promote(EngineJob *job)
{
	char	   *error = NULL;

	if (promote_job(job, source, databases, &error))
	{
		char	   *message = psprintf("%s", error ? error : "promoted");

		finish_all();
		engine_report(job_id, "promoted", message, NULL);
	}
	else if (error != NULL)
		engine_report(job_id, "failed", error, NULL);
}

/*
 * One turn: the step the job's status asks for.  Returns false when the
 * job has nothing more for this worker.
 */
static bool
job_turn(void)
{
	EngineJob	job;
	ListCell   *lc;
	bool		active = false;

	if (!engine_read_job(job_id, &job) || job.source_server == NULL)
	{
		/* deleted: take down what is left, and forget it (or try again) */
		if (source == NULL && databases != NIL)
		{
			/* its server is gone: what is on the source cannot be reached any more */
			ereport(WARNING,
					(errmsg("dms_lifecycle: migration job " INT64_FORMAT " was deleted and its source server cannot be used: %s",
							job_id, source_problem ? source_problem : "unknown"),
					 errhint("Drop its slots and publications (named dms_" INT64_FORMAT "_<database oid>) on the source by hand.",
							 job_id)));
			while (databases != NIL)
			{
				EngineDatabase *db = linitial(databases);

				stream_take_down(job_id, NULL, db);
				engine_forget_database(job_id, db->name);
				databases = list_delete_first(databases);
			}
			job_passfile_remove(job_id);
			return false;
		}
		return !forget_all(false);
	}
	if (job.status == ST_COMPLETED)
		return !finish_all();
	if (source == NULL)
	{
		source = endpoint_or_warning(job.source_server);
		if (source == NULL)
		{
			/* a start fails with what is wrong with the server; nothing was made */
			if ((job.status == ST_STARTING || job.status == ST_RESTARTING) && databases == NIL)
				engine_report(job_id, "failed", source_problem, NULL);
			return false;
		}
	}

	switch (job.status)
	{
		case ST_STARTING:
		case ST_RESTARTING:
			start_job(&job);
			return true;
		case ST_STOPPING:
			stop_job(&job);
			return true;
		case ST_RESUMING:
			resume_job(&job);
			return true;
		case ST_NOT_STARTED:
		case ST_STOPPED:
			reconcile_databases(&job, false);
			return false;
		default:
			break;
	}
	if (job.status == ST_RUNNING && job.phase == PH_PROMOTE_IN_PROGRESS)
	{
		promote(&job);
		return true;
	}

	/* running, running with errors, failed: in the full dump or CDC */
	reconcile_databases(&job, true);
	copy_databases(&job);
	if (job.phase == PH_CDC && job.status != ST_STOPPING)
		watch_databases(&job);

	foreach(lc, databases)
	{
		EngineDatabase *db = lfirst(lc);

		if (db->state != DB_FAILED && db->state != DB_DONE)
			active = true;
	}
	return active;
}

/*
 * Tells the job about an error its worker did not expect, so that a person
 * sees it in dms_job_overview rather than only in the server log: a start
 * fails with it, a running job goes "Running with errors" (once: the same
 * error again changes nothing).  Nothing here may fail the worker again.
 */
static void
report_unexpected(const char *message)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		EngineJob	job;
		char	   *text = psprintf("the engine met an unexpected error: %s", message);

		if (engine_read_job(job_id, &job))
		{
			if (job.status == ST_STARTING || job.status == ST_RESTARTING)
				engine_report(job_id, "failed", text, NULL);
			else if (job.status == ST_RUNNING && job.phase != PH_PROMOTE_IN_PROGRESS)
				engine_report(job_id, "error", text, NULL);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		AbortOutOfAnyTransaction();
		FlushErrorState();
	}
	PG_END_TRY();
}

void
dms_engine_job_main(Datum arg)
{
	MemoryContext turn_context;

	job_id = DatumGetInt64(arg);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(engine_database,
										 engine_role && engine_role[0] ? engine_role : NULL, 0);
	engine_session = true;
	pgstat_report_appname(psprintf("dms_lifecycle job " INT64_FORMAT, job_id));
	if (!engine_claim_job(job_id))
		proc_exit(0);			/* another worker drives the job */

	databases = engine_read_databases(job_id);
	/* this cluster's endpoint names the engine's role: read it in a transaction, once */
	engine_begin();
	(void) endpoint_local();
	engine_commit();
	{
		EngineJob	job;
		char	   *server = NULL;
		ListCell   *lc;

		/* the job's source, or for a deleted job the one its databases came from */
		if (engine_read_job(job_id, &job) && job.source_server != NULL)
			server = job.source_server;
		else if (databases != NIL)
			server = ((EngineDatabase *) linitial(databases))->source_server;
		if (server != NULL)
			source = endpoint_or_warning(server);
		if (source != NULL && databases != NIL)
			job_passfile_write(job_id, source);
		/* the apply errors seen before this worker are not new */
		foreach(lc, databases)
			stream_errors_known(job_id, lfirst(lc));
	}

	/*
	 * Each turn in a memory context of its own, emptied before the next: a
	 * worker streams for weeks.  What lasts (the databases, the source) is
	 * in TopMemoryContext.
	 */
	turn_context = AllocSetContextCreate(TopMemoryContext, "dms_lifecycle job turn",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		bool		more = false;

		MemoryContextReset(turn_context);
		MemoryContextSwitchTo(turn_context);
		PG_TRY();
		{
			more = job_turn();
		}
		PG_CATCH();
		{
			/*
			 * An error the steps did not expect: logged, told to the job,
			 * then the worker ends after a pause and the manager starts
			 * another, which goes on from what both servers hold.
			 */
			ErrorData  *edata;

			MemoryContextSwitchTo(turn_context);
			edata = CopyErrorData();
			EmitErrorReport();
			AbortOutOfAnyTransaction();
			FlushErrorState();
			MemoryContextSwitchTo(turn_context);
			report_unexpected(edata->message);
			engine_wait(Max(10000L, 10L * engine_naptime_ms));
			proc_exit(1);
		}
		PG_END_TRY();
		if (!more)
			break;
		engine_wait(engine_naptime_ms);
	}
	proc_exit(0);
}
