/*
 * src/engine/remote.c: connections to the source and to this cluster, and
 * the programs the engine runs (pg_dump, pg_restore).
 *
 * Every wait is on the worker's latch and the connection's socket, so that a
 * worker answers SIGTERM (a fast shutdown, a terminated worker) while it
 * waits.  A password goes to libpq in memory, to subscriptions and programs
 * through a password file the engine writes (mode 0600, under the data
 * directory), and nowhere else: what the engine says about a connection is
 * the server's name, host and port.
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "storage/fd.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "internal.h"

/* The user mapping the engine uses: engine_role's, else PUBLIC's; NULL if none. */
static UserMapping *
engine_mapping(Oid serverid)
{
	HeapTuple	tp;
	Oid			users[2] = {GetUserId(), InvalidOid};

	for (int i = 0; i < 2; i++)
	{
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(users[i]),
							 ObjectIdGetDatum(serverid));
		if (HeapTupleIsValid(tp))
		{
			ReleaseSysCache(tp);
			return GetUserMapping(users[i], serverid);
		}
	}
	return NULL;
}

static void
endpoint_add(Endpoint *ep, const char *keyword, const char *value)
{
	ep->keywords = lappend(ep->keywords, pstrdup(keyword));
	ep->values = lappend(ep->values, pstrdup(value));
}

static const char *
endpoint_option(const Endpoint *ep, const char *keyword)
{
	ListCell   *k,
			   *v;

	forboth(k, ep->keywords, v, ep->values)
		if (strcmp(lfirst(k), keyword) == 0)
			return lfirst(v);
	return NULL;
}

static void
endpoint_describe(Endpoint *ep)
{
	const char *host = endpoint_option(ep, "host");
	const char *port = endpoint_option(ep, "port");

	if (host == NULL)
		host = endpoint_option(ep, "hostaddr");
	ep->where = psprintf("host %s port %s", host ? host : "(default)", port ? port : "(default)");
}

/*
 * The source a job's foreign server names, with the engine's user mapping.
 * Within a transaction; the endpoint lives in TopMemoryContext.  Errors
 * (22023, 42704) name the server and the fix.
 */
Endpoint *
endpoint_for_server(const char *server)
{
	ForeignServer *fs;
	UserMapping *um;
	ForeignDataWrapper *fdw;
	MemoryContext old;
	Endpoint   *ep;
	ListCell   *lc;

	fs = GetForeignServerByName(server, true);
	if (fs == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("source \"%s\": the foreign server does not exist", server),
				 errhint("Create it with CREATE SERVER ... FOREIGN DATA WRAPPER dms_lifecycle_connection.")));
	fdw = GetForeignDataWrapper(fs->fdwid);
	if (strcmp(fdw->fdwname, "dms_lifecycle_connection") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source \"%s\": the foreign server belongs to the wrapper \"%s\"",
						server, fdw->fdwname),
				 errhint("Use a server of the wrapper dms_lifecycle_connection.")));
	/*
	 * The engine is a superuser: it connects only where a superuser said it
	 * may (whoever owns a server chooses its host, its socket, its SSL key
	 * files), as postgres_fdw lets only superusers connect without a password.
	 */
	if (!superuser_arg(fs->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("source \"%s\": the foreign server is owned by role \"%s\", which is not a superuser",
						server, GetUserNameFromId(fs->owner, false)),
				 errhint("The engine, a superuser, connects only through servers a superuser owns: ALTER SERVER %s OWNER TO a superuser.",
						 quote_identifier(server))));
	um = engine_mapping(fs->serverid);
	if (um == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("source \"%s\": no user mapping for role \"%s\" or PUBLIC",
						server, GetUserNameFromId(GetUserId(), false)),
				 errhint("Create one with CREATE USER MAPPING FOR PUBLIC SERVER %s OPTIONS (user '...', password '...').",
						 quote_identifier(server))));

	old = MemoryContextSwitchTo(TopMemoryContext);
	ep = palloc0(sizeof(Endpoint));
	ep->server = pstrdup(server);
	foreach(lc, fs->options)
	{
		DefElem    *d = lfirst(lc);

		endpoint_add(ep, d->defname, defGetString(d));
	}
	foreach(lc, um->options)
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "user") == 0)
			ep->user = pstrdup(defGetString(d));
		else if (strcmp(d->defname, "password") == 0)
			ep->password = pstrdup(defGetString(d));
	}
	if (ep->user == NULL)
		ep->user = pstrdup(GetUserNameFromId(GetUserId(), false));
	if ((ep->password && strpbrk(ep->password, "\r\n") != NULL) || strpbrk(ep->user, "\r\n") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source \"%s\": the user mapping's user or password contains a line break, which a password file cannot hold",
						server)));
	endpoint_describe(ep);
	MemoryContextSwitchTo(old);
	return ep;
}

