/*
 * src/connection_options.c: the foreign-data wrapper dms_lifecycle_connection: the options its objects take, and the servers a job names.
 *
 * The built-in engine connects to a source with libpq.  A server of this
 * wrapper says where the source is (host, port, sslmode, ...: libpq's own
 * connection options, as the linked libpq lists them); a user mapping says
 * who connects (user, password).  What would name a database, a role or a
 * secret is kept off the server: the engine connects to each database of a
 * job in turn, and the options of a server are visible to every role in
 * pg_foreign_server, whereas those of a user mapping only to its user and
 * the server's owner.
 */
#include "postgres.h"

#include "libpq-fe.h"

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "engine.h"

PG_FUNCTION_INFO_V1(dms_lifecycle_connection_validator);

/* libpq connection options that a server must not take, and why. */
typedef struct RefusedOption
{
	const char *name;
	const char *reason;
} RefusedOption;

static const RefusedOption server_refused[] = {
	{"dbname", "The engine connects to each database of a job in turn; the job names them."},
	{"user", "Who connects is said by a user mapping: CREATE USER MAPPING ... OPTIONS (user '...', password '...')."},
	{"password", "Passwords live only in user mappings, which not every role can read: CREATE USER MAPPING ... OPTIONS (user '...', password '...')."},
	{"passfile", "Passwords live only in user mappings: give the password there."},
	{"service", "A service brings options of its own, a database and a user among them: give the options themselves."},
	{"replication", "The engine opens replication connections itself where it needs them."},
	{"client_encoding", "The engine sets it on every connection."},
	{"fallback_application_name", "The engine sets it on every connection."},
};

/* What a user mapping takes. */
static const char *const user_mapping_options[] = {"user", "password"};

/* The options a server takes, from libpq's list: found once per backend. */
static char **server_options = NULL;
static int	n_server_options = 0;

/* Why libpq's option is no server option, or NULL if it is one. */
static const char *
server_refusal(const PQconninfoOption *option)
{
	for (int i = 0; i < (int) lengthof(server_refused); i++)
		if (strcmp(option->keyword, server_refused[i].name) == 0)
			return server_refused[i].reason;
	if (strchr(option->dispchar, 'D') != NULL)
		return "It is a libpq debugging option.";
	if (strchr(option->dispchar, '*') != NULL)
		return "It is a secret, and the options of a server are visible to every role.";
	return NULL;
}

/* libpq's description of its connection options; free it with PQconninfoFree(). */
static PQconninfoOption *
libpq_options(void)
{
	PQconninfoOption *options = PQconndefaults();

	if (options == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("libpq could not list its connection options.")));
	return options;
}

static void
server_options_load(void)
{
	PQconninfoOption *options;
	int			n = 0;
	char	  **names;

	if (server_options != NULL)
		return;
	options = libpq_options();
	for (PQconninfoOption *o = options; o->keyword != NULL; o++)
		n++;
	names = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * (n + 1));
	n = 0;
	for (PQconninfoOption *o = options; o->keyword != NULL; o++)
		if (server_refusal(o) == NULL)
			names[n++] = MemoryContextStrdup(TopMemoryContext, o->keyword);
	names[n] = NULL;
	PQconninfoFree(options);
	server_options = names;
	n_server_options = n;
}

/* Why an option is refused on a server: libpq's reason, or NULL for an option libpq does not know. */
static const char *
server_option_detail(const char *name)
{
	PQconninfoOption *options = libpq_options();
	const char *reason = NULL;

	for (PQconninfoOption *o = options; o->keyword != NULL; o++)
		if (strcmp(o->keyword, name) == 0)
		{
			reason = server_refusal(o);
			break;
		}
	PQconninfoFree(options);
	return reason;
}

