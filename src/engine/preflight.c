/*
 * src/engine/preflight.c: what dms_start and dms_restart check, per
 * database, before anything is created (ENGINE.md section 5).  The first
 * failure is the job's failed event: a message that names the server, the
 * database and the fix.  Nothing is created here, so a failed start leaves
 * nothing behind.
 */
#include "postgres.h"

#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "catalog.h"
#include "internal.h"

/* source "name" (host h port p), database "db": what; the fix */
static char *
source_says(Endpoint *source, const char *database, const char *fmt,...) pg_attribute_printf(3, 4);

static char *
source_says(Endpoint *source, const char *database, const char *fmt,...)
{
	StringInfoData s;
	va_list		args;

	initStringInfo(&s);
	appendStringInfo(&s, "source \"%s\" (%s), database \"%s\": ", source->server, source->where,
					 database);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&s, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&s, needed);
	}
	return MemoryContextStrdup(TopMemoryContext, s.data);
}

/* The path of a program of this PostgreSQL (pg_dump, pg_restore), checked to be its version. */
char *
pg_program_path(const char *name)
{
	char		path[MAXPGPATH];
	char	   *version = psprintf("%s (PostgreSQL) " PG_VERSION "\n", name);

	if (find_other_exec(my_exec_path, name, version, path) != 0)
		return NULL;
	return MemoryContextStrdup(TopMemoryContext, path);
}

/* Every database of the source that allows connections, is no template, and is not postgres. */
static List *
source_databases(Endpoint *source, char **error)
{
	const char *const tries[] = {"postgres", "template1"};
	PGconn	   *conn = NULL;
	PGresult   *res;
	List	   *names = NIL;

	for (int i = 0; i < 2 && conn == NULL; i++)
		conn = remote_connect(source, tries[i], false, error);
	if (conn == NULL)
	{
		*error = source_says(source, "postgres",
							 "cannot connect to list the databases: %s; check the server's options, the user mapping and the source's pg_hba.conf",
							 *error);
		return NIL;
	}
	res = remote_exec(conn, "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn "
					  "AND NOT datistemplate AND datname <> 'postgres' ORDER BY datname");
	if (remote_ok(res))
		for (int i = 0; i < PQntuples(res); i++)
			names = lappend(names, pstrdup(PQgetvalue(res, i, 0)));
	else
		*error = source_says(source, "postgres", "cannot list the databases: %s",
							 remote_error(conn, res));
	PQclear(res);
	PQfinish(conn);
	return names;
}

/*
 * The roles that own objects in the source database, or are granted
 * privileges on them, exist here: the schema is restored with its owners (a
 * SECURITY DEFINER function must not run as the engine's superuser, a view
 * must not read as one) and its grants (a grant to a missing role would
 * fail, and the REVOKE from PUBLIC pg_dump writes beside it with it).
 */
static char *
check_owners(Endpoint *source, PGconn *src, const char *name)
{
	char	   *error = NULL;

	/*
	 * pg_shdepend records the owners ('o'), grantees ('a') and policies'
	 * roles ('r') of a database's objects, but not its bootstrap superuser,
	 * which is needed only if it owns something the dump carries.
	 */
	char	   *roles = remote_value(src,
									 "SELECT coalesce(json_agg(rolname ORDER BY rolname), '[]')::text FROM ("
									 "SELECT DISTINCT r.rolname FROM pg_catalog.pg_shdepend d "
									 "JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid "
									 "WHERE d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) "
									 "AND d.deptype IN ('o', 'a', 'r') AND d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass "
									 "UNION SELECT rolname FROM pg_catalog.pg_roles WHERE oid = 10 AND ("
									 "EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
									 "WHERE c.relowner = 10 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_') "
									 "OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
									 "WHERE p.proowner = 10 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_') "
									 "OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace "
									 "WHERE t.typowner = 10 AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'))) o",
									 &error);
	PGconn	   *local;
	char	   *missing;
	const char *values[1];

	if (roles == NULL)
		return source_says(source, name, "cannot read the roles its objects name: %s",
						   error ? error : "no answer");
	local = remote_connect(endpoint_local(), engine_database, false, &error);
	if (local == NULL)
		return psprintf("destination (this cluster): the engine cannot connect to itself: %s", error);
	values[0] = roles;
	{
		PGresult   *res = remote_exec_params(local,
											 "SELECT string_agg(pg_catalog.quote_ident(o), ', ' ORDER BY o) "
											 "FROM pg_catalog.json_array_elements_text($1::pg_catalog.json) o "
											 "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = o)",
											 1, values);

		missing = remote_ok(res) && !PQgetisnull(res, 0, 0) ? pstrdup(PQgetvalue(res, 0, 0)) : NULL;
		PQclear(res);
	}
	PQfinish(local);
	if (missing != NULL)
		return source_says(source, name, "its objects are owned by or granted to roles this cluster does not have (%s); create them here first (pg_dumpall --roles-only on the source writes their CREATE ROLE statements)",
						   missing);
	return NULL;
}

