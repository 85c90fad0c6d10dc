/*
 * src/catalog.h: where the extension's objects are, their enum values, and its prepared statements.
 */
#ifndef DMS_CATALOG_H
#define DMS_CATALOG_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "utils/rel.h"

#include "lifecycle.h"

/* Every SQL statement the extension runs, each prepared once per backend. */
typedef enum PlanId
{
	PLAN_JOB_FETCH,
	PLAN_JOB_LOCK,
	PLAN_FAILURE_ANY,
	PLAN_HISTORY_PRUNABLE,
	PLAN_JOB_SOURCE_SERVER,		/* from 1.1: prepared only where the column exists */
	N_PLAN
} PlanId;

/* Columns of the rows PLAN_JOB_FETCH and PLAN_JOB_LOCK return. */
#define JOB_ROW_STATUS		1
#define JOB_ROW_PHASE		2
#define JOB_ROW_TYPE		3
#define JOB_ROW_ERROR		4
#define JOB_ROW_DATABASES	5

typedef struct Catalog
{
	Oid			namespace;
	char	   *namespace_name;
	Oid			job_relid;
	Oid			failure_relid;
	Oid			history_relid;
	Oid			owner;			/* owner of dms_job, the extension's work runs as this role */

	Oid			status_type;
	Oid			phase_type;
	Oid			migration_type_type;
	Oid			parallelism_type;
	Oid			action_type;
	Oid			event_type;

	Oid			status_oids[N_STATUS];
	Oid			phase_oids[N_PHASE];
	Oid			migration_type_oids[N_MIGRATION_TYPE];
	Oid			parallelism_oids[N_DUMP_PARALLELISM];
	Oid			action_oids[N_ACTION];
	Oid			event_oids[N_EVENT];

	SPIPlanPtr	plans[N_PLAN];
	char	   *plan_sql[N_PLAN];	/* their text, to recognise them in error contexts */
	uint64		generation;
} Catalog;

extern Catalog *catalog_for_function(FunctionCallInfo fcinfo);
extern Catalog *catalog_for_relation(Relation rel);
extern SPIPlanPtr catalog_plan(Catalog *catalog, PlanId id);
extern Oid	catalog_type(Catalog *catalog, char letter);

/* Enum Datum <-> C index.  A NULL Datum is PHASE_NULL for phases. */
extern int	enum_index(const Oid *oids, int n, Datum value, const char *type_name);
#define status_index(c, d)	enum_index((c)->status_oids, N_STATUS, (d), "dms_job_status")
#define phase_index(c, d)	enum_index((c)->phase_oids, N_PHASE, (d), "dms_job_phase")
#define type_index(c, d)	enum_index((c)->migration_type_oids, N_MIGRATION_TYPE, (d), "dms_migration_type")
#define parallelism_index(c, d) enum_index((c)->parallelism_oids, N_DUMP_PARALLELISM, (d), "dms_dump_parallelism")
#define action_index(c, d)	enum_index((c)->action_oids, N_ACTION, (d), "dms_action")
#define event_index(c, d)	enum_index((c)->event_oids, N_EVENT, (d), "dms_event")

/* Runs SPI as the owner of the extension's tables, and back. */
typedef struct OwnerSwitch
{
	Oid			saved_user;
	int			saved_context;
} OwnerSwitch;

extern void owner_switch_begin(Catalog *catalog, OwnerSwitch *sw);
extern void owner_switch_end(OwnerSwitch *sw);

/* Runs a prepared read as the tables' owner; its first row's columns in the caller's memory. */
extern bool owner_read(Catalog *catalog, PlanId id, Datum argument, bool read_only,
					   int ncolumns, Datum *values, bool *nulls);

/* Runs a prepared statement; the caller is connected to SPI. */
extern uint64 plan_execute(Catalog *catalog, PlanId id, Datum *values, const bool *nulls,
						   bool read_only);

/* The text of a (status, phase) as messages show it: "Running" (CDC). */
extern char *state_text(int status, int phase);

/* "Stop, Promote, Edit, Delete": the allowed actions of a state, as labels. */
extern char *allowed_actions_text(int status, int phase);

/* Errors shared by every entry point. */
extern void require_argument(FunctionCallInfo fcinfo, int argno, const char *name);
extern void report_job_missing(int64 job_id) pg_attribute_noreturn();
extern void report_null_column(Relation rel, AttrNumber attnum) pg_attribute_noreturn();
extern char *name_text_refusal(const char *value, const char *what, char **detail);
extern void validate_name_text(const char *value, const char *what);
extern bool message_is_blank(const char *message);

#endif							/* DMS_CATALOG_H */
