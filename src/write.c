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
 * security, and the permission checks on the table: the extension's
 * functions are the check, and they write as the role that called them.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_am.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#if PG_VERSION_NUM >= 160000
#include "parser/parse_relation.h"
#endif
#include "rewrite/rewriteHandler.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
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
	/*
	 * The columns a write sets are marked in the range table's entry, as a
	 * statement marks those of its SET list: UPDATE OF column triggers and
	 * the executor's hints read them there.
	 */
#if PG_VERSION_NUM >= 160000
	{
		List	   *perminfos = NIL;

		w->perminfo = addRTEPermissionInfo(&perminfos, rte);
#if PG_VERSION_NUM >= 180000
		ExecInitRangeTable(w->estate, list_make1(rte), perminfos, bms_make_singleton(1));
#else
		ExecInitRangeTable(w->estate, list_make1(rte), perminfos);
#endif
	}
#else
	w->rte = rte;
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

/*
 * The index of the table's primary key, which must be on the given known
 * columns, in that order: the extension finds its rows through it.
 */
static Relation
key_index(RowWrite *w, const char *table, int ncolumns, const int *columns, const char *names)
{
	for (int i = 0; i < w->info->ri_NumIndices; i++)
	{
		Relation	index = w->info->ri_IndexRelationDescs[i];
		bool		matches = index->rd_index->indisprimary &&
			index->rd_index->indnkeyatts == ncolumns;

		for (int k = 0; k < ncolumns && matches; k++)
			matches = index->rd_index->indkey.values[k] == w->layout->attnum[columns[k]];
		if (matches)
			return index;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table %s has no primary key on %s", table, names),
			 errhint("dms_lifecycle finds its rows through that key: add it back.")));
	return NULL;				/* keep compiler quiet */
}

/* Finds the rows an index scan with these keys returns; their row ids go to *tids. */
static int
row_scan(RowWrite *w, Relation index, int nkeys, ScanKey keys, ItemPointerData **tids)
{
	IndexScanDesc scan;
	int			n = 0,
				size = 4;

	*tids = palloc(sizeof(ItemPointerData) * size);
#if PG_VERSION_NUM >= 180000
	scan = index_beginscan(w->rel, index, w->estate->es_snapshot, NULL, nkeys, 0);
#else
	scan = index_beginscan(w->rel, index, w->estate->es_snapshot, nkeys, 0);
#endif
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (index_getnext_slot(scan, ForwardScanDirection, w->found))
	{
		if (n == size)
			*tids = repalloc(*tids, sizeof(ItemPointerData) * (size *= 2));
		(*tids)[n++] = w->found->tts_tid;
	}
	index_endscan(scan);
	return n;
}

/*
 * Locks the newest version of a row found by a scan, as UPDATE or DELETE
 * does: under READ COMMITTED it waits for a concurrent change and then
 * takes the version that change left; under REPEATABLE READ and
 * SERIALIZABLE a concurrent change is a serialization failure.  Returns
 * false if the row was deleted meanwhile.  The row is in w->found.
 */
bool
row_lock(RowWrite *w, ItemPointer tid, LockTupleMode mode)
{
	TM_FailureData failure;
	bool		serializable = IsolationUsesXactSnapshot();
	ItemPointerData target = *tid;
	TM_Result	result;

	result = table_tuple_lock(w->rel, &target, w->estate->es_snapshot, w->found,
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
					 errmsg("a row of %s was already changed by an operation triggered by the current command",
							RelationGetRelationName(w->rel)),
					 errhint("A trigger must not change the row whose change fired it.")));
			break;
		default:
			elog(ERROR, "unexpected result %d locking a row of %s", (int) result,
				 RelationGetRelationName(w->rel));
	}
	return false;
}

/*
 * Finds a job through its primary key and locks the newest version of its
 * row; false if there is none.  A version reached by following the row's
 * updates must still be that job: an UPDATE of the id moves the row away.
 */
bool
row_find_job(RowWrite *w, int64 job_id, LockTupleMode mode)
{
	static const int columns[] = {JOB_ID};
	Relation	index = key_index(w, "dms_job", 1, columns, "\"id\"");
	ScanKeyData key;
	ItemPointerData *tids;
	bool		isnull;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(job_id));
	if (row_scan(w, index, 1, &key, &tids) == 0 || !row_lock(w, &tids[0], mode))
		return false;
	return DatumGetInt64(row_get(w->found, w->layout, JOB_ID, &isnull)) == job_id && !isnull;
}

/* The failure rows of a job, or of one of its databases: their row ids go to *tids. */
int
row_find_failures(RowWrite *w, int64 job_id, const char *database, ItemPointerData **tids)
{
	static const int columns[] = {FAILURE_JOB_ID, FAILURE_DATABASE_NAME};
	Relation	index = key_index(w, "dms_job_failure", 2, columns,
								  "(\"job_id\", \"database_name\")");
	ScanKeyData keys[2];

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(job_id));
	if (database == NULL)
		return row_scan(w, index, 1, keys, tids);
	/* compared in the key's own collation, as the index orders it */
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[1], F_TEXTEQ, CStringGetTextDatum(database));
	return row_scan(w, index, 2, keys, tids);
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

