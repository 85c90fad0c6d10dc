/*
 * src/catalog.c: finds the extension's tables and enum values, and keeps its prepared statements.
 *
 * Every statement names its tables with the extension's schema and its
 * operators with pg_catalog, so that nothing a user puts earlier on
 * search_path is ever used.  No user text is spliced into SQL: values travel
 * as parameters.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/inval.h"
#include "utils/syscache.h"

#include "catalog.h"
#include "columns.h"

PG_MODULE_MAGIC;

static Catalog cache;
static bool cache_valid = false;
static uint64 cache_generation = 0;
static bool owner_valid = false;
static bool owner_callback_registered = false;

typedef struct PlanText
{
	const char *sql;			/* %1$s stands for the quoted schema */
	int			nargs;
	const char *argtypes;		/* one letter a parameter, see plan_argtype */
} PlanText;

#define EQ " OPERATOR(pg_catalog.=) "

static const PlanText plan_texts[N_PLAN] = {
	[PLAN_JOB_FETCH] = {
		"SELECT status, phase, migration_type, error_message, databases "
		"FROM %1$s.dms_job WHERE id" EQ "$1", 1, "i"},
	[PLAN_JOB_LOCK] = {
		"SELECT status, phase, migration_type, error_message, databases "
		"FROM %1$s.dms_job WHERE id" EQ "$1 FOR UPDATE", 1, "i"},
	[PLAN_JOB_SOURCE_SERVER] = {
		"SELECT source_server FROM %1$s.dms_job WHERE id" EQ "$1", 1, "i"},
	[PLAN_FAILURE_ANY] = {
		"SELECT 1 FROM %1$s.dms_job_failure WHERE job_id" EQ "$1 LIMIT 1", 1, "i"},
	[PLAN_HISTORY_PRUNABLE] = {
		/*
		 * The rows of jobs that ended before $1: deleted (and not there
		 * again) or completed (and still completed, or deleted since).
		 */
		"SELECT h.ctid, h.job_id FROM %1$s.dms_job_history h WHERE h.job_id IN ("
		"SELECT e.job_id FROM %1$s.dms_job_history e "
		"WHERE e.job_id OPERATOR(pg_catalog.<>) 0 AND e.occurred_at OPERATOR(pg_catalog.<) $1 "
		"AND (e.cause" EQ "'delete' OR e.to_status" EQ "'completed') "
		"AND NOT EXISTS (SELECT FROM %1$s.dms_job j WHERE j.id" EQ "e.job_id "
		"AND j.status OPERATOR(pg_catalog.<>) 'completed') "
		"UNION SELECT j.id FROM %1$s.dms_job j WHERE j.status" EQ "'completed' "
		"AND j.status_changed_at OPERATOR(pg_catalog.<) $1) ORDER BY h.job_id, h.id", 1, "z"},
};

/*
 * The type a letter stands for, in the plans' parameters and the tables'
 * columns: i bigint, t text, a text[], z timestamptz, and the extension's
 * enums s status, p phase, m migration type, d dump parallelism.
 */
Oid
catalog_type(Catalog *catalog, char letter)
{
	switch (letter)
	{
		case 'i':
			return INT8OID;
		case 't':
			return TEXTOID;
		case 'a':
			return TEXTARRAYOID;
		case 'z':
			return TIMESTAMPTZOID;
		case 's':
			return catalog->status_type;
		case 'p':
			return catalog->phase_type;
		case 'm':
			return catalog->migration_type_type;
		case 'd':
			return catalog->parallelism_type;
	}
	elog(ERROR, "unknown type letter '%c'", letter);
	return InvalidOid;			/* keep compiler quiet */
}

static Oid
type_lookup(Oid namespace, const char *name)
{
	Oid			typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
										CStringGetDatum(name),
										ObjectIdGetDatum(namespace));

	if (!OidIsValid(typid))
		elog(ERROR, "type %s of extension dms_lifecycle is missing", name);
	return typid;
}

