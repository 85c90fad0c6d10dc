/*
 * src/job.h: a dms_job row as the triggers read it, how an UPDATE of it is judged, and how a job changes.
 */
#ifndef DMS_JOB_H
#define DMS_JOB_H

#include "catalog.h"
#include "columns.h"
#include "request.h"

typedef struct JobRow
{
	int64		id;
	Datum		name;
	int			migration_type;
	int			status;
	int			phase;			/* PHASE_NULL if NULL */
	Datum		databases;
	bool		databases_null;
	int			parallelism;
	int			pending;		/* -1 if NULL */
	Datum		error_message;
	bool		error_null;
	/* from 1.1; read only by the guard (rows read by job_read() leave them unset) */
	bool		has_source_server;	/* an engine-driven job */
	Datum		source_server;
	bool		has_destination_server;
	Datum		destination_server;
} JobRow;

/* How a direct UPDATE of a job is judged, from its old and new row alone. */
typedef enum UpdateKind
{
	UPDATE_NOTHING,				/* no column a person can change changed */
	UPDATE_EDGE,				/* an edge of the lifecycle, self-loops included */
	UPDATE_EDIT,				/* an edit: name, type, databases, parallelism */
	UPDATE_INVALID,				/* (status, phase) changed along no edge */
	UPDATE_MIXED				/* a transition and an edit at once */
} UpdateKind;

typedef struct UpdateJudgement
{
	UpdateKind	kind;
	ResolvedEdge edge;			/* for UPDATE_EDGE */
	bool		databases_changed;
	bool		type_changed;
	bool		name_changed;
	bool		servers_changed;
} UpdateJudgement;

/* guard.c: reading and judging rows of dms_job */
extern void job_row_read(Catalog *catalog, Relation rel, HeapTuple tuple, JobRow *row);
extern void judge_update(Catalog *catalog, Relation rel, HeapTuple oldtuple, const JobRow *old,
						 HeapTuple newtuple, const JobRow *new, bool guarded,
						 UpdateJudgement *out);
extern const char *request_cause(const Request *request);
extern void refuse_transition(const JobRow *old, const JobRow *new) pg_attribute_noreturn();
extern void refuse_request(const Request *request, const JobRow *job) pg_attribute_noreturn();
extern void refuse_engine_driven_report(int64 job_id, const char *source_server) pg_attribute_noreturn();
extern void guard_check_written(Catalog *catalog, Relation rel, HeapTuple oldtuple,
								HeapTuple newtuple);
extern bool text_array_contains(Datum array, const char *value);

/* What dms_create_job() asks for: the columns of the new job's row. */
typedef struct NewJob
{
	Datum		name;
	Datum		migration_type;
	Datum		databases;
	bool		databases_null;
	Datum		dump_parallelism;
	Datum		source_server;
	bool		source_server_null;
	Datum		destination_server;
	bool		destination_server_null;
} NewJob;

/*
 * change.c: a job's creation, change and deletion, each one write of its
 * row through the executor, with the request pushed for the triggers.
 */
extern Datum job_create(Catalog *catalog, const NewJob *job, bool *created);
extern void job_change(Catalog *catalog, Request *request);
extern bool job_read(Catalog *catalog, int64 job_id, PlanId plan, bool read_only, JobRow *job);
extern bool job_delete(Catalog *catalog, Request *request);

/* history.c and prune.c: the history's one way out besides TRUNCATE */
extern void history_record_prune(Catalog *catalog, int64 removed, int64 jobs, const char *cutoff);
extern bool history_pruning(void);

/* failures.c: a database's failure, and the follow-up of a change of a job for its failure rows */
extern void failure_record(Catalog *catalog, int64 job_id, const char *database,
						   const char *message);
extern bool failures_follow_job(Catalog *catalog, const JobRow *old, const JobRow *new);

#endif							/* DMS_JOB_H */
