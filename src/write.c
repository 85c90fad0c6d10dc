/*
 * src/write.c: the one road every row the extension writes takes: PostgreSQL's executor.
 *
 * An action, an event, a creation, a delete, a history row: each is one
 * row written through the executor's single-row entry points, the ones
 * logical replication's apply uses (ExecSimpleRelationInsert, ...Update,
 * ...Delete).  They fire the table's row triggers (the extension's guard and
 * history triggers, and any a user added), check its constraints, compute
 * its generated columns and maintain every index it has, of any kind.  The
 * AFTER triggers, foreign keys among them, fire when the write ends, as at
 * the end of a statement.  What this road leaves out is what a statement
 * adds around its rows: statement-level triggers, RETURNING, row-level
 * security, and the permission checks, the extension writing as the owner
 * of its tables.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "write.h"

void
row_write_begin(RowWrite *w, Catalog *catalog, TableId table, const char *command)
{
	Oid			relid = table == TABLE_JOB ? catalog->job_relid :
		table == TABLE_FAILURE ? catalog->failure_relid : catalog->history_relid;
	RangeTblEntry *rte;

	/* what the executor would say of the statement, on a standby for instance */
	PreventCommandIfReadOnly(command);
	PreventCommandIfParallelMode(command);

	/* see this transaction's earlier changes, as a new statement would */
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());

	memset(w, 0, sizeof(*w));
	w->caller_context = CurrentMemoryContext;
	w->estate = CreateExecutorState();
	MemoryContextSwitchTo(w->estate->es_query_cxt);

	w->rel = table_open(relid, RowExclusiveLock);
	w->layout = table_layout(catalog, table, w->rel);

	rte = makeNode(RangeTblEntry);
	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = w->rel->rd_rel->relkind;
	rte->rellockmode = RowExclusiveLock;
#if PG_VERSION_NUM >= 180000
	ExecInitRangeTable(w->estate, list_make1(rte), NIL, bms_make_singleton(1));
#elif PG_VERSION_NUM >= 160000
	ExecInitRangeTable(w->estate, list_make1(rte), NIL);
#else
	ExecInitRangeTable(w->estate, list_make1(rte));
#endif

	w->info = makeNode(ResultRelInfo);
	InitResultRelInfo(w->info, w->rel, 1, NULL, 0);
	/* the AFTER triggers find it there; ExecCloseResultRelations() closes its indexes */
	w->estate->es_opened_result_relations = list_make1(w->info);
	w->estate->es_output_cid = GetCurrentCommandId(true);
	w->estate->es_snapshot = GetActiveSnapshot();
	ExecOpenIndices(w->info, false);
#if PG_VERSION_NUM >= 160000
	EvalPlanQualInit(&w->epq, w->estate, NULL, NIL, -1, NIL);
#else
	EvalPlanQualInit(&w->epq, w->estate, NULL, NIL, -1);
#endif

	w->found = table_slot_create(w->rel, &w->estate->es_tupleTable);
	w->row = ExecInitExtraTupleSlot(w->estate, RelationGetDescr(w->rel), &TTSOpsVirtual);

	AfterTriggerBeginQuery();
}

void
row_write_end(RowWrite *w)
{
	AfterTriggerEndQuery(w->estate);
	EvalPlanQualEnd(&w->epq);
	ExecCloseResultRelations(w->estate);
	ExecResetTupleTable(w->estate->es_tupleTable, false);
	table_close(w->rel, NoLock);	/* the lock stays to the end of the transaction */
	MemoryContextSwitchTo(w->caller_context);
	FreeExecutorState(w->estate);
	PopActiveSnapshot();
}

/* The index of the table's primary key, which must be on the job id. */
static Relation
job_key_index(RowWrite *w)
{
	for (int i = 0; i < w->info->ri_NumIndices; i++)
	{
		Relation	index = w->info->ri_IndexRelationDescs[i];

		if (index->rd_index->indisprimary && index->rd_index->indnkeyatts == 1 &&
			index->rd_index->indkey.values[0] == w->layout->attnum[JOB_ID])
			return index;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table dms_job has no primary key on its column \"id\""),
			 errhint("dms_lifecycle finds jobs through that key: add it back.")));
	return NULL;				/* keep compiler quiet */
}

/*
 * Finds a job through the primary key and locks the newest version of its
 * row, as UPDATE does: under READ COMMITTED it waits for a concurrent change
 * and then sees the state that change left; under REPEATABLE READ and
 * SERIALIZABLE a concurrent change is a serialization failure.
 */