/* Fills oids[] with the enum values of a type, in the order of the C names. */
static void
enum_lookup(Oid typid, const char *const *names, int n, Oid *oids)
{
	for (int i = 0; i < n; i++)
	{
		oids[i] = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid,
								  ObjectIdGetDatum(typid), CStringGetDatum(names[i]));
		if (!OidIsValid(oids[i]))
			elog(ERROR, "enum value %s of extension dms_lifecycle is missing", names[i]);
	}
}

static Oid
relation_lookup(Oid namespace, const char *name)
{
	Oid			relid = get_relname_relid(name, namespace);

	if (!OidIsValid(relid))
		elog(ERROR, "table %s of extension dms_lifecycle is missing", name);
	return relid;
}

/* Forgets everything cached and looks the extension up again in a schema. */
static void
catalog_load(Oid namespace)
{
	if (cache_valid)
	{
		for (int i = 0; i < N_PLAN; i++)
		{
			if (cache.plans[i])
				SPI_freeplan(cache.plans[i]);
			if (cache.plan_sql[i])
				pfree(cache.plan_sql[i]);
		}
		if (cache.namespace_name)
			pfree(cache.namespace_name);
	}
	cache_valid = false;
	memset(&cache, 0, sizeof(cache));

	cache.namespace = namespace;
	cache.job_relid = relation_lookup(namespace, "dms_job");
	cache.failure_relid = relation_lookup(namespace, "dms_job_failure");
	cache.history_relid = relation_lookup(namespace, "dms_job_history");
	owner_valid = false;
	table_layouts_reset();

	cache.status_type = type_lookup(namespace, "dms_job_status");
	cache.phase_type = type_lookup(namespace, "dms_job_phase");
	cache.migration_type_type = type_lookup(namespace, "dms_migration_type");
	cache.parallelism_type = type_lookup(namespace, "dms_dump_parallelism");
	cache.action_type = type_lookup(namespace, "dms_action");
	cache.event_type = type_lookup(namespace, "dms_event");

	enum_lookup(cache.status_type, status_names, N_STATUS, cache.status_oids);
	enum_lookup(cache.phase_type, phase_names, N_PHASE, cache.phase_oids);
	enum_lookup(cache.migration_type_type, migration_type_names, N_MIGRATION_TYPE,
				cache.migration_type_oids);
	enum_lookup(cache.parallelism_type, dump_parallelism_names, N_DUMP_PARALLELISM,
				cache.parallelism_oids);
	enum_lookup(cache.action_type, action_names, N_ACTION, cache.action_oids);
	enum_lookup(cache.event_type, event_names, N_EVENT, cache.event_oids);

	cache.namespace_name = MemoryContextStrdup(TopMemoryContext,
											   quote_identifier(get_namespace_name(namespace)));
	cache.generation = ++cache_generation;
	cache_valid = true;
}

/* Is the cache still about the extension installed in this schema? */
static Catalog *
catalog_for_namespace(Oid namespace)
{
	if (!cache_valid || cache.namespace != namespace ||
		cache.job_relid != get_relname_relid("dms_job", namespace))
		catalog_load(namespace);
	return &cache;
}

/*
 * The catalog for a SQL-callable function, checked once per call site: the
 * extension cannot be dropped while a query that calls it runs.
 */
Catalog *
catalog_for_function(FunctionCallInfo fcinfo)
{
	FmgrInfo   *flinfo = fcinfo->flinfo;
	uint64	   *seen = (uint64 *) flinfo->fn_extra;

	if (seen != NULL && cache_valid && *seen == cache.generation)
		return &cache;

	catalog_for_namespace(get_func_namespace(flinfo->fn_oid));
	if (seen == NULL)
		seen = flinfo->fn_extra = MemoryContextAlloc(flinfo->fn_mcxt, sizeof(uint64));
	*seen = cache.generation;
	return &cache;
}

