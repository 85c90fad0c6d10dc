/*
 * src/engine/launcher.c: the launcher and the manager.
 *
 * The launcher starts with the server and connects to no database: it waits,
 * quietly, until dms_lifecycle.database exists, then keeps a manager running
 * there.  The manager waits until the extension is installed at a version
 * that has the engine's tables, then keeps one job worker running for every
 * engine-driven job with work to do: one whose status asks for something, or
 * whose databases still hold what the engine made.  An action on a job wakes
 * the manager at commit (shared.c), which wakes the job's worker.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "internal.h"

static void
fill_worker(BackgroundWorker *w, const char *function, const char *name, Datum arg)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	w->bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w->bgw_library_name, "dms_lifecycle", BGW_MAXLEN);
	strlcpy(w->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(w->bgw_name, name, BGW_MAXLEN);
	strlcpy(w->bgw_type, "dms_lifecycle engine", BGW_MAXLEN);
	w->bgw_main_arg = arg;
	w->bgw_notify_pid = MyProcPid;
}

void
engine_register_launcher(void)
{
	BackgroundWorker w;

	fill_worker(&w, "dms_engine_launcher_main", "dms_lifecycle launcher", (Datum) 0);
	w.bgw_restart_time = 10;
	w.bgw_notify_pid = 0;
	RegisterBackgroundWorker(&w);
}

/*
 * Waits on the latch for at most timeout_ms; answers SIGHUP and SIGTERM.
 * Returns true if the latch was set (something to look at).
 */
bool
engine_wait(long timeout_ms)
{
	int			rc;

	rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
				   timeout_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
	return (rc & WL_LATCH_SET) != 0;
}

static void
engine_signals(void)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
}

/*
 * Whether a database exists: pg_database is shared, and a process connected
 * to no database reads it with a plain scan, as the autovacuum launcher does.
 */
static bool
database_exists(const char *name)
{
	bool		exists = false;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	(void) GetTransactionSnapshot();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!exists && HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
		exists = strcmp(NameStr(((Form_pg_database) GETSTRUCT(tuple))->datname), name) == 0;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	CommitTransactionCommand();
	return exists;
}

void
dms_engine_launcher_main(Datum arg)
{
	BackgroundWorkerHandle *manager = NULL;

	engine_signals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("dms_lifecycle launcher");

	for (;;)
	{
		pid_t		pid;

		if (manager != NULL && GetBackgroundWorkerPid(manager, &pid) == BGWH_STOPPED)
		{
			/* a manager that ended is not replaced before a naptime has passed */
			manager = NULL;
			engine_wait(engine_naptime_ms);
			continue;
		}
		if (manager == NULL)
		{
			/* a manager of an earlier launcher may live on: then it is the one */
			if (!engine_manager_alive() && database_exists(engine_database))
			{
				BackgroundWorker w;

				fill_worker(&w, "dms_engine_manager_main", "dms_lifecycle manager", (Datum) 0);
				if (!RegisterDynamicBackgroundWorker(&w, &manager))
					ereport(WARNING,
							(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
							 errmsg("dms_lifecycle: no background worker slot is free for the engine's manager"),
							 errhint("Raise max_worker_processes.")));
			}
		}
		/* the manager's exit sets this latch (bgw_notify_pid) */
		engine_wait(manager == NULL ? 10L * engine_naptime_ms : 60000L);
	}
}

/*
 * The extension is ready when it is installed at a version that has the
 * engine's table; until then the manager waits (an older version waits for
 * ALTER EXTENSION UPDATE).
 */
static bool
extension_ready(void)
{
	bool		ready = false;
	int			rc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	rc = SPI_execute("SELECT 1 FROM pg_catalog.pg_extension e "
					 "JOIN pg_catalog.pg_class c ON c.relnamespace = e.extnamespace "
					 "WHERE e.extname = 'dms_lifecycle' AND c.relname = 'dms_job_database' "
					 "AND c.relkind = 'r'", true, 1);
	ready = (rc == SPI_OK_SELECT && SPI_processed == 1);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return ready;
}

typedef struct JobWorker
{
	int64		job_id;
	BackgroundWorkerHandle *handle;
} JobWorker;

