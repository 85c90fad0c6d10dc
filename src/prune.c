/*
 * src/prune.c: dms_prune_history(), the history's one way out besides TRUNCATE.
 *
 * The history keeps the rows of deleted and completed jobs forever unless
 * they are pruned: the rows of jobs deleted or completed before an age go,
 * through the executor, and one history row (job id 0) says so.  Nothing
 * else leaves the history; only the extension's owner, or a role it grants
 * EXECUTE on the function, may prune.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "job.h"
#include "write.h"

PG_FUNCTION_INFO_V1(dms_prune_history);

/* The trigger depth of the deletes under way, or -1: the append-only trigger lets them by. */
static int	prune_depth = -1;

bool
history_pruning(void)
{
	return prune_depth >= 0 && trigger_depth() == prune_depth + 1;
}

#define PRUNE_BATCH 10000

/*
 * Removes the history rows of jobs that ended before the cutoff, in batches
 * read (as the tables' owner: the caller may only have the function) by a
 * cursor, and deleted one by one through the executor as the caller.
 * Counts the rows really removed (a user's trigger may skip some) and
 * their jobs.
 */
static int64
prune_rows(Catalog *catalog, Datum cutoff, int64 *jobs)
{
	OwnerSwitch sw;
	Portal		cursor;
	RowWrite	w;
	int64		removed = 0;
	int64		last_job = 0;
	ItemPointerData *tids = palloc(sizeof(ItemPointerData) * PRUNE_BATCH);
	int64	   *job_ids = palloc(sizeof(int64) * PRUNE_BATCH);

	*jobs = 0;
	SPI_connect();
	owner_switch_begin(catalog, &sw);
	cursor = SPI_cursor_open(NULL, catalog_plan(catalog, PLAN_HISTORY_PRUNABLE), &cutoff, " ",
							 false);
	owner_switch_end(&sw);

	row_write_begin(&w, catalog, TABLE_HISTORY, "DELETE");
	for (;;)
	{
		uint64		n;

		owner_switch_begin(catalog, &sw);
		SPI_cursor_fetch(cursor, true, PRUNE_BATCH);
		owner_switch_end(&sw);
		n = SPI_processed;
		if (n == 0)
			break;
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;

			tids[i] = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[i],
																   SPI_tuptable->tupdesc, 1,
																   &isnull));
			job_ids[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													 SPI_tuptable->tupdesc, 2, &isnull));
		}
		SPI_freetuptable(SPI_tuptable);
		for (uint64 i = 0; i < n; i++)
		{
			if (!row_lock(&w, &tids[i], LockTupleExclusive))
				continue;		/* gone meanwhile */
			row_delete(&w);
			if (!row_changed_since(w.rel, &w.found->tts_tid))
				continue;		/* a BEFORE trigger of the user's kept it */
			removed++;
			if (removed == 1 || job_ids[i] != last_job)
				(*jobs)++;
			last_job = job_ids[i];
		}
	}
	row_write_end(&w);
	SPI_cursor_close(cursor);
	SPI_finish();
	return removed;
}

/*
 * dms_prune_history(older_than): removes the history rows of the jobs that
 * were deleted or completed more than older_than ago, and nothing else;
 * returns how many, and leaves a history row saying so.
 */
Datum
dms_prune_history(PG_FUNCTION_ARGS)
{
	Catalog    *catalog = catalog_for_function(fcinfo);
	Datum		now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	Datum		cutoff;
	int64		jobs;
	volatile int64 removed = 0;
	int			outer_depth = prune_depth;

	require_argument(fcinfo, 0, "older_than");
	if (prune_depth >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("dms_prune_history cannot run while it is pruning"),
				 errdetail("A trigger called it from inside a pruning.")));
	cutoff = DirectFunctionCall2(timestamptz_mi_interval, now, PG_GETARG_DATUM(0));
	/* compared as times, not as intervals: a month is not always 30 days */
	if (DatumGetBool(DirectFunctionCall2(timestamp_gt, cutoff, now)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errhint("dms_prune_history('90 days') removes what ended more than 90 days ago.")));

	prune_depth = trigger_depth();
	PG_TRY();
	{
		removed = prune_rows(catalog, cutoff, &jobs);
	}
	PG_FINALLY();
	{
		prune_depth = outer_depth;
	}
	PG_END_TRY();

	history_record_prune(catalog, removed, jobs,
						 DatumGetCString(DirectFunctionCall1(timestamptz_out, cutoff)));
	PG_RETURN_INT64(removed);
}
