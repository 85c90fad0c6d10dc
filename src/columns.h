/*
 * src/columns.h: the columns of the extension's tables, found by name in whatever shape ALTER TABLE left them.
 */
#ifndef DMS_COLUMNS_H
#define DMS_COLUMNS_H

#include "postgres.h"

#include "access/attnum.h"
#include "utils/rel.h"

struct Catalog;

typedef enum TableId
{
	TABLE_JOB,
	TABLE_FAILURE,
	TABLE_HISTORY,
	N_TABLE
} TableId;

/* The columns of dms_job that the extension reads and writes. */
typedef enum JobColumn
{
	JOB_ID,
	JOB_NAME,
	JOB_MIGRATION_TYPE,
	JOB_STATUS,
	JOB_PHASE,
	JOB_DATABASES,
	JOB_DUMP_PARALLELISM,
	JOB_PENDING_DUMP_PARALLELISM,
	JOB_ERROR_MESSAGE,
	JOB_CREATED_AT,
	JOB_UPDATED_AT,
	JOB_STATUS_CHANGED_AT,
	JOB_SOURCE_SERVER,			/* from 1.1; see TableLayout */
	JOB_DESTINATION_SERVER,		/* from 1.1 */
	N_JOB_COLUMN
} JobColumn;

typedef enum FailureColumn
{
	FAILURE_JOB_ID,
	FAILURE_DATABASE_NAME,
	FAILURE_PHASE,
	FAILURE_ERROR_MESSAGE,
	FAILURE_FAILED_AT,
	N_FAILURE_COLUMN
} FailureColumn;

typedef enum HistoryColumn
{
	HISTORY_ID,
	HISTORY_JOB_ID,
	HISTORY_JOB_NAME,
	HISTORY_CAUSE,
	HISTORY_FROM_STATUS,
	HISTORY_FROM_PHASE,
	HISTORY_TO_STATUS,
	HISTORY_TO_PHASE,
	HISTORY_DATABASE_NAME,
	HISTORY_MESSAGE,
	HISTORY_ACTOR,
	HISTORY_OCCURRED_AT,
	N_HISTORY_COLUMN
} HistoryColumn;

#define MAX_KNOWN_COLUMNS 14

/*
 * Where a table's columns are now.  The extension fills every column it
 * knows on the rows it inserts but the table's own key ("id"), which, like
 * every column a user added, takes its default.
 *
 * A column that a later version added (dms_job.source_server and
 * destination_server, from 1.1) is absent from a database still at an
 * earlier version that runs this library: its attnum is then
 * InvalidAttrNumber, it reads as NULL, and writing a value into it fails
 * with a hint to update the extension.  In a database at the version that
 * has it, it is required like every other column.
 */
typedef struct TableLayout
{
	TableId		table;
	Oid			relid;
	int			ncolumns;		/* known columns */
	AttrNumber	attnum[MAX_KNOWN_COLUMNS];	/* of each known column */
	int			own_key;		/* the known column that takes its default, or -1 */
	int			ndefaulted;		/* columns that take their default on insert */
	AttrNumber *defaulted;		/* their attribute numbers */
	Oid		   *identity;		/* the identity sequence of each, or InvalidOid */
} TableLayout;

/*
 * The layout of one of the extension's tables, as its relation is now.
 * Raises a clear error if a column the extension needs was dropped or
 * changed type.  The arrays stay valid until the next call.
 */
extern const TableLayout *table_layout(struct Catalog *catalog, TableId table, Relation rel);

/*
 * Refuses to write a value into a column that the database lacks because it
 * is at an earlier version of the extension (55000, with the hint to run
 * ALTER EXTENSION dms_lifecycle UPDATE).
 */
extern void column_refuse_missing(const TableLayout *layout, int column) pg_attribute_noreturn();

/* Forgets the layouts (the extension was installed again). */
extern void table_layouts_reset(void);

#endif							/* DMS_COLUMNS_H */