/*
 * This cluster, over its first Unix socket (or localhost), as the engine's
 * role; first called in a transaction (the worker does so when it starts).
 */
Endpoint *
endpoint_local(void)
{
	static Endpoint *local = NULL;

	if (local == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		char	   *dirs = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
		char	   *comma = strchr(dirs, ',');
		char	   *host;

		if (comma)
			*comma = '\0';
		host = dirs;
		while (*host == ' ')
			host++;
		local = palloc0(sizeof(Endpoint));
		local->server = "this cluster";
		endpoint_add(local, "host", *host ? host : "localhost");
		endpoint_add(local, "port", psprintf("%d", PostPortNumber));
		local->user = pstrdup(GetUserNameFromId(GetUserId(), false));
		endpoint_describe(local);
		MemoryContextSwitchTo(old);
	}
	return local;
}

/* The first line of a libpq message, without its newline. */
static char *
first_line(const char *message)
{
	char	   *s = pstrdup(message ? message : "");
	char	   *nl;

	/* libpq puts the most useful line last for a failed connection */
	while ((nl = strrchr(s, '\n')) != NULL && nl[1] == '\0')
		*nl = '\0';
	return s;
}

/*
 * Waits until the connection's socket is readable (or writable); false on
 * timeout.  timeout_ms < 0 waits for ever.  Answers SIGTERM.
 */
bool
remote_wait_socket(PGconn *conn, bool for_write, long timeout_ms)
{
	int			rc;
	int			events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH |
		(for_write ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE);

	if (timeout_ms >= 0)
		events |= WL_TIMEOUT;
	rc = WaitLatchOrSocket(MyLatch, events, PQsocket(conn), timeout_ms, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	return (rc & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE)) != 0;
}

static void
ignore_notice(void *arg, const char *message)
{
}

