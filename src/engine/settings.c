/*
 * src/engine/settings.c: the engine's settings (ENGINE.md section 2), and
 * the library's entry point, which defines them and, when the library is
 * preloaded, starts the engine.
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/guc.h"

#include "internal.h"


char	   *engine_database = NULL;
char	   *engine_role = NULL;
int			engine_naptime_ms = 1000;
int			engine_error_grace_s = 300;
int			engine_promote_timeout_s = 600;
bool		engine_fence_source = true;
int			engine_verify = VERIFY_COUNT;
int			engine_split_table_kb = 64 * 1024;
int			engine_copy_lock_timeout_ms = 60 * 1000;

static const struct config_enum_entry verify_options[] = {
	{"off", VERIFY_OFF, false},
	{"count", VERIFY_COUNT, false},
	{"checksum", VERIFY_CHECKSUM, false},
	{NULL, 0, false}
};

void
engine_define_settings(void)
{
	DefineCustomStringVariable("dms_lifecycle.database",
							   "The database where CREATE EXTENSION dms_lifecycle was run; the engine watches its jobs.",
							   NULL, &engine_database, "postgres",
							   PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("dms_lifecycle.engine_role",
							   "The role the engine acts as (the actor of its history rows); empty means the bootstrap superuser.",
							   NULL, &engine_role, "",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dms_lifecycle.naptime",
							"How often the engine looks at the progress of its jobs.",
							NULL, &engine_naptime_ms, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("dms_lifecycle.error_grace",
							"How long a database may keep failing to apply changes before it is declared failed.",
							NULL, &engine_error_grace_s, 300, 0, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("dms_lifecycle.promote_timeout",
							"How long a promotion may wait for the destination to catch up.",
							NULL, &engine_promote_timeout_s, 600, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomBoolVariable("dms_lifecycle.fence_source",
							 "Whether a promotion first stops writes on the source.",
							 NULL, &engine_fence_source, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomEnumVariable("dms_lifecycle.verify",
							 "What a promotion compares before it completes: off, count or checksum.",
							 NULL, &engine_verify, VERIFY_COUNT, verify_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("dms_lifecycle.split_table_size",
							"Tables at least this large are copied in ranges of about this size, several at once; 0 never splits.",
							"Only with a dump_parallelism above min and a source of PostgreSQL 14 or later.",
							&engine_split_table_kb, 64 * 1024, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("dms_lifecycle.copy_lock_timeout",
							"How long a copy stream waits for a lock on the source before the database's copy fails; 0 waits for ever.",
							"A DDL on the source (ALTER TABLE, VACUUM FULL, REINDEX) that holds a lock a copy stream needs, "
							"and waits for one the copy holds, would otherwise hold both for ever; the job can be restarted once it is done.",
							&engine_copy_lock_timeout_ms, 60 * 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	MarkGUCPrefixReserved("dms_lifecycle");
}

void		_PG_init(void);

/*
 * _PG_init: the engine runs only when the library is preloaded; loaded
 * later (by a function call), the extension behaves as 1.0 and jobs wait
 * for an external engine.  The settings exist only with the engine: one of
 * them can be set only at server start, which a later load cannot define.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	engine_define_settings();
	engine_shmem_init();
	engine_register_launcher();
}
