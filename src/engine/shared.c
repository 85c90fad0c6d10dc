/*
 * src/engine/shared.c: what the engine's processes share.
 *
 *   - the manager's latch, set when a job changes, so that an action is
 *     picked up at once rather than at the next naptime;
 *   - which process drives which job: one manager, one worker per job, even
 *     when a manager or the launcher restarts while the others live on;
 *   - the last apply error of each of the engine's subscriptions: PostgreSQL
 *     counts apply errors (pg_stat_subscription_stats) but keeps their text
 *     only in the server log, so the apply workers, which load this library
 *     too, leave it here from emit_log_hook.
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "replication/worker_internal.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#include "internal.h"

#define APPLY_ERROR_SLOTS 64
#define APPLY_ERROR_LENGTH 1024

typedef struct ApplyError
{
	Oid			subid;
	uint64		count;
	TimestampTz at;
	char		message[APPLY_ERROR_LENGTH];
} ApplyError;

#define WORKER_SLOTS 256

/* which process drives which job: one worker per job, one manager */
typedef struct WorkerSlot
{
	int64		job_id;
	pid_t		pid;
} WorkerSlot;

typedef struct EngineShared
{
	slock_t		mutex;			/* the latch and the apply errors */
	LWLock	   *registry;		/* manager_pid and workers */
	Latch	   *manager_latch;
	pid_t		manager_pid;
	WorkerSlot	workers[WORKER_SLOTS];
	ApplyError	errors[APPLY_ERROR_SLOTS];
} EngineShared;

static EngineShared *shared = NULL;
static shmem_request_hook_type previous_request = NULL;
static shmem_startup_hook_type previous_startup = NULL;
static emit_log_hook_type previous_emit_log = NULL;
static bool wake_registered = false;
static bool wake_pending = false;

static void
engine_shmem_request(void)
{
	if (previous_request)
		previous_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(EngineShared)));
	RequestNamedLWLockTranche("dms_lifecycle", 1);
}