/*
 * The engine-driven jobs with work to do: their status asks for something
 * (a failed job whose other databases still copy or stream included), or
 * the engine still holds something of theirs to take down: a deleted job, a
 * completed one, a database an edit removed.
 */
static List *
jobs_with_work(void)
{
	List	   *ids = NIL;
	char	   *schema;
	StringInfoData sql;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	schema = engine_schema();
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT j.id FROM %s.dms_job j WHERE j.source_server IS NOT NULL "
					 "AND (j.status IN ('starting', 'restarting', 'running', 'running_with_errors', "
					 "'stopping', 'resuming') "
					 "OR (j.status = 'failed' AND EXISTS (SELECT 1 FROM %s.dms_job_database d "
					 "WHERE d.job_id = j.id AND d.state NOT IN ('failed', 'done')))) "
					 "UNION SELECT d.job_id FROM %s.dms_job_database d "
					 "LEFT JOIN %s.dms_job j ON j.id = d.job_id "
					 "WHERE j.id IS NULL OR (j.status = 'completed' AND d.state <> 'done') "
					 "OR (j.databases IS NOT NULL AND d.database_name <> ALL (j.databases))",
					 schema, schema, schema, schema);
	if (SPI_execute(sql.data, true, 0) == SPI_OK_SELECT)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
			int64	   *id = palloc(sizeof(int64));

			*id = DatumGetInt64(d);
			ids = lappend(ids, id);
		}
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return ids;
}

void
dms_engine_manager_main(Datum arg)
{
	List	   *workers = NIL;
	bool		warned = false;

	engine_signals();
	BackgroundWorkerInitializeConnection(engine_database, NULL, 0);
	pgstat_report_appname("dms_lifecycle manager");
	if (!engine_set_manager())
		proc_exit(0);			/* another manager runs */

	for (;;)
	{
		List	   *ids;
		ListCell   *lc;
		List	   *alive = NIL;

		if (!extension_ready())
		{
			engine_wait(10L * engine_naptime_ms);
			continue;
		}

		/* forget the workers that ended */
		foreach(lc, workers)
		{
			JobWorker  *jw = lfirst(lc);
			pid_t		pid;

			if (GetBackgroundWorkerPid(jw->handle, &pid) == BGWH_STOPPED)
			{
				pfree(jw->handle);
				pfree(jw);
			}
			else
			{
				PGPROC	   *proc = BackendPidGetProc(pid);

				/* wake it: whatever woke us may concern its job */
				if (proc != NULL)
					SetLatch(&proc->procLatch);
				alive = lappend(alive, jw);
			}
		}
		/* the turn's list replaces the last one, which goes: a manager runs for months */
		list_free(workers);
		workers = alive;

		ids = jobs_with_work();
		foreach(lc, ids)
		{
			int64		id = *(int64 *) lfirst(lc);
			bool		running = false;
			ListCell   *lw;

			foreach(lw, workers)
				if (((JobWorker *) lfirst(lw))->job_id == id)
					running = true;
			if (!running && engine_job_worker(id) != 0)
			{
				/* a worker of an earlier manager: wake it, it reads its job again */
				PGPROC	   *proc = BackendPidGetProc(engine_job_worker(id));

				if (proc != NULL)
					SetLatch(&proc->procLatch);
				running = true;
			}
			if (!running)
			{
				BackgroundWorker w;
				BackgroundWorkerHandle *handle;
				char		name[BGW_MAXLEN];

				snprintf(name, sizeof(name), "dms_lifecycle job " INT64_FORMAT, id);
				fill_worker(&w, "dms_engine_job_main", name, Int64GetDatum(id));
				if (RegisterDynamicBackgroundWorker(&w, &handle))
				{
					MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
					JobWorker  *jw = palloc(sizeof(JobWorker));

					jw->job_id = id;
					jw->handle = handle;
					workers = lappend(workers, jw);
					MemoryContextSwitchTo(old);
					warned = false;
				}
				else if (!warned)
				{
					ereport(WARNING,
							(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
							 errmsg("dms_lifecycle: no background worker slot is free for migration job " INT64_FORMAT, id),
							 errhint("Raise max_worker_processes; the job waits until a slot is free.")));
					warned = true;
				}
			}
		}
		list_free_deep(ids);
		engine_wait(engine_naptime_ms);
	}
}
