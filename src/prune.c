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

/* The history rows of jobs deleted or completed before the cutoff: their row ids and jobs. */
static int
prunable_rows(Catalog *catalog, Datum cutoff, ItemPointerData **tids, int64 *jobs)
{
	OwnerSwitch sw;
	int			n;
	int64		last_job = 0;

	*jobs = 0;
	SPI_connect();
	owner_switch_begin(catalog, &sw);
	n = (int) plan_execute(catalog, PLAN_HISTORY_PRUNABLE, &cutoff, NULL, false);
	*tids = MemoryContextAlloc(TopTransactionContext, sizeof(ItemPointerData) * (n + 1));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		int64		job;

		(*tids)[i] = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[i],
														SPI_tuptable->tupdesc, 1, &isnull));
		job = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2,
										  &isnull));
		if (i == 0 || job != last_job)
			(*jobs)++;
		last_job = job;
	}
	owner_switch_end(&sw);
	SPI_finish();
	return n;
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
	Interval   *age;
	Interval	zero = {0};
	Datum		cutoff;
	ItemPointerData *tids;
	int64		jobs;
	volatile int64 removed = 0;
	int			n;

	require_argument(fcinfo, 0, "older_than");
	age = PG_GETARG_INTERVAL_P(0);
	if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(age),
										  IntervalPGetDatum(&zero))) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("older_than must not be negative"),
				 errhint("dms_prune_history('90 days') removes what ended more than 90 days ago.")));
	cutoff = DirectFunctionCall2(timestamptz_mi_interval,
								 TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
								 IntervalPGetDatum(age));

	n = prunable_rows(catalog, cutoff, &tids, &jobs);
	if (n > 0)
	{
		RowWrite	w;
		int			outer_depth = prune_depth;

		row_write_begin(&w, catalog, TABLE_HISTORY, "DELETE");
		prune_depth = trigger_depth();
		PG_TRY();
		{
			for (int i = 0; i < n; i++)
			{
				if (!row_lock(&w, &tids[i], LockTupleExclusive))
					continue;	/* gone meanwhile */
				row_delete(&w);
				removed++;
			}
			row_write_end(&w);
		}
		PG_FINALLY();
		{
			prune_depth = outer_depth;
		}
		PG_END_TRY();
	}
	pfree(tids);

	history_record_prune(catalog, removed, jobs,
						 DatumGetCString(DirectFunctionCall1(timestamptz_out, cutoff)));
	PG_RETURN_INT64(removed);
}
