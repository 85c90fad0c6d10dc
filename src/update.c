/*
 * src/update.c: an action's change of a job's row, made without the executor.
 *
 * An action or event finds the job through its primary key, locks the newest
 * version of the row as an UPDATE would (under READ COMMITTED it waits for a
 * concurrent change and then judges the state that change left; under
 * REPEATABLE READ and SERIALIZABLE a concurrent change is a serialization
 * failure), lets the guard make the new row, writes it, and records the
 * change as the AFTER trigger would.  The rules are the guard's and the
 * history trigger's own functions; only the executor's per-statement set-up,
 * a large share of a transition's cost, is left out.  Direct writes still go
 * through the executor and the triggers.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "miscadmin.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"

#include "job.h"

/* Finds the job's row through the primary key; false if there is none. */
static bool
job_find(Relation rel, int64 job_id, Snapshot snapshot, TupleTableSlot *slot)
{
	Relation	index = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	IndexScanDesc scan;
	ScanKeyData key;
	bool		found;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(job_id));
	scan = index_beginscan(rel, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, slot);
	index_endscan(scan);
	index_close(index, AccessShareLock);
	return found;
}

/* Locks the newest version of the row in slot, as UPDATE does; false if it is gone. */
static bool
job_lock_newest(Relation rel, Snapshot snapshot, TupleTableSlot *slot)
{
	ItemPointerData tid = slot->tts_tid;
	TM_FailureData failure;
	bool		serializable = IsolationUsesXactSnapshot();
	TM_Result	result;

	result = table_tuple_lock(rel, &tid, snapshot, slot, GetCurrentCommandId(false),
							  LockTupleNoKeyExclusive, LockWaitBlock,
							  serializable ? 0 : TUPLE_LOCK_FLAG_FIND_LAST_VERSION,
							  &failure);
	switch (result)
	{
		case TM_Ok:
			return true;
		case TM_Updated:
		case TM_Deleted:
			if (serializable)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent %s",
								result == TM_Updated ? "update" : "delete")));
			if (result == TM_Deleted)
				return false;
			elog(ERROR, "unexpected concurrent update of a migration job");
			break;
		case TM_SelfModified:
			elog(ERROR, "migration job changed by a later command of this transaction");
			break;
		default:
			elog(ERROR, "unexpected result %d locking a migration job", (int) result);
	}
	return false;
}

/* Inserts index entries for a new row version that is not heap-only. */
static void
job_index_insert(Relation rel, HeapTuple tuple)
{
	ResultRelInfo *info;
	Datum		values[Natts_job];
	bool		nulls[Natts_job];

	if (HeapTupleIsHeapOnly(tuple))
		return;
	info = makeNode(ResultRelInfo);
	InitResultRelInfo(info, rel, 1, NULL, 0);
	ExecOpenIndices(info, false);
	heap_deform_tuple(tuple, RelationGetDescr(rel), values, nulls);
	for (int i = 0; i < info->ri_NumIndices; i++)
	{
		IndexInfo  *index = info->ri_IndexRelationInfo[i];
		Datum		keys[INDEX_MAX_KEYS];
		bool		key_nulls[INDEX_MAX_KEYS];

		if (index->ii_Expressions != NIL || index->ii_Predicate != NIL)
			elog(ERROR, "dms_job has an index on expressions, which dms_lifecycle cannot keep");
		for (int k = 0; k < index->ii_NumIndexAttrs; k++)
		{
			keys[k] = values[index->ii_IndexAttrNumbers[k] - 1];
			key_nulls[k] = nulls[index->ii_IndexAttrNumbers[k] - 1];
		}
		index_insert(info->ri_IndexRelationDescs[i], keys, key_nulls, &tuple->t_self, rel,
					 index->ii_Unique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, false, index);
	}
	ExecCloseIndices(info);
}

/*
 * Applies the request to its job and returns a column of the new row
 * (Anum_job_status, Anum_job_phase).  Raises P0002 if the job does not exist.
 */
Datum
job_change(Catalog *catalog, Request *request, int result_column)
{
	volatile Datum result = (Datum) 0;

	/* what the executor would say of the UPDATE, on a standby for instance */
	PreventCommandIfReadOnly("UPDATE");
	PreventCommandIfParallelMode("UPDATE");

	request_push(request);
	PG_TRY();
	{
		Relation	rel;
		TupleDesc	desc;
		TupleTableSlot *slot;
		Snapshot	snapshot;
		HeapTuple	oldtuple,
					newtuple;
		bool		isnull;

		/* see this transaction's earlier changes, as a new statement would */
		CommandCounterIncrement();
		snapshot = RegisterSnapshot(GetTransactionSnapshot());
		rel = table_open(catalog->job_relid, RowExclusiveLock);
		desc = RelationGetDescr(rel);
		slot = table_slot_create(rel, NULL);

		if (!job_find(rel, request->job_id, snapshot, slot) ||
			!job_lock_newest(rel, snapshot, slot))
			report_job_missing(request->job_id);

		oldtuple = ExecCopySlotHeapTuple(slot);
		newtuple = guard_requested_change(catalog, desc, oldtuple);
		simple_heap_update(rel, &oldtuple->t_self, newtuple);
		job_index_insert(rel, newtuple);

		CommandCounterIncrement();
		job_record_update(catalog, desc, oldtuple, newtuple);
		result = heap_getattr(newtuple, result_column, desc, &isnull);

		ExecDropSingleTupleTableSlot(slot);
		table_close(rel, NoLock);
		UnregisterSnapshot(snapshot);
	}
	PG_FINALLY();
	{
		request_pop(request);
	}
	PG_END_TRY();
	return result;
}