static bool
name_in(const char *name, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

static char *
names_joined(const char *const *names, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s", i > 0 ? ", " : "", names[i]);
	return buf.data;
}

/* Refuses one option of an object of the wrapper (catalog says which kind), saying what is valid there. */
static void
refuse_option(const char *name, Oid catalog)
{
	server_options_load();
	if (catalog == ForeignServerRelationId)
	{
		const char *reason = server_option_detail(name);

		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for a server of %s", name, CONNECTION_WRAPPER),
				 reason ? errdetail_internal("%s", reason) : 0,
				 errhint("Valid options for a server are: %s.",
						 names_joined((const char *const *) server_options, n_server_options))));
	}
	if (catalog == UserMappingRelationId)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for a user mapping of %s", name, CONNECTION_WRAPPER),
				 name_in(name, (const char *const *) server_options, n_server_options) ?
				 errdetail("It is an option of the server: ALTER SERVER ... OPTIONS (ADD %s '...').",
						   name) : 0,
				 errhint("Valid options for a user mapping are: %s.",
						 names_joined(user_mapping_options, lengthof(user_mapping_options)))));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\" for %s", name,
					catalog == ForeignDataWrapperRelationId ? "the foreign-data wrapper " CONNECTION_WRAPPER :
					catalog == ForeignTableRelationId ? "a foreign table of " CONNECTION_WRAPPER :
					catalog == AttributeRelationId ? "a column of a foreign table of " CONNECTION_WRAPPER :
					"an object of " CONNECTION_WRAPPER),
			 errhint("Only its servers and user mappings take options: a server libpq's connection options (host, port, ...), a user mapping user and password.")));
}

/*
 * dms_lifecycle_connection_validator(options, catalog): the validator of the
 * wrapper.  Servers take libpq's connection options but those that name a
 * database, a role or a secret, or serve debugging; user mappings take user
 * and password; the wrapper itself and foreign tables take none (HV00D).
 */
Datum
dms_lifecycle_connection_validator(PG_FUNCTION_ARGS)
{
	List	   *options;
	Oid			catalog;
	ListCell   *cell;

	require_argument(fcinfo, 0, "options");
	require_argument(fcinfo, 1, "catalog");
	options = untransformRelOptions(PG_GETARG_DATUM(0));
	catalog = PG_GETARG_OID(1);

	foreach(cell, options)
	{
		DefElem    *def = lfirst_node(DefElem, cell);
		bool		valid = false;

		if (catalog == ForeignServerRelationId)
		{
			server_options_load();
			valid = name_in(def->defname, (const char *const *) server_options, n_server_options);
		}
		else if (catalog == UserMappingRelationId)
			valid = name_in(def->defname, user_mapping_options, lengthof(user_mapping_options));
		if (!valid)
			refuse_option(def->defname, catalog);
	}
	PG_RETURN_VOID();
}

void
connection_server_check(const char *name, const char *what)
{
	ForeignServer *server = GetForeignServerByName(name, true);
	Oid			wrapper = get_foreign_data_wrapper_oid(CONNECTION_WRAPPER, true);
	AclResult	result;

	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" does not exist", what, name),
				 errhint("Create it with CREATE SERVER %s FOREIGN DATA WRAPPER %s OPTIONS (host '...', port '...'), and a user mapping for it.",
						 quote_identifier(name), CONNECTION_WRAPPER)));
	if (server->fdwid != wrapper)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s \"%s\" is not a server of the foreign-data wrapper %s",
						what, name, CONNECTION_WRAPPER),
				 errdetail("It belongs to the foreign-data wrapper %s.",
						   GetForeignDataWrapper(server->fdwid)->fdwname)));
#if PG_VERSION_NUM >= 160000
	result = object_aclcheck(ForeignServerRelationId, server->serverid, GetUserId(), ACL_USAGE);
#else
	result = pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE);
#endif
	if (result != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign server %s", server->servername),
				 errdetail("A job may name only a server its creator may use."),
				 errhint("The server's owner or a superuser can run GRANT USAGE ON FOREIGN SERVER %s TO %s.",
						 quote_identifier(server->servername),
						 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
}

void
connection_destination_refuse(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("a migration job cannot have a destination server"),
			 errdetail("dms_lifecycle 1.1 migrates into the cluster where it is installed; the job named the destination server \"%s\".",
					   name),
			 errhint("Leave destination_server NULL, and create the job in the destination cluster.")));
}