/*
 * The tables the copy reads (source_tables_sql, as t) for which condition
 * holds, as "a, b"; NULL for none, or on an error (set in *error).
 */
static char *
copied_tables_where(PGconn *conn, const char *condition, char **error)
{
	return remote_value(conn,
						psprintf("SELECT string_agg(qualified, ', ' ORDER BY qualified) FROM (%s) t WHERE %s",
								 source_tables_sql(PQserverVersion(conn)), condition),
						error);
}

/* The checks that need a connection to the source database. */
static char *
check_source_database(Endpoint *source, const char *name, int needed_slots, Oid *oid,
					  StringInfo notes)
{
	char	   *error = NULL;
	PGconn	   *conn = remote_connect(source, name, false, &error);
	PGresult   *res;
	int			major;
	char	   *result = NULL;

	if (conn == NULL)
	{
		if (strstr(error, "does not exist") != NULL)
			return source_says(source, name, "%s; create it on the source or remove it from the job (dms_remove_database)", error);
		return source_says(source, name, "cannot connect: %s; check the server's options, the user mapping and the source's pg_hba.conf", error);
	}
	major = PQserverVersion(conn) / 10000;
	if (major < 10 || major > PG_VERSION_NUM / 10000)
	{
		result = source_says(source, name,
							 "PostgreSQL %d cannot be migrated into PostgreSQL %d: this PostgreSQL's pg_dump reads versions 10 to %d; migrate into a destination of version %d or later",
							 major, PG_VERSION_NUM / 10000, PG_VERSION_NUM / 10000, major);
		goto done;
	}

	res = remote_exec(conn,
					  "SELECT current_setting('wal_level'), r.rolname, r.rolsuper, r.rolreplication, "
					  "current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_catalog.pg_replication_slots), "
					  "current_setting('max_wal_senders')::int - (SELECT count(*) FROM pg_catalog.pg_stat_replication), "
					  "(SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) "
					  "FROM pg_catalog.pg_roles r WHERE r.rolname = current_user");
	if (!remote_ok(res) || PQntuples(res) != 1)
	{
		result = source_says(source, name, "cannot read its settings: %s", remote_error(conn, res));
		PQclear(res);
		goto done;
	}
	{
		const char *wal_level = PQgetvalue(res, 0, 0);
		const char *role = PQgetvalue(res, 0, 1);
		bool		super = PQgetvalue(res, 0, 2)[0] == 't';
		bool		replication = PQgetvalue(res, 0, 3)[0] == 't';
		int			free_slots = atoi(PQgetvalue(res, 0, 4));
		int			free_senders = atoi(PQgetvalue(res, 0, 5));

		*oid = (Oid) strtoul(PQgetvalue(res, 0, 6), NULL, 10);
		if (strcmp(wal_level, "logical") != 0)
			result = source_says(source, name, "wal_level is \"%s\"; set wal_level = logical on the source and restart it",
								 wal_level);
		else if (!super && !replication)
			result = source_says(source, name, "role \"%s\" may not replicate; run ALTER ROLE %s REPLICATION on the source, or map a superuser",
								 role, quote_identifier(role));
		else if (free_slots < needed_slots)
			result = source_says(source, name, "%d replication slot%s free and the job needs %d; raise max_replication_slots on the source (and restart it) or drop unused slots",
								 Max(free_slots, 0), free_slots == 1 ? " is" : "s are", needed_slots);
		else if (free_senders < needed_slots)
			result = source_says(source, name, "%d WAL sender%s free and the job needs %d; raise max_wal_senders on the source and restart it",
								 Max(free_senders, 0), free_senders == 1 ? " is" : "s are", needed_slots);
		if (result == NULL && !super)
		{
			/* publishing a table takes its owner (or a superuser) on PostgreSQL up to 15 */
			char	   *other = remote_value(conn,
											 "SELECT format('%I.%I (owned by %I)', n.nspname, c.relname, pg_catalog.pg_get_userbyid(c.relowner)) "
											 "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
											 "WHERE c.relkind IN ('r', 'p') AND c.relpersistence = 'p' "
											 "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' "
											 "AND c.relowner <> (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) LIMIT 1",
											 NULL);

			if (other != NULL)
				result = source_says(source, name, "role \"%s\" cannot publish table %s; map a superuser, or a role that owns every table",
									 role, other);
		}
	}
	PQclear(res);
	if (result != NULL)
		goto done;

	{
		char	   *unreadable = remote_value(conn,
											  "SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ' ORDER BY 1) "
											  "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
											  "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
											  "AND n.nspname !~ '^pg_' AND NOT pg_catalog.has_table_privilege(c.oid, 'SELECT')",
											  NULL);

		if (unreadable != NULL)
		{
			result = source_says(source, name, "role \"%s\" cannot read table %s; grant it SELECT on them",
								 source->user, unreadable);
			goto done;
		}
	}

	{
		/*
		 * Row-level security that would show the role only some rows of a
		 * table the copy reads (source_tables_sql): a role that is neither
		 * a superuser nor BYPASSRLS reaches here only if it owns every
		 * table, so it is FORCE ROW LEVEL SECURITY on the role's own tables.
		 */
		char	   *rls_error = NULL;
		char	   *filtered = copied_tables_where(conn, "pg_catalog.row_security_active(t.oid)", &rls_error);

		if (rls_error != NULL)
		{
			result = source_says(source, name, "cannot check the tables' row-level security: %s", rls_error);
			goto done;
		}
		if (filtered != NULL)
		{
			result = source_says(source, name, "row-level security shows role \"%s\" only some rows of tables %s; "
								 "grant the role BYPASSRLS (a superuser can: ALTER ROLE %s BYPASSRLS), "
								 "or have the tables' owner turn FORCE ROW LEVEL SECURITY off (ALTER TABLE ... NO FORCE ROW LEVEL SECURITY), "
								 "or map a superuser",
								 source->user, filtered, quote_identifier(source->user));
			goto done;
		}
	}

	if ((result = check_owners(source, conn, name)) != NULL)
		goto done;

	{
		char	   *no_identity = copied_tables_where(conn, "NOT t.has_identity", NULL);

		if (no_identity != NULL)
			appendStringInfo(notes, "%sdatabase \"%s\": tables without a primary key or replica identity, whose UPDATEs and DELETEs are not streamed: %s",
							 notes->len > 0 ? "; " : "", name, no_identity);
	}
done:
	PQfinish(conn);
	return result;
}

