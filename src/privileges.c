/*
 * src/privileges.c: dms_grant() and dms_revoke(): the capabilities reader, operator and engine.
 *
 * A capability is a set of ordinary privileges on the extension's objects,
 * granted and revoked with GRANT and REVOKE, so that \dp, \df+ and pg_dump
 * show and keep them like any other privilege.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/catcache.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "catalog.h"

PG_FUNCTION_INFO_V1(dms_grant);
PG_FUNCTION_INFO_V1(dms_revoke);

/* dms_job_database, dms_job_progress and dms_metrics are from 1.1: a database at 1.0 lacks them. */
static const char *const reader_relations[] = {
	"dms_job", "dms_job_failure", "dms_job_history", "dms_job_overview",
	"dms_job_database", "dms_job_progress", "dms_metrics", NULL
};
static const char *const reader_functions[] = {"dms_allowed_actions", NULL};
static const char *const operator_functions[] = {
	"dms_create_job", "dms_start", "dms_stop", "dms_resume", "dms_restart", "dms_promote",
	"dms_delete", "dms_set_dump_parallelism", "dms_add_database", "dms_remove_database", NULL
};
static const char *const engine_functions[] = {"dms_report", NULL};

typedef enum CapabilityId
{
	CAP_READER,
	CAP_OPERATOR,
	CAP_ENGINE,
	N_CAPABILITY
} CapabilityId;

static const char *const capability_names[N_CAPABILITY] = {"reader", "operator", "engine"};

/* The functions a capability adds to reading. */
static const char *const *const capability_functions[N_CAPABILITY] = {
	reader_functions, operator_functions, engine_functions
};

static CapabilityId
capability_lookup(const char *name)
{
	for (int c = 0; c < N_CAPABILITY; c++)
		if (strcmp(capability_names[c], name) == 0)
			return (CapabilityId) c;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown capability \"%s\"", name),
			 errhint("The capabilities are reader, operator and engine.")));
	return CAP_READER;			/* keep compiler quiet */
}

/* GRANT or REVOKE EXECUTE on every function of these names in the extension's schema. */
static void
function_privileges(StringInfo sql, Catalog *catalog, const char *const *names,
					bool grant, const char *role)
{
	for (const char *const *name = names; *name; name++)
	{
		CatCList   *procs = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(*name));

		for (int i = 0; i < procs->n_members; i++)
		{
			Form_pg_proc proc = (Form_pg_proc) GETSTRUCT(&procs->members[i]->tuple);

			if (proc->pronamespace != catalog->namespace)
				continue;
			appendStringInfo(sql, "%s EXECUTE ON FUNCTION %s %s %s;\n",
							 grant ? "GRANT" : "REVOKE",
							 format_procedure_qualified(proc->oid),
							 grant ? "TO" : "FROM", role);
		}
		ReleaseSysCacheList(procs);
	}
}

static void
relation_privileges(StringInfo sql, Catalog *catalog, bool grant, const char *role)
{
	for (const char *const *name = reader_relations; *name; name++)
		if (OidIsValid(get_relname_relid(*name, catalog->namespace)))
			appendStringInfo(sql, "%s SELECT ON %s.%s %s %s;\n",
							 grant ? "GRANT" : "REVOKE", catalog->namespace_name,
							 quote_identifier(*name), grant ? "TO" : "FROM", role);
}

static void
change_capability(FunctionCallInfo fcinfo, bool grant)
{
	Catalog    *catalog = catalog_for_function(fcinfo);
	CapabilityId capability;
	const char *role;
	StringInfoData sql;
	OwnerSwitch sw;

	require_argument(fcinfo, 0, "role");
	require_argument(fcinfo, 1, "capability");
	capability = capability_lookup(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	role = quote_identifier(GetUserNameFromId(PG_GETARG_OID(0), false));

	initStringInfo(&sql);
	if (grant)
	{
		/* Every capability reads; operator and engine add their functions. */
		appendStringInfo(&sql, "GRANT USAGE ON SCHEMA %s TO %s;\n",
						 catalog->namespace_name, role);
		relation_privileges(&sql, catalog, true, role);
		function_privileges(&sql, catalog, reader_functions, true, role);
		if (capability != CAP_READER)
			function_privileges(&sql, catalog, capability_functions[capability], true, role);
	}
	else if (capability == CAP_READER)
	{
		/* Who cannot read cannot act: revoking reader takes back all three. */
		relation_privileges(&sql, catalog, false, role);
		for (int c = 0; c < N_CAPABILITY; c++)
			function_privileges(&sql, catalog, capability_functions[c], false, role);
	}
	else
		function_privileges(&sql, catalog, capability_functions[capability], false, role);

	SPI_connect();
	owner_switch_begin(catalog, &sw);
	if (SPI_execute(sql.data, false, 0) < 0)
		elog(ERROR, "could not change the privileges of role %s", role);
	owner_switch_end(&sw);
	SPI_finish();
}

/* dms_grant(role, capability): lets a role read (reader), act (operator) or report (engine). */
Datum
dms_grant(PG_FUNCTION_ARGS)
{
	change_capability(fcinfo, true);
	PG_RETURN_VOID();
}

/* dms_revoke(role, capability): takes a capability back. */
Datum
dms_revoke(PG_FUNCTION_ARGS)
{
	change_capability(fcinfo, false);
	PG_RETURN_VOID();
}