/* The catalog for a trigger on one of the extension's tables. */
Catalog *
catalog_for_relation(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);

	if (cache_valid &&
		(relid == cache.job_relid || relid == cache.failure_relid ||
		 relid == cache.history_relid))
		return &cache;
	return catalog_for_namespace(RelationGetNamespace(rel));
}

SPIPlanPtr
catalog_plan(Catalog *catalog, PlanId id)
{
	if (catalog->plans[id] == NULL)
	{
		const PlanText *text = &plan_texts[id];
		Oid			argtypes[16];
		char	   *sql = psprintf(text->sql, catalog->namespace_name);
		SPIPlanPtr	plan;
		int			n = 0;

		for (const char *c = text->argtypes; *c; c++)
			if (*c != ' ')
				argtypes[n++] = catalog_type(catalog, *c);
		Assert(n == text->nargs);

		plan = SPI_prepare(sql, text->nargs, argtypes);
		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		catalog->plans[id] = plan;
		catalog->plan_sql[id] = MemoryContextStrdup(TopMemoryContext, sql);
		pfree(sql);
	}
	return catalog->plans[id];
}

/*
 * Drops from an error's context the lines that quote the extension's own
 * statements: they tell the caller nothing about their call.
 */
static char *
context_without_statements(Catalog *catalog, const char *context)
{
	StringInfoData buf;
	const char *line = context;

	initStringInfo(&buf);
	while (line && *line)
	{
		const char *end = strchr(line, '\n');
		int			len = end ? (int) (end - line) : (int) strlen(line);
		bool		ours = false;

		for (int i = 0; i < N_PLAN && !ours; i++)
		{
			char	   *quoted;

			if (catalog->plan_sql[i] == NULL)
				continue;
			quoted = psprintf("SQL statement \"%s\"", catalog->plan_sql[i]);
			ours = (int) strlen(quoted) == len && strncmp(line, quoted, len) == 0;
			pfree(quoted);
		}
		if (!ours)
		{
			if (buf.len > 0)
				appendStringInfoChar(&buf, '\n');
			appendBinaryStringInfo(&buf, line, len);
		}
		line = end ? end + 1 : NULL;
	}
	return buf.len > 0 ? buf.data : NULL;
}

uint64
plan_execute(Catalog *catalog, PlanId id, Datum *values, const bool *nulls,
			 bool read_only)
{
	char		null_flags[16];
	int			nargs = plan_texts[id].nargs;
	SPIPlanPtr	plan = catalog_plan(catalog, id);
	MemoryContext context = CurrentMemoryContext;
	int			rc;

	for (int i = 0; i < nargs; i++)
		null_flags[i] = nulls && nulls[i] ? 'n' : ' ';

	PG_TRY();
	{
		rc = SPI_execute_plan(plan, values, null_flags, read_only, 0);
	}
	PG_CATCH();
	{
		ErrorData  *error;

		MemoryContextSwitchTo(context);
		error = CopyErrorData();
		if (error->context == NULL)
			PG_RE_THROW();
		FlushErrorState();
		error->context = context_without_statements(catalog, error->context);
		ReThrowError(error);
	}
	PG_END_TRY();
	if (rc < 0)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
	return SPI_processed;
}

/*
 * Runs a prepared read as the owner of the tables (a caller may hold only
 * the function's privilege) and copies the first ncolumns columns of its
 * first row into the caller's memory.  False if it returned no row.
 */
bool
owner_read(Catalog *catalog, PlanId id, Datum argument, bool read_only, int ncolumns,
		   Datum *values, bool *nulls)
{
	MemoryContext caller = CurrentMemoryContext;
	OwnerSwitch sw;
	bool		found;

	SPI_connect();
	owner_switch_begin(catalog, &sw);
	found = plan_execute(catalog, id, &argument, NULL, read_only) > 0;
	for (int i = 0; found && i < ncolumns; i++)
	{
		Form_pg_attribute att = TupleDescAttr(SPI_tuptable->tupdesc, i);
		Datum		value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1,
										  &nulls[i]);
		MemoryContext spi = MemoryContextSwitchTo(caller);

		values[i] = nulls[i] ? (Datum) 0 : datumCopy(value, att->attbyval, att->attlen);
		MemoryContextSwitchTo(spi);
	}
	owner_switch_end(&sw);
	SPI_finish();
	return found;
}