/* The destination database is absent or has no tables of its own. */
static char *
check_destination(Endpoint *source, const char *name)
{
	Endpoint   *local = endpoint_local();
	char	   *error = NULL;
	PGconn	   *conn = remote_connect(local, engine_database, false, &error);
	const char *values[1] = {name};
	PGresult   *res;
	bool		exists;
	char	   *tables;

	if (conn == NULL)
		return psprintf("destination (this cluster, %s): the engine cannot connect to itself as role \"%s\": %s; let it connect over the local socket in pg_hba.conf (peer or trust for that role)",
						local->where, local->user, error);
	res = remote_exec_params(conn, "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", 1, values);
	exists = remote_ok(res) && PQntuples(res) == 1;
	PQclear(res);
	PQfinish(conn);
	if (!exists)
		return NULL;
	conn = remote_connect(local, name, false, &error);
	if (conn == NULL)
		return psprintf("destination database \"%s\" exists and the engine cannot connect to it: %s", name, error);
	tables = remote_value(conn,
						  "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
						  "WHERE c.relkind IN ('r', 'p', 'f', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
						  "AND n.nspname !~ '^pg_' HAVING count(*) > 0", NULL);
	PQfinish(conn);
	if (tables != NULL)
		return psprintf("source \"%s\" (%s), database \"%s\": the destination database \"%s\" already has %s table%s of its own; drop them, or migrate into a database that does not exist yet",
						source->server, source->where, name, name, tables,
						strcmp(tables, "1") == 0 ? "" : "s");
	return NULL;
}