static void
engine_shmem_startup(void)
{
	bool		found;

	if (previous_startup)
		previous_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("dms_lifecycle engine", sizeof(EngineShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(EngineShared));
		SpinLockInit(&shared->mutex);
		shared->registry = &(GetNamedLWLockTranche("dms_lifecycle"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * In an apply worker of one of the engine's subscriptions (named dms_...),
 * keep the text of an error it raises.  Nothing here may raise an error.
 */
static void
engine_emit_log(ErrorData *edata)
{
	if (previous_emit_log)
		previous_emit_log(edata);
	if (shared == NULL || edata->elevel < ERROR || MyLogicalRepWorker == NULL ||
		MySubscription == NULL || MySubscription->name == NULL ||
		strncmp(MySubscription->name, "dms_", 4) != 0 || edata->message == NULL)
		return;

	SpinLockAcquire(&shared->mutex);
	{
		ApplyError *slot = NULL;
		ApplyError *oldest = &shared->errors[0];

		for (int i = 0; i < APPLY_ERROR_SLOTS; i++)
		{
			ApplyError *e = &shared->errors[i];

			if (e->subid == MySubscription->oid)
			{
				slot = e;
				break;
			}
			if (e->at < oldest->at)
				oldest = e;
		}
		if (slot == NULL)
		{
			slot = oldest;
			slot->subid = MySubscription->oid;
			slot->count = 0;
		}
		slot->count++;
		slot->at = GetCurrentTimestamp();
		strlcpy(slot->message, edata->message, APPLY_ERROR_LENGTH);
	}
	SpinLockRelease(&shared->mutex);
}

void
engine_shmem_init(void)
{
	previous_request = shmem_request_hook;
	shmem_request_hook = engine_shmem_request;
	previous_startup = shmem_startup_hook;
	shmem_startup_hook = engine_shmem_startup;
	previous_emit_log = emit_log_hook;
	emit_log_hook = engine_emit_log;
}

/* The last apply error of a subscription: false if it never had one. */
bool
engine_apply_error(Oid subid, uint64 *count, TimestampTz *at, char *message, int size)
{
	bool		found = false;

	if (shared == NULL)
		return false;
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < APPLY_ERROR_SLOTS; i++)
	{
		ApplyError *e = &shared->errors[i];

		if (e->subid == subid && e->count > 0)
		{
			*count = e->count;
			*at = e->at;
			strlcpy(message, e->message, size);
			found = true;
			break;
		}
	}
	SpinLockRelease(&shared->mutex);
	return found;
}

void
engine_forget_apply_errors(Oid subid)
{
	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	for (int i = 0; i < APPLY_ERROR_SLOTS; i++)
		if (shared->errors[i].subid == subid)
			memset(&shared->errors[i], 0, sizeof(ApplyError));
	SpinLockRelease(&shared->mutex);
}

/* Whether a process of this server still runs with that pid (not across a reuse of the pid, almost). */
static bool
process_alive(pid_t pid)
{
	return pid != 0 && BackendPidGetProcWithLock(pid) != NULL;
}

static void
manager_leave(int code, Datum arg)
{
	LWLockAcquire(shared->registry, LW_EXCLUSIVE);
	SpinLockAcquire(&shared->mutex);
	if (shared->manager_pid == MyProcPid)
	{
		shared->manager_pid = 0;
		shared->manager_latch = NULL;
	}
	SpinLockRelease(&shared->mutex);
	LWLockRelease(shared->registry);
}

/*
 * The manager announces itself, so that changes of jobs wake it; false if
 * another manager runs (a launcher restarted while its manager lived on).
 */
bool
engine_set_manager(void)
{
	pid_t		other;

	LWLockAcquire(shared->registry, LW_EXCLUSIVE);
	LWLockAcquire(ProcArrayLock, LW_SHARED);
	other = shared->manager_pid;
	if (other == 0 || other == MyProcPid || !process_alive(other))
	{
		shared->manager_pid = MyProcPid;
		SpinLockAcquire(&shared->mutex);
		shared->manager_latch = &MyProc->procLatch;
		SpinLockRelease(&shared->mutex);
		other = 0;
	}
	LWLockRelease(ProcArrayLock);
	LWLockRelease(shared->registry);
	if (other == 0)
		before_shmem_exit(manager_leave, (Datum) 0);
	return other == 0;
}

static void
worker_leave(int code, Datum arg)
{
	int64		job_id = DatumGetInt64(arg);

	LWLockAcquire(shared->registry, LW_EXCLUSIVE);
	for (int i = 0; i < WORKER_SLOTS; i++)
		if (shared->workers[i].job_id == job_id && shared->workers[i].pid == MyProcPid)
			shared->workers[i].pid = 0;
	LWLockRelease(shared->registry);
}

/*
 * A job worker claims its job: false if another live worker drives it (a
 * manager that restarted does not know the workers of the one before).
 */
bool
engine_claim_job(int64 job_id)
{
	int			free_slot = -1;
	bool		claimed = true;

	LWLockAcquire(shared->registry, LW_EXCLUSIVE);
	LWLockAcquire(ProcArrayLock, LW_SHARED);
	for (int i = 0; i < WORKER_SLOTS; i++)
	{
		WorkerSlot *w = &shared->workers[i];

		if (w->pid != 0 && !process_alive(w->pid))
			w->pid = 0;
		if (w->pid != 0 && w->job_id == job_id)
			claimed = false;
		if (w->pid == 0 && free_slot < 0)
			free_slot = i;
	}
	if (claimed && free_slot >= 0)
	{
		shared->workers[free_slot].job_id = job_id;
		shared->workers[free_slot].pid = MyProcPid;
	}
	else if (claimed)
	{
		claimed = false;
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("dms_lifecycle: %d migration jobs are driven at once, the most the engine can; migration job " INT64_FORMAT " waits",
						WORKER_SLOTS, job_id)));
	}
	LWLockRelease(ProcArrayLock);
	LWLockRelease(shared->registry);
	if (claimed)
		before_shmem_exit(worker_leave, Int64GetDatum(job_id));
	return claimed;
}

/* Whether a manager runs (the launcher starts one only then). */
bool
engine_manager_alive(void)
{
	bool		alive;

	LWLockAcquire(shared->registry, LW_SHARED);
	LWLockAcquire(ProcArrayLock, LW_SHARED);
	alive = process_alive(shared->manager_pid);
	LWLockRelease(ProcArrayLock);
	LWLockRelease(shared->registry);
	return alive;
}

/* The pid of the live worker that drives a job, 0 if none. */
pid_t
engine_job_worker(int64 job_id)
{
	pid_t		pid = 0;

	LWLockAcquire(shared->registry, LW_SHARED);
	LWLockAcquire(ProcArrayLock, LW_SHARED);
	for (int i = 0; i < WORKER_SLOTS; i++)
		if (shared->workers[i].job_id == job_id && process_alive(shared->workers[i].pid))
			pid = shared->workers[i].pid;
	LWLockRelease(ProcArrayLock);
	LWLockRelease(shared->registry);
	return pid;
}

void
engine_wake_manager(void)
{
	Latch	   *latch;

	if (shared == NULL)
		return;
	SpinLockAcquire(&shared->mutex);
	latch = shared->manager_latch;
	SpinLockRelease(&shared->mutex);
	if (latch != NULL)
		SetLatch(latch);
}

static void
wake_at_commit(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT && wake_pending)
		engine_wake_manager();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
		wake_pending = false;
}

/*
 * A job changed in this transaction: wake the manager when it commits (not
 * before: the manager would not see the change yet).
 */
void
engine_wake_at_commit(void)
{
	if (shared == NULL)
		return;
	if (!wake_registered)
	{
		RegisterXactCallback(wake_at_commit, NULL);
		wake_registered = true;
	}
	wake_pending = true;
}