int
enum_index(const Oid *oids, int n, Datum value, const char *type_name)
{
	Oid			oid = DatumGetObjectId(value);

	for (int i = 0; i < n; i++)
		if (oids[i] == oid)
			return i;
	elog(ERROR, "value %u is not of type %s", oid, type_name);
	return -1;					/* keep compiler quiet */
}

/* ALTER TABLE dms_job OWNER TO ... invalidates the relation's cache entry. */
static void
owner_invalidate(Datum arg, Oid relid)
{
	if (!OidIsValid(relid) || relid == cache.job_relid)
		owner_valid = false;
}

/* The owner of dms_job, who owns the extension's tables and does its work. */
static Oid
catalog_owner(Catalog *catalog)
{
	if (!owner_callback_registered)
	{
		CacheRegisterRelcacheCallback(owner_invalidate, (Datum) 0);
		owner_callback_registered = true;
	}
	if (!owner_valid)
	{
		HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(catalog->job_relid));

		if (!HeapTupleIsValid(tuple))
			elog(ERROR, "cache lookup failed for relation %u", catalog->job_relid);
		catalog->owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
		ReleaseSysCache(tuple);
		owner_valid = true;
	}
	return catalog->owner;
}

/*
 * Work done as the owner runs as a security-restricted operation, as
 * PostgreSQL runs code as a table's owner (VACUUM's index functions, a
 * materialized view's query): user code that it fires (a trigger a user put
 * on the tables) cannot change the session behind the caller's back.
 */
void
owner_switch_begin(Catalog *catalog, OwnerSwitch *sw)
{
	Oid			owner = catalog_owner(catalog);

	GetUserIdAndSecContext(&sw->saved_user, &sw->saved_context);
	SetUserIdAndSecContext(owner, sw->saved_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

void
owner_switch_end(OwnerSwitch *sw)
{
	SetUserIdAndSecContext(sw->saved_user, sw->saved_context);
}

char *
state_text(int status, int phase)
{
	if (phase == PHASE_NULL)
		return psprintf("\"%s\"", status_labels[status]);
	return psprintf("\"%s\" (%s)", status_labels[status], phase_labels[phase]);
}

char *
allowed_actions_text(int status, int phase)
{
	bool		allowed[N_ACTION];
	StringInfoData buf;

	initStringInfo(&buf);
	lifecycle_allowed_actions(status, phase, allowed);
	for (int a = 0; a < N_ACTION; a++)
	{
		if (!allowed[a])
			continue;
		if (buf.len > 0)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, action_labels[a]);
	}
	return buf.data;
}

void
require_argument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

void
report_null_column(Relation rel, AttrNumber attnum)
{
	ereport(ERROR,
			(errcode(ERRCODE_NOT_NULL_VIOLATION),
			 errmsg("null value in column \"%s\" violates not-null constraint",
					NameStr(TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attname)),
			 errtablecol(rel, attnum)));
}

void
report_job_missing(int64 job_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("migration job " INT64_FORMAT " does not exist", job_id)));
}

/* The code point of the character at c, in the database encoding's terms. */
static pg_wchar
character_at(const unsigned char *c)
{
	return utf8_to_unicode(c);
}

/*
 * The text in UTF-8, to judge its characters by their Unicode code points
 * whatever the database's encoding.  SQL_ASCII holds bytes of no declared
 * encoding: they are judged as UTF-8 when they are valid UTF-8, else byte
 * by byte (a byte above 0x7F then counts as no character of any class).
 */
