/*
 * src/engine/internal.h: the built-in migration engine: its settings, its shared
 * memory, its workers, and the pieces each worker is made of.
 *
 * Three kinds of background worker (ENGINE.md section 8):
 *   - the launcher, registered at server start, connected to no database,
 *     keeps one manager running while dms_lifecycle.database exists;
 *   - the manager, connected to that database, waits for the extension and
 *     keeps one job worker running for each engine-driven job with work to do;
 *   - a job worker drives one job's databases through small steps, each of
 *     which can be redone after a crash, and reports through dms_report.
 */
#ifndef DMS_ENGINE_INTERNAL_H
#define DMS_ENGINE_INTERNAL_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "libpq-fe.h"
#include "nodes/pg_list.h"

#include "engine.h"

/* settings.c: the GUCs of ENGINE.md section 2 */
extern char *engine_database;
extern char *engine_role;
extern int	engine_naptime_ms;
extern int	engine_error_grace_s;
extern int	engine_promote_timeout_s;
extern bool engine_fence_source;
extern int	engine_verify;
extern int	engine_split_table_kb;
extern int	engine_copy_lock_timeout_ms;

typedef enum VerifyMode
{
	VERIFY_OFF,
	VERIFY_COUNT,
	VERIFY_CHECKSUM
} VerifyMode;

extern void engine_define_settings(void);

/* shared.c: what the engine's processes share */
extern void engine_shmem_init(void);
extern void engine_wake_manager(void);
extern bool engine_set_manager(void);
extern bool engine_manager_alive(void);
extern bool engine_claim_job(int64 job_id);
extern pid_t engine_job_worker(int64 job_id);
extern bool engine_apply_error(Oid subid, uint64 *count, TimestampTz *at, char *message, int size);
extern void engine_forget_apply_errors(Oid subid);

/* launcher.c */
extern void engine_register_launcher(void);
extern PGDLLEXPORT void dms_engine_launcher_main(Datum arg);
extern PGDLLEXPORT void dms_engine_manager_main(Datum arg);
extern bool engine_wait(long timeout_ms);

/* worker.c */
extern PGDLLEXPORT void dms_engine_job_main(Datum arg);

/*
 * remote.c: libpq connections that wait on the worker's latch, so that a
 * worker answers SIGTERM while it waits for another server.
 */
typedef struct Endpoint
{
	char	   *server;			/* foreign server name, for messages */
	char	   *where;			/* "host h port p", for messages */
	List	   *keywords;		/* libpq keywords (char *), values below */
	List	   *values;
	char	   *user;
	char	   *password;		/* NULL if the mapping has none */
} Endpoint;

extern Endpoint *endpoint_for_server(const char *server);
extern Endpoint *endpoint_local(void);
extern PGconn *remote_connect(const Endpoint *ep, const char *dbname, bool replication,
							  char **error);
extern bool connect_pair(const Endpoint *source, const char *dbname, PGconn **src, PGconn **dst,
						 char **error);
extern PGresult *remote_exec(PGconn *conn, const char *sql);
extern PGresult *remote_exec_params(PGconn *conn, const char *sql, int nparams,
									const char *const *values);
extern bool remote_ok(PGresult *res);
extern char *remote_error(PGconn *conn, PGresult *res);
extern bool remote_command(PGconn *conn, const char *sql, char **error);
extern char *remote_value(PGconn *conn, const char *sql, char **error);
extern PGresult *remote_collect(PGconn *conn);
extern char *remote_result_value(PGconn *conn, PGresult *res, char **error);
extern PGresult *remote_wait_result(PGconn *conn);
extern bool remote_wait_socket(PGconn *conn, bool for_write, long timeout_ms);
extern char *endpoint_conninfo(const Endpoint *ep, const char *dbname, const char *passfile);
extern char *job_passfile_path(int64 job_id);
extern void job_passfile_write(int64 job_id, const Endpoint *ep);
extern void job_passfile_remove(int64 job_id);
extern char *quote_conninfo_value(const char *value);
extern int	run_program(const char *const *argv, const char *passfile, char **error);

/* the job a worker drives, as dms_job says it now */
typedef struct EngineJob
{
	int64		id;
	bool		exists;
	char	   *name;
	int			status;			/* lifecycle.h ST_* */
	int			phase;			/* PH_* or PHASE_NULL */
	int			migration_type; /* TYPE_* */
	int			parallelism;	/* 0 min, 1 optimal, 2 max */
	List	   *databases;		/* char *, or NIL when all */
	bool		all_databases;
	char	   *source_server;
} EngineJob;

