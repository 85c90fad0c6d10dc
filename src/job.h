/*
 * src/job.h: a dms_job row as the triggers read it, and how an UPDATE of it is judged.
 */
#ifndef DMS_JOB_H
#define DMS_JOB_H

#include "catalog.h"
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
} UpdateJudgement;

extern void job_row_read(Catalog *catalog, TupleDesc desc, HeapTuple tuple, JobRow *row);
extern void judge_update(TupleDesc desc, HeapTuple oldtuple, const JobRow *old,
						 HeapTuple newtuple, const JobRow *new, bool guarded,
						 UpdateJudgement *out);
extern const char *request_cause(const Request *request);
extern bool text_array_contains(Datum array, const char *value);

/* guard.c: the row an action or event makes of a job's row */
extern HeapTuple guard_requested_change(Catalog *catalog, TupleDesc desc, HeapTuple oldtuple);

/* history.c: the history row, notification and failure rows of an UPDATE */
extern void job_record_update(Catalog *catalog, TupleDesc desc, HeapTuple oldtuple,
							  HeapTuple newtuple);

/* update.c: an action's change of a job's row, made without the executor */
extern Datum job_change(Catalog *catalog, Request *request, int result_column);

/* failures.c: what a change of a job does to its failure rows */
extern void failures_follow_job(Catalog *catalog, const JobRow *old, const JobRow *new);

#endif							/* DMS_JOB_H */