/* Marks a column as one the write sets (its SET list, or its INSERT's columns). */
void
row_mark_set(RowWrite *w, int column)
{
	int			member;

	if (w->layout->attnum[column] == InvalidAttrNumber)
		return;					/* a column the database at an earlier version lacks */
	member = w->layout->attnum[column] - FirstLowInvalidHeapAttributeNumber;

#if PG_VERSION_NUM >= 160000
	w->perminfo->insertedCols = bms_add_member(w->perminfo->insertedCols, member);
	w->perminfo->updatedCols = bms_add_member(w->perminfo->updatedCols, member);
#else
	w->rte->insertedCols = bms_add_member(w->rte->insertedCols, member);
	w->rte->updatedCols = bms_add_member(w->rte->updatedCols, member);
#endif
}

void
row_set(RowWrite *w, int column, Datum value, bool isnull)
{
	AttrNumber	attnum = w->layout->attnum[column];

	if (attnum == InvalidAttrNumber)
	{
		/* the database is at an earlier version: NULL is what it would hold */
		if (!isnull)
			column_refuse_missing(w->layout, column);
		return;
	}
	w->row->tts_values[attnum - 1] = value;
	w->row->tts_isnull[attnum - 1] = isnull;
	row_mark_set(w, column);
}

Datum
row_get(TupleTableSlot *slot, const TableLayout *layout, int column, bool *isnull)
{
	if (layout->attnum[column] == InvalidAttrNumber)
	{
		*isnull = true;			/* a column the database at an earlier version lacks */
		return (Datum) 0;
	}
	return slot_getattr(slot, layout->attnum[column], isnull);
}

/*
 * A serial column's default, nextval() of the sequence the column owns,
 * takes its value without the caller's USAGE on that sequence, as an
 * identity column does: a bookkeeping column that a user adds must not
 * break the calls of operators and engines.  Other defaults are the
 * caller's, as for the caller's own INSERT.
 */
typedef struct DefaultColumn
{
	Relation	rel;
	AttrNumber	attnum;
} DefaultColumn;

static Node *
owned_sequence_values(Node *node, void *context)
{
	DefaultColumn *column = (DefaultColumn *) context;

	if (node == NULL)
		return NULL;
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == F_NEXTVAL &&
		list_length(((FuncExpr *) node)->args) == 1 &&
		IsA(linitial(((FuncExpr *) node)->args), Const))
	{
		Const	   *sequence = linitial_node(Const, ((FuncExpr *) node)->args);
		Oid			table;
		int32		attnum;

		if (!sequence->constisnull && sequence->consttype == REGCLASSOID &&
			sequenceIsOwned(DatumGetObjectId(sequence->constvalue), DEPENDENCY_AUTO,
							&table, &attnum) &&
			table == RelationGetRelid(column->rel) && attnum == column->attnum)
		{
			/* the executor's own node for an identity: nextval(), unchecked, when evaluated */
			NextValueExpr *next = makeNode(NextValueExpr);

			next->seqid = DatumGetObjectId(sequence->constvalue);
			next->typeId = INT8OID;
			return (Node *) next;
		}
	}
	return expression_tree_mutator(node, owned_sequence_values, context);
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
			/* an identity column is smallint, integer or bigint */
			int64		next = nextval_internal(identity[i], false);

			value = att->atttypid == INT2OID ? Int16GetDatum((int16) next) :
				att->atttypid == INT4OID ? Int32GetDatum((int32) next) : Int64GetDatum(next);
			isnull = false;
		}
		else
		{
			Expr	   *expr = (Expr *) build_column_default(w->rel, attnum);

			/* no default: NULL, which a domain's NOT NULL or CHECK still judges */
			if (expr == NULL && get_typtype(att->atttypid) == TYPTYPE_DOMAIN)
				expr = (Expr *) coerce_null_to_domain(att->atttypid, att->atttypmod,
													  att->attcollation, att->attlen,
													  att->attbyval);
			if (expr != NULL)
			{
				DefaultColumn column = {w->rel, attnum};
				ExprContext *econtext = GetPerTupleExprContext(w->estate);
				ExprState  *state;

				expr = (Expr *) owned_sequence_values((Node *) expr, &column);
				state = ExecPrepareExpr(expr, w->estate);

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

/*
 * Has the row version at tid been updated or deleted since it was written
 * (by this transaction: another one could not, while this one holds the
 * row)?  The history trigger asks, so that no change is recorded after a
 * later one.
 */
bool
row_changed_since(Relation rel, ItemPointer tid)
{
	HeapTupleData tuple;
	Buffer		buffer;
	bool		changed;

	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID)
		return false;			/* another table access method: it cannot tell */
	tuple.t_self = *tid;
	if (!heap_fetch(rel, SnapshotAny, &tuple, &buffer, false))
		return true;
	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	if ((tuple.t_data->t_infomask & HEAP_XMAX_INVALID) ||
		HEAP_XMAX_IS_LOCKED_ONLY(tuple.t_data->t_infomask))
		changed = false;		/* not updated nor deleted; perhaps locked */
	else
	{
		/* updated or deleted: by this transaction, not by a subtransaction rolled back */
		TransactionId updater = HeapTupleHeaderGetUpdateXid(tuple.t_data);

		changed = TransactionIdIsCurrentTransactionId(updater) ||
			!TransactionIdDidAbort(updater);
	}
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	ReleaseBuffer(buffer);
	return changed;
}