/*
 * The checks of one database: no other job migrates it, the source, the
 * destination.  Returns NULL and the database (in TopMemoryContext) when
 * they pass, else the failure.  needed_slots: the slots the job needs.
 */
char *
preflight_database(EngineJob *job, Endpoint *source, const char *name, int needed_slots,
				   EngineDatabase **out, StringInfo notes)
{
	List	   *others = engine_databases_of_other_jobs(job->id);
	Oid			oid = InvalidOid;
	ListCell   *lo;
	char	   *error;
	MemoryContext old;
	EngineDatabase *db;

	for (lo = list_head(others); lo != NULL; lo = lnext(others, lnext(others, lo)))
		if (strcmp(lfirst(lo), name) == 0)
			return source_says(source, name, "migration %s already migrates this database; delete that job or remove the database from one of them",
							   (char *) lfirst(lnext(others, lo)));
	if ((error = check_source_database(source, name, needed_slots, &oid, notes)) != NULL)
		return error;
	if ((error = check_destination(source, name)) != NULL)
		return error;
	old = MemoryContextSwitchTo(TopMemoryContext);
	db = palloc0(sizeof(EngineDatabase));
	db->name = pstrdup(name);
	db->state = DB_PREFLIGHT;
	db->source_oid = oid;
	db->source_server = pstrdup(job->source_server);
	db->lag_bytes = -1;
	db->lag_seconds = -1;
	MemoryContextSwitchTo(old);
	*out = db;
	return NULL;
}

/*
 * The source's databases, when the job migrates all of them, are names the
 * extension never judged: one it refuses in a job's list (control or
 * invisible format characters, such as U+202E, SPEC 7) is refused here too,
 * before anything is made, rather than migrated under a name that reads as
 * another and whose failure row could not be written.
 */
static char *
check_database_names(Endpoint *source, List *names)
{
	bool		own_transaction = !IsTransactionState();
	MemoryContext caller = CurrentMemoryContext;
	char	   *error = NULL;
	ListCell   *lc;

	/* judging a name may convert it to UTF-8, which looks up the conversion */
	if (own_transaction)
		StartTransactionCommand();
	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		char	   *detail = NULL;
		char	   *refusal;

		if (!pg_verify_mbstr(GetDatabaseEncoding(), name, strlen(name), true))
			refusal = psprintf("its name is not valid in the encoding %s of this database",
							   GetDatabaseEncodingName());
		else
			refusal = name_text_refusal(name, "database name", &detail);
		if (refusal != NULL)
		{
			error = source_says(source, name,
								"%s%s%s; rename the database on the source, or name the job's databases without it",
								refusal, detail ? ": " : "", detail ? detail : "");
			break;
		}
	}
	if (own_transaction)
		CommitTransactionCommand();
	MemoryContextSwitchTo(caller);
	return error;
}

/*
 * Preflight of a job: every check for every database; *databases gets the
 * EngineDatabase of each (in TopMemoryContext), *notes what the started
 * event says.  Returns NULL when every check passed, else the failure.
 */
char *
preflight_job(EngineJob *job, Endpoint *source, List **databases, char **notes)
{
	List	   *names = job->databases;
	StringInfoData said;
	ListCell   *lc;
	char	   *error = NULL;

	initStringInfo(&said);
	if (pg_program_path("pg_dump") == NULL || pg_program_path("pg_restore") == NULL)
		return psprintf("destination: pg_dump and pg_restore of PostgreSQL %s were not found beside the server (%s); install them",
						PG_VERSION, my_exec_path);
	if (job->all_databases)
	{
		names = source_databases(source, &error);
		if (error != NULL)
			return error;
		if (names == NIL)
			return psprintf("source \"%s\" (%s): it has no database to migrate (every database but postgres and the templates); name the databases in the job",
							source->server, source->where);
		if ((error = check_database_names(source, names)) != NULL)
			return error;
	}
	foreach(lc, names)
	{
		EngineDatabase *db = NULL;

		if ((error = preflight_database(job, source, lfirst(lc), list_length(names), &db, &said)) != NULL)
			return error;
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			*databases = lappend(*databases, db);
			MemoryContextSwitchTo(old);
		}
	}
	*notes = said.len > 0 ? MemoryContextStrdup(TopMemoryContext, said.data) : NULL;
	return NULL;
}