static const char *
text_as_utf8(const char *value)
{
	int			encoding = GetDatabaseEncoding();
	int			length = strlen(value);

	if (encoding == PG_UTF8)
		return value;
	if (encoding == PG_SQL_ASCII)
	{
		if (pg_verify_mbstr(PG_UTF8, value, length, true))
			return value;
		else
		{
			char	   *ascii = pstrdup(value);

			for (char *c = ascii; *c; c++)
				if ((unsigned char) *c >= 0x80)
					*c = 'x';
			return ascii;
		}
	}
	return pg_server_to_any(value, length, PG_UTF8);
}

/* Unicode white space, for "blank" */
static bool
character_is_space(pg_wchar ch)
{
	return (ch >= 0x09 && ch <= 0x0D) || ch == 0x20 || ch == 0x85 || ch == 0xA0 ||
		ch == 0x1680 || (ch >= 0x2000 && ch <= 0x200B) || ch == 0x2028 || ch == 0x2029 ||
		ch == 0x202F || ch == 0x205F || ch == 0x3000 || ch == 0xFEFF;
}

/* C0 and C1 control characters and DEL */
static bool
character_is_control(pg_wchar ch)
{
	return ch < 0x20 || (ch >= 0x7F && ch <= 0x9F);
}

/*
 * Unicode format characters (general category Cf, Unicode 15): invisible,
 * yet they change how a name reads: bidirectional overrides (U+202E shows
 * "txt.exe" as "exe.txt"), zero-width spaces and joiners, the soft hyphen.
 */
static bool
character_is_format(pg_wchar ch)
{
	static const pg_wchar ranges[][2] = {
		{0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C}, {0x06DD, 0x06DD},
		{0x070F, 0x070F}, {0x0890, 0x0891}, {0x08E2, 0x08E2}, {0x180E, 0x180E},
		{0x200B, 0x200F}, {0x202A, 0x202E}, {0x2060, 0x2064}, {0x2066, 0x206F},
		{0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
		{0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
		{0xE0020, 0xE007F}
	};

	for (int i = 0; i < (int) lengthof(ranges); i++)
		if (ch >= ranges[i][0] && ch <= ranges[i][1])
			return true;
	return false;
}

/* An error message says something: not NULL, not only white space. */
bool
message_is_blank(const char *message)
{
	if (message == NULL)
		return true;
	for (const char *c = text_as_utf8(message); *c; c += pg_utf_mblen((const unsigned char *) c))
		if (!character_is_space(character_at((const unsigned char *) c)))
			return false;
	return true;
}

/*
 * Job and database names: 1 to 63 characters, not blank, no control
 * characters (they would make the names unreadable in psql and logs) and
 * no format characters (they would make two names look alike).  Returns
 * why the name is refused (and a detail, or NULL, in *detail), or NULL if
 * it is not.  The value is in the database's encoding; one from elsewhere
 * (a source's list of databases) must be verified first.
 */
char *
name_text_refusal(const char *value, const char *what, char **detail)
{
	int			length = pg_mbstrlen(value);

	*detail = NULL;
	if (length < 1 || length > NAMEDATALEN - 1)
	{
		*detail = psprintf("The %s given has %d characters.", what, length);
		return psprintf("%s must be 1 to %d characters long", what, NAMEDATALEN - 1);
	}
	for (const char *c = text_as_utf8(value); *c; c += pg_utf_mblen((const unsigned char *) c))
	{
		pg_wchar	ch = character_at((const unsigned char *) c);

		if (character_is_control(ch))
			return psprintf("%s must not contain control characters", what);
		if (character_is_format(ch))
		{
			*detail = psprintf("It contains U+%04X, which changes how the name reads without showing.",
							   (unsigned int) ch);
			return psprintf("%s must not contain invisible formatting characters", what);
		}
	}
	if (message_is_blank(value))
		return psprintf("%s must not be blank", what);
	return NULL;
}

/* A job or database name that name_text_refusal() refuses is an error (22023). */
void
validate_name_text(const char *value, const char *what)
{
	char	   *detail;
	char	   *refusal = name_text_refusal(value, what, &detail);

	if (refusal != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg_internal("%s", refusal),
				 detail ? errdetail_internal("%s", detail) : 0));
}