/* the engine's record of one (job, database): a row of dms_job_database */
typedef enum DatabaseState
{
	DB_PREFLIGHT,
	DB_SCHEMA,
	DB_COPYING,
	DB_INDEXING,
	DB_STREAMING,
	DB_STOPPED,
	DB_FAILED,
	DB_PROMOTING,
	DB_DONE,
	N_DB_STATE
} DatabaseState;

extern const char *const database_state_names[N_DB_STATE];

/* lag.c: the source's WAL position, noted with its clock at each observation */
#define LAG_NOTES 128

typedef struct LagNote
{
	uint64		lsn;
	double		at;				/* the source's clock, seconds since the epoch */
} LagNote;

typedef struct LagClock
{
	int			count;
	LagNote		notes[LAG_NOTES];
} LagClock;

typedef struct EngineDatabase
{
	char	   *name;
	DatabaseState state;
	bool		created_database;
	Oid			destination_oid;	/* of the database the engine created */
	char	   *source_server;	/* the job's, kept for after its deletion */
	Oid			source_oid;
	int			tables_total;
	int			tables_copied;
	int64		bytes_total;
	int64		bytes_copied;
	int64		rows_copied;
	int64		lag_bytes;		/* -1 unknown */
	double		lag_seconds;	/* -1 unknown */
	char	   *last_error;
	/* the worker's own memory, not stored */
	uint64		errors_seen;
	TimestampTz error_since;
	TimestampTz last_error_at;
	bool		progress_dirty;
	LagClock	lag_clock;
	PGconn	   *exporter;		/* the replication connection holding the snapshot */
	char	   *snapshot;		/* the exported snapshot, while exporter lives */
	List	   *tables;			/* SourceTable *, read in the snapshot */
} EngineDatabase;

extern void lag_observe(EngineDatabase *db, uint64 source_lsn, double source_at,
						uint64 applied_lsn, double fallback_seconds);

/* catalog.c (engine): reading the job, the engine's rows, and reporting */
extern void engine_begin(void);
extern void engine_commit(void);
extern bool engine_read_job(int64 job_id, EngineJob *job);
extern List *engine_read_databases(int64 job_id);
extern void engine_save_database(int64 job_id, EngineDatabase *db);
extern void engine_forget_database(int64 job_id, const char *name);
extern void database_error(EngineDatabase *db, const char *error);
extern bool engine_report(int64 job_id, const char *event, const char *message,
						  const char *database);
extern char *engine_schema(void);
extern List *engine_databases_of_other_jobs(int64 job_id);

/* naming */
extern char *engine_object_name(int64 job_id, Oid source_oid, const char *suffix);

/* preflight.c */
extern char *preflight_job(EngineJob *job, Endpoint *source, List **databases, char **notes);
extern char *preflight_database(EngineJob *job, Endpoint *source, const char *name,
								int needed_slots, EngineDatabase **out, StringInfo notes);
extern void engine_directory(void);
extern bool stream_worker_running(int64 job_id, EngineDatabase *db);
extern void stream_errors_known(int64 job_id, EngineDatabase *db);
extern bool copy_finish(Endpoint *source, EngineDatabase *db, char **error);
extern char *pg_program_path(const char *name);

/* the source's tables the engine copies: oid, qualified, bytes, has_identity, columns */
extern char *source_tables_sql(int server_version);
extern char *source_table_name(PGresult *res, int row);

/* copy.c: one database from the consistent point to indexed tables */
typedef enum StepResult
{
	STEP_DONE,
	STEP_FAILED,				/* the database failed: *error says why */
	STEP_INTERRUPTED			/* the job was stopped, deleted or changed */
} StepResult;

extern StepResult copy_prepare(EngineJob *job, Endpoint *source, EngineDatabase *db,
							   char **error);
extern StepResult copy_data(EngineJob *job, Endpoint *source, EngineDatabase *db,
							char **error);
extern void copy_release(EngineDatabase *db);
extern bool copy_should_stop(EngineJob *job);

/* stream.c: publications, slots, subscriptions */
extern bool stream_take_down(int64 job_id, Endpoint *source, EngineDatabase *db);
extern bool stream_empty_destination(EngineDatabase *db, char **error);
extern bool stream_subscribe(int64 job_id, Endpoint *source, EngineDatabase *db, char **error);
extern bool stream_set_enabled(int64 job_id, EngineDatabase *db, bool enabled, char **error);
extern void stream_observe(int64 job_id, Endpoint *source, EngineDatabase *db);
extern bool stream_caught_up(int64 job_id, Endpoint *source, EngineDatabase *db,
							 const char *lsn, char **error);

/* promote.c */
extern bool promote_job(EngineJob *job, Endpoint *source, List *databases, char **error);
extern void fence_lift(Endpoint *source, List *databases);

#endif							/* DMS_ENGINE_INTERNAL_H */
