/*
 * src/columns.c: finds the extension's columns by name, in whatever shape ALTER TABLE left its tables.
 *
 * A user may add and drop columns of dms_job, dms_job_failure and
 * dms_job_history at will; attribute numbers then move and dropped columns
 * leave holes.  Every read and write of the extension goes through a
 * layout found here by name and type, kept until the relation changes
 * (a relcache invalidation, which every ALTER TABLE sends).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "columns.h"

/*
 * What a known column must be: its name and type (a letter of
 * catalog_type()), and whether a database at an earlier version may lack it.
 */
typedef struct ColumnSpec
{
	const char *name;
	char		type;			/* see column_type */
	bool		since_1_1;		/* added by the update to 1.1 */
} ColumnSpec;

typedef struct TableSpec
{
	const char *name;
	int			ncolumns;
	const ColumnSpec *columns;
	int			own_key;		/* the column that takes its default, or -1 */
} TableSpec;

static const ColumnSpec job_columns[N_JOB_COLUMN] = {
	[JOB_ID] = {"id", 'i'},
	[JOB_NAME] = {"name", 't'},
	[JOB_MIGRATION_TYPE] = {"migration_type", 'm'},
	[JOB_STATUS] = {"status", 's'},
	[JOB_PHASE] = {"phase", 'p'},
	[JOB_DATABASES] = {"databases", 'a'},
	[JOB_DUMP_PARALLELISM] = {"dump_parallelism", 'd'},
	[JOB_PENDING_DUMP_PARALLELISM] = {"pending_dump_parallelism", 'd'},
	[JOB_ERROR_MESSAGE] = {"error_message", 't'},
	[JOB_CREATED_AT] = {"created_at", 'z'},
	[JOB_UPDATED_AT] = {"updated_at", 'z'},
	[JOB_STATUS_CHANGED_AT] = {"status_changed_at", 'z'},
	[JOB_SOURCE_SERVER] = {"source_server", 't', true},
	[JOB_DESTINATION_SERVER] = {"destination_server", 't', true},
};

static const ColumnSpec failure_columns[N_FAILURE_COLUMN] = {
	[FAILURE_JOB_ID] = {"job_id", 'i'},
	[FAILURE_DATABASE_NAME] = {"database_name", 't'},
	[FAILURE_PHASE] = {"phase", 'p'},
	[FAILURE_ERROR_MESSAGE] = {"error_message", 't'},
	[FAILURE_FAILED_AT] = {"failed_at", 'z'},
};

static const ColumnSpec history_columns[N_HISTORY_COLUMN] = {
	[HISTORY_ID] = {"id", 'i'},
	[HISTORY_JOB_ID] = {"job_id", 'i'},
	[HISTORY_JOB_NAME] = {"job_name", 't'},
	[HISTORY_CAUSE] = {"cause", 't'},
	[HISTORY_FROM_STATUS] = {"from_status", 's'},
	[HISTORY_FROM_PHASE] = {"from_phase", 'p'},
	[HISTORY_TO_STATUS] = {"to_status", 's'},
	[HISTORY_TO_PHASE] = {"to_phase", 'p'},
	[HISTORY_DATABASE_NAME] = {"database_name", 't'},
	[HISTORY_MESSAGE] = {"message", 't'},
	[HISTORY_ACTOR] = {"actor", 't'},
	[HISTORY_OCCURRED_AT] = {"occurred_at", 'z'},
};

static const TableSpec table_specs[N_TABLE] = {
	[TABLE_JOB] = {"dms_job", N_JOB_COLUMN, job_columns, JOB_ID},
	[TABLE_FAILURE] = {"dms_job_failure", N_FAILURE_COLUMN, failure_columns, -1},
	[TABLE_HISTORY] = {"dms_job_history", N_HISTORY_COLUMN, history_columns, HISTORY_ID},
};

static TableLayout layouts[N_TABLE];
static bool layout_valid[N_TABLE];
static uint64 layout_invalidations[N_TABLE];	/* to notice one during a build */
static MemoryContext layout_context[N_TABLE];
static bool callback_registered = false;

/* Every ALTER TABLE, CREATE INDEX, ... of a relation invalidates its relcache entry. */
static void
layouts_invalidate(Datum arg, Oid relid)
{
	for (int t = 0; t < N_TABLE; t++)
		if (!OidIsValid(relid) || layouts[t].relid == relid)
		{
			layout_valid[t] = false;
			layout_invalidations[t]++;
		}
}

void
table_layouts_reset(void)
{
	for (int t = 0; t < N_TABLE; t++)
		layout_valid[t] = false;
}