PGconn *
remote_connect(const Endpoint *ep, const char *dbname, bool replication, char **error)
{
	int			n = list_length(ep->keywords) + 8;
	const char **keywords = palloc0(sizeof(char *) * n);
	const char **values = palloc0(sizeof(char *) * n);
	int			i = 0;
	ListCell   *k,
			   *v;
	PGconn	   *conn;
	PostgresPollingStatusType status = PGRES_POLLING_WRITING;

	forboth(k, ep->keywords, v, ep->values)
	{
		keywords[i] = lfirst(k);
		values[i++] = lfirst(v);
	}
	if (endpoint_option(ep, "connect_timeout") == NULL)
	{
		keywords[i] = "connect_timeout";
		values[i++] = "30";
	}
	keywords[i] = "fallback_application_name";
	values[i++] = "dms_lifecycle";
	keywords[i] = "user";
	values[i++] = ep->user;
	if (ep->password)
	{
		keywords[i] = "password";
		values[i++] = ep->password;
	}
	keywords[i] = "dbname";
	values[i++] = dbname;
	if (replication)
	{
		keywords[i] = "replication";
		values[i++] = "database";
	}
	keywords[i] = NULL;
	values[i] = NULL;

	conn = PQconnectStartParams(keywords, values, false);
	pfree(keywords);
	pfree(values);
	if (conn == NULL)
	{
		*error = pstrdup("out of memory");
		return NULL;
	}
	while (PQstatus(conn) != CONNECTION_BAD && status != PGRES_POLLING_OK)
	{
		if (status == PGRES_POLLING_READING || status == PGRES_POLLING_WRITING)
			remote_wait_socket(conn, status == PGRES_POLLING_WRITING, 1000);
		status = PQconnectPoll(conn);
		if (status == PGRES_POLLING_FAILED)
			break;
	}
	if (PQstatus(conn) != CONNECTION_OK)
	{
		*error = first_line(PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	/* the servers' notices (DROP ... IF EXISTS) are not the engine's to log */
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	if (PQsetnonblocking(conn, 1) != 0)
	{
		*error = first_line(PQerrorMessage(conn));
		PQfinish(conn);
		return NULL;
	}
	/*
	 * Identifiers from the source are always quoted; nothing depends on its
	 * search_path.  The engine's own sessions write through the fence it
	 * puts on a promoted source (to take down its publications).
	 */
	if (!replication)
	{
		PGresult   *res = remote_exec(conn, "SELECT pg_catalog.set_config('search_path', '', false), "
									  "pg_catalog.set_config('default_transaction_read_only', 'off', false)");

		if (!remote_ok(res))
		{
			*error = remote_error(conn, res);
			PQclear(res);
			PQfinish(conn);
			return NULL;
		}
		PQclear(res);
	}
	return conn;
}

/* A connection to a database on the source and one to its copy here; false if either fails. */
bool
connect_pair(const Endpoint *source, const char *dbname, PGconn **src, PGconn **dst, char **error)
{
	*src = remote_connect(source, dbname, false, error);
	if (*src == NULL)
		return false;
	*dst = remote_connect(endpoint_local(), dbname, false, error);
	if (*dst == NULL)
	{
		PQfinish(*src);
		return false;
	}
	return true;
}

/* The next result of the command in flight (NULL when there is none). */
PGresult *
remote_wait_result(PGconn *conn)
{
	for (;;)
	{
		if (PQflush(conn) > 0)
		{
			remote_wait_socket(conn, true, -1);
			continue;
		}
		if (!PQisBusy(conn))
			return PQgetResult(conn);
		remote_wait_socket(conn, false, -1);
		if (!PQconsumeInput(conn))
			return PQgetResult(conn);
	}
}

/* The result of the query sent last on conn (the first error, else the last result). */
PGresult *
remote_collect(PGconn *conn)
{
	PGresult   *last = NULL;
	PGresult   *res;

	while ((res = remote_wait_result(conn)) != NULL)
	{
		/* keep the first error, else the last result */
		if (last != NULL && PQresultStatus(last) == PGRES_FATAL_ERROR)
		{
			PQclear(res);
			continue;
		}
		if (last)
			PQclear(last);
		last = res;
		if (PQresultStatus(res) == PGRES_COPY_IN || PQresultStatus(res) == PGRES_COPY_OUT ||
			PQresultStatus(res) == PGRES_COPY_BOTH)
			break;
	}
	return last;
}

PGresult *
remote_exec(PGconn *conn, const char *sql)
{
	if (!PQsendQuery(conn, sql))
		return NULL;
	return remote_collect(conn);
}

PGresult *
remote_exec_params(PGconn *conn, const char *sql, int nparams, const char *const *values)
{
	if (!PQsendQueryParams(conn, sql, nparams, NULL, values, NULL, NULL, 0))
		return NULL;
	return remote_collect(conn);
}

bool
remote_ok(PGresult *res)
{
	return res != NULL && (PQresultStatus(res) == PGRES_COMMAND_OK ||
						   PQresultStatus(res) == PGRES_TUPLES_OK);
}

/* PostgreSQL's own error text for a failed command. */
char *
remote_error(PGconn *conn, PGresult *res)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

	if (msg != NULL)
		return pstrdup(msg);
	return first_line(PQerrorMessage(conn));
}

bool
remote_command(PGconn *conn, const char *sql, char **error)
{
	PGresult   *res = remote_exec(conn, sql);
	bool		ok = remote_ok(res);

	if (!ok && error)
		*error = remote_error(conn, res);
	PQclear(res);
	return ok;
}

/* The first value of a query's first row (NULL on error, or a NULL value). */
char *
remote_value(PGconn *conn, const char *sql, char **error)
{
	return remote_result_value(conn, remote_exec(conn, sql), error);
}

/* The first value of a query's result, which it clears (NULL on error, with *error). */
char *
remote_result_value(PGconn *conn, PGresult *res, char **error)
{
	char	   *value = NULL;

	if (!remote_ok(res))
	{
		if (error)
			*error = remote_error(conn, res);
	}
	else if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		value = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return value;
}

char *
quote_conninfo_value(const char *value)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '\'');
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(&s, '\\');
		appendStringInfoChar(&s, *p);
	}
	appendStringInfoChar(&s, '\'');
	return s.data;
}

/*
 * A connection string without the password: for subscriptions and the
 * programs, which read the password from the job's password file.
 */
char *
endpoint_conninfo(const Endpoint *ep, const char *dbname, const char *passfile)
{
	StringInfoData s;
	ListCell   *k,
			   *v;

	initStringInfo(&s);
	forboth(k, ep->keywords, v, ep->values)
		appendStringInfo(&s, "%s=%s ", (char *) lfirst(k), quote_conninfo_value(lfirst(v)));
	appendStringInfo(&s, "user=%s dbname=%s fallback_application_name=dms_lifecycle",
					 quote_conninfo_value(ep->user), quote_conninfo_value(dbname));
	if (passfile)
		appendStringInfo(&s, " passfile=%s", quote_conninfo_value(passfile));
	return s.data;
}