bool
row_find_job(RowWrite *w, int64 job_id, LockTupleMode mode)
{
	Relation	index = job_key_index(w);
	Snapshot	snapshot = w->estate->es_snapshot;
	IndexScanDesc scan;
	ScanKeyData key;
	TM_FailureData failure;
	bool		serializable = IsolationUsesXactSnapshot();
	bool		found;
	TM_Result	result;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(job_id));
#if PG_VERSION_NUM >= 180000
	scan = index_beginscan(w->rel, index, snapshot, NULL, 1, 0);
#else
	scan = index_beginscan(w->rel, index, snapshot, 1, 0);
#endif
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, ForwardScanDirection, w->found);
	index_endscan(scan);
	if (!found)
		return false;

	result = table_tuple_lock(w->rel, &w->found->tts_tid, snapshot, w->found,
							  w->estate->es_output_cid, mode, LockWaitBlock,
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
			return false;		/* deleted while we waited */
		case TM_SelfModified:
			ereport(ERROR,
					(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
					 errmsg("migration job " INT64_FORMAT " was already changed by an operation triggered by the current command",
							job_id),
					 errhint("A trigger must not change the job whose change fired it.")));
			break;
		default:
			elog(ERROR, "unexpected result %d locking migration job " INT64_FORMAT,
				 (int) result, job_id);
	}
	return false;
}

void
row_new(RowWrite *w)
{
	TupleTableSlot *row = w->row;

	ExecClearTuple(row);
	for (int i = 0; i < row->tts_tupleDescriptor->natts; i++)
	{
		row->tts_values[i] = (Datum) 0;
		row->tts_isnull[i] = true;
	}
	ExecStoreVirtualTuple(row);
}

void
row_from_found(RowWrite *w)
{
	ExecCopySlot(w->row, w->found);
}

void
row_set(RowWrite *w, int column, Datum value, bool isnull)
{
	AttrNumber	attnum = w->layout->attnum[column];

	w->row->tts_values[attnum - 1] = value;
	w->row->tts_isnull[attnum - 1] = isnull;
}

Datum
row_get(TupleTableSlot *slot, const TableLayout *layout, int column, bool *isnull)
{
	return slot_getattr(slot, layout->attnum[column], isnull);
}

/*
 * Gives each column the extension does not fill its default, as INSERT
 * does: the identity, and every column a user added.
 */
static void
row_fill_defaults(RowWrite *w)
{
	TupleDesc	desc = RelationGetDescr(w->rel);
	int			n = w->layout->ndefaulted;
	AttrNumber *attnums = palloc(sizeof(AttrNumber) * (n + 1));
	Oid		   *identity = palloc(sizeof(Oid) * (n + 1));

	/* a default may run user code, which may look the layout up again */
	memcpy(attnums, w->layout->defaulted, sizeof(AttrNumber) * n);
	memcpy(identity, w->layout->identity, sizeof(Oid) * n);

	for (int i = 0; i < n; i++)
	{
		AttrNumber	attnum = attnums[i];
		Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
		Datum		value = (Datum) 0;
		bool		isnull = true;

		if (OidIsValid(identity[i]))
		{
			value = Int64GetDatum(nextval_internal(identity[i], false));
			isnull = false;
		}
		else
		{
			Expr	   *expr = (Expr *) build_column_default(w->rel, attnum);

			if (expr != NULL)
			{
				ExprState  *state = ExecPrepareExpr(expr, w->estate);
				ExprContext *econtext = GetPerTupleExprContext(w->estate);

				value = ExecEvalExprSwitchContext(state, econtext, &isnull);
				if (!isnull)
					value = datumCopy(value, att->attbyval, att->attlen);
			}
		}
		w->row->tts_values[attnum - 1] = value;
		w->row->tts_isnull[attnum - 1] = isnull;
	}
}

bool
row_insert(RowWrite *w)
{
	row_fill_defaults(w);
	ItemPointerSetInvalid(&w->row->tts_tid);
	ExecSimpleRelationInsert(w->info, w->estate, w->row);
	return ItemPointerIsValid(&w->row->tts_tid);
}

void
row_update(RowWrite *w)
{
	ExecSimpleRelationUpdate(w->info, w->estate, &w->epq, w->found, w->row);
}

void
row_delete(RowWrite *w)
{
	ExecSimpleRelationDelete(w->info, w->estate, &w->epq, w->found);
}