/*
 * Is the database still at version 1.0, running this library until someone
 * runs ALTER EXTENSION dms_lifecycle UPDATE?  The update to 1.1 made the
 * table dms_job_database along with the columns of 1.1, and a member of the
 * extension cannot be dropped by itself.  Asked at every build of a layout,
 * never cached: an update in this session sends the relcache invalidation
 * that rebuilds the layout (its ALTER TABLE).
 */
static bool
database_at_1_0(Catalog *catalog)
{
	return !OidIsValid(get_relname_relid("dms_job_database", catalog->namespace));
}

void
column_refuse_missing(const TableLayout *layout, int column)
{
	const TableSpec *spec = &table_specs[layout->table];

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("column \"%s\" of table %s does not exist yet in this database",
					spec->columns[column].name, spec->name),
			 errdetail("The database is at an earlier version of dms_lifecycle than the library it runs."),
			 errhint("Run ALTER EXTENSION dms_lifecycle UPDATE.")));
}

static void
layout_build(Catalog *catalog, TableId table, Relation rel)
{
	const TableSpec *spec = &table_specs[table];
	TupleDesc	desc = RelationGetDescr(rel);
	TableLayout *layout = &layouts[table];
	MemoryContext old;
	int			at_1_0 = -1;	/* not asked yet */

	/* Callers that run user code while they read the arrays copy them first. */
	if (layout_context[table] == NULL)
		layout_context[table] = AllocSetContextCreate(TopMemoryContext, "dms_lifecycle layout",
													  ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(layout_context[table]);
	old = MemoryContextSwitchTo(layout_context[table]);

	layout->table = table;
	layout->relid = RelationGetRelid(rel);
	layout->ncolumns = spec->ncolumns;
	layout->own_key = spec->own_key;
	for (int c = 0; c < spec->ncolumns; c++)
	{
		const ColumnSpec *column = &spec->columns[c];
		Oid			type = catalog_type(catalog, column->type);
		AttrNumber	found = InvalidAttrNumber;

		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (!att->attisdropped && strcmp(NameStr(att->attname), column->name) == 0)
			{
				found = att->attnum;
				if (att->atttypid != type)
					ereport(ERROR,
							(errcode(ERRCODE_DATATYPE_MISMATCH),
							 errmsg("column \"%s\" of table %s has type %s, but dms_lifecycle needs %s",
									column->name, spec->name, format_type_be(att->atttypid),
									format_type_be(type)),
							 errhint("Change the column back to its type, or install the extension again.")));
				break;
			}
		}
		if (found == InvalidAttrNumber && column->since_1_1)
		{
			if (at_1_0 < 0)
				at_1_0 = database_at_1_0(catalog);
			if (at_1_0)
			{
				layout->attnum[c] = InvalidAttrNumber;	/* reads as NULL */
				continue;
			}
		}
		if (found == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of table %s does not exist, and dms_lifecycle needs it",
							column->name, spec->name),
					 errhint("Add the column back as the extension created it, or install the extension again.")));
		layout->attnum[c] = found;
	}

	/* The columns that take their default on insert: the own key and the users'. */
	layout->ndefaulted = 0;
	layout->defaulted = palloc(sizeof(AttrNumber) * desc->natts);
	layout->identity = palloc(sizeof(Oid) * desc->natts);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		known = false;

		if (att->attisdropped || att->attgenerated)
			continue;
		for (int c = 0; c < spec->ncolumns && !known; c++)
			known = layout->attnum[c] == att->attnum && c != spec->own_key;
		if (known)
			continue;
		layout->defaulted[layout->ndefaulted] = att->attnum;
#if PG_VERSION_NUM >= 170000
		layout->identity[layout->ndefaulted] = att->attidentity ?
			getIdentitySequence(rel, att->attnum, false) : InvalidOid;
#else
		layout->identity[layout->ndefaulted] = att->attidentity ?
			getIdentitySequence(RelationGetRelid(rel), att->attnum, false) : InvalidOid;
#endif
		layout->ndefaulted++;
	}
	MemoryContextSwitchTo(old);
}

const TableLayout *
table_layout(Catalog *catalog, TableId table, Relation rel)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(layouts_invalidate, (Datum) 0);
		callback_registered = true;
	}
	if (!layout_valid[table] || layouts[table].relid != RelationGetRelid(rel))
	{
		uint64		invalidations = layout_invalidations[table];

		layout_valid[table] = false;
		layout_build(catalog, table, rel);
		/* an invalidation that arrived during the build leaves it to the next call */
		layout_valid[table] = invalidations == layout_invalidations[table];
	}
	return &layouts[table];
}
