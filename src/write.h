/*
 * src/write.h: the one road every row the extension writes takes: PostgreSQL's executor.
 */
#ifndef DMS_WRITE_H
#define DMS_WRITE_H

#include "postgres.h"

#include "executor/executor.h"
#include "nodes/lockoptions.h"

#include "catalog.h"
#include "columns.h"

/*
 * One single-row write to one of the extension's tables, through the
 * executor's own entry points (those of logical replication's apply): row
 * triggers, constraints, generated columns and every index are the table's
 * own, whatever a user added.
 */
typedef struct RowWrite
{
	Relation	rel;
	const TableLayout *layout;
	EState	   *estate;
	ResultRelInfo *info;
	EPQState	epq;
	TupleTableSlot *found;		/* the row found and locked */
	TupleTableSlot *row;		/* the row to write */
#if PG_VERSION_NUM >= 160000
	RTEPermissionInfo *perminfo;	/* where the columns it sets are marked */
#else
	RangeTblEntry *rte;
#endif
	MemoryContext caller_context;
} RowWrite;

/* Opens the table for a write; command ("INSERT", ...) names it in refusals. */
extern void row_write_begin(RowWrite *w, Catalog *catalog, TableId table, const char *command);

/* Fires the AFTER triggers the write queued, and closes the table (its lock stays). */
extern void row_write_end(RowWrite *w);

/* Finds a job by id and locks its newest version as UPDATE or DELETE would. */
extern bool row_find_job(RowWrite *w, int64 job_id, LockTupleMode mode);

/* Finds failure rows (of one database, or all of the job's); lock each with row_lock. */
extern int	row_find_failures(RowWrite *w, int64 job_id, const char *database,
							  ItemPointerData **tids);
extern bool row_lock(RowWrite *w, ItemPointer tid, LockTupleMode mode);

/* The new row: empty, or the row found. */
extern void row_new(RowWrite *w);
extern void row_from_found(RowWrite *w);
extern void row_set(RowWrite *w, int column, Datum value, bool isnull);
extern void row_mark_set(RowWrite *w, int column);
extern Datum row_get(TupleTableSlot *slot, const TableLayout *layout, int column, bool *isnull);

/*
 * The writes.  row_insert gives every column it was not given its default
 * and returns false if a BEFORE trigger skipped the row.
 */
extern bool row_insert(RowWrite *w);
extern void row_update(RowWrite *w);
extern void row_delete(RowWrite *w);

/* Was the row version at tid updated or deleted since it was written? */
extern bool row_changed_since(Relation rel, ItemPointer tid);

#endif							/* DMS_WRITE_H */