char *
job_passfile_path(int64 job_id)
{
	return psprintf("%s/dms_lifecycle/job_" INT64_FORMAT ".pass", DataDir, job_id);
}

static void
append_passfile_field(StringInfo s, const char *value)
{
	for (const char *p = value; *p; p++)
	{
		if (*p == ':' || *p == '\\')
			appendStringInfoChar(s, '\\');
		appendStringInfoChar(s, *p);
	}
}

/*
 * Writes the job's password file (mode 0600): one line for any host, port
 * and database, with the mapping's user and password.  Rewritten whenever a
 * worker starts, so that a changed user mapping is used.
 */
/* The engine's directory in the data directory: password files and dumps. */
void
engine_directory(void)
{
	char	   *dir = psprintf("%s/dms_lifecycle", DataDir);

	if (mkdir(dir, S_IRWXU) != 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
}

void
job_passfile_write(int64 job_id, const Endpoint *ep)
{
	char	   *path = job_passfile_path(job_id);
	char	   *tmp = psprintf("%s.tmp", path);
	StringInfoData line;
	int			fd;

	engine_directory();
	initStringInfo(&line);
	appendStringInfoString(&line, "*:*:*:");
	append_passfile_field(&line, ep->user);
	appendStringInfoChar(&line, ':');
	append_passfile_field(&line, ep->password ? ep->password : "");
	appendStringInfoChar(&line, '\n');

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", tmp)));
	if (write(fd, line.data, line.len) != line.len || pg_fsync(fd) != 0)
	{
		int			save = errno;

		close(fd);
		errno = save;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", tmp)));
	}
	close(fd);
	/* the password is not kept in memory longer than needed */
	memset(line.data, 0, line.len);
	if (rename(tmp, path) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename file \"%s\" to \"%s\": %m", tmp, path)));
}

void
job_passfile_remove(int64 job_id)
{
	char	   *path = job_passfile_path(job_id);

	if (unlink(path) != 0 && errno != ENOENT)
		ereport(WARNING,
				(errcode_for_file_access(),
				 errmsg("could not remove file \"%s\": %m", path)));
}

/*
 * Runs a program (argv[0] is a path) with the job's password file, waits for
 * it on the latch, and returns its exit status; *error gets the end of what
 * it wrote to stderr.  A worker told to stop kills the program first.
 */
int
run_program(const char *const *argv, const char *passfile, char **error)
{
	int			pipefd[2];
	pid_t		pid;
	StringInfoData err;
	int			status = 0;

	if (pipe(pipefd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create a pipe: %m")));
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not start \"%s\": %m", argv[0])));
	if (pid == 0)
	{
		int			devnull = open("/dev/null", O_RDWR);
		sigset_t	all;

		/* the child: no PostgreSQL code runs here */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGQUIT, SIG_DFL);
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		close(pipefd[1]);
		if (passfile)
			setenv("PGPASSFILE", passfile, 1);
		else
			unsetenv("PGPASSFILE");
		unsetenv("PGPASSWORD");
		setenv("PGAPPNAME", "dms_lifecycle", 1);
		execv(argv[0], (char *const *) argv);
		_exit(127);
	}
	close(pipefd[1]);
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	initStringInfo(&err);
	for (;;)
	{
		char		buf[4096];
		ssize_t		n;
		pid_t		done;
		int			rc;

		while ((n = read(pipefd[0], buf, sizeof(buf))) > 0)
		{
			appendBinaryStringInfo(&err, buf, n);
			if (err.len > 65536)
			{
				/* keep the end, where the error is */
				memmove(err.data, err.data + err.len - 8192, 8192);
				err.len = 8192;
				err.data[err.len] = '\0';
			}
		}
		done = waitpid(pid, &status, WNOHANG);
		if (done == pid)
			break;
		rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT |
							   WL_EXIT_ON_PM_DEATH, pipefd[0], 100, PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
		if (ProcDiePending)
		{
			kill(pid, SIGTERM);
			waitpid(pid, &status, 0);
			close(pipefd[0]);
			CHECK_FOR_INTERRUPTS();
		}
	}
	{
		char		buf[4096];
		ssize_t		n;

		while ((n = read(pipefd[0], buf, sizeof(buf))) > 0)
			appendBinaryStringInfo(&err, buf, n);
	}
	close(pipefd[0]);
	while (err.len > 0 && err.data[err.len - 1] == '\n')
		err.data[--err.len] = '\0';
	*error = err.data;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
