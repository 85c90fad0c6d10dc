/*
 * src/request.h: what the action or event being performed asks of the triggers.
 */
#ifndef DMS_REQUEST_H
#define DMS_REQUEST_H

#include "postgres.h"

#include "utils/rel.h"

#include "lifecycle.h"

/* What an edit changes. */
typedef enum EditKind
{
	EDIT_NONE,
	EDIT_DUMP_PARALLELISM,
	EDIT_ADD_DATABASE,
	EDIT_REMOVE_DATABASE
} EditKind;

/*
 * A request that names no action or event and only carries the actor into
 * the triggers that a statement of the extension's own sets off.
 */
#define REQUEST_NONE	(-1)

/*
 * An action or event that a function or trigger asks the guard to apply to
 * one job.  Requests nest (a failure row's trigger reports "failed" while an
 * operator's call is under way) and live on the C stack of their caller.
 */
typedef struct Request
{
	EdgeKind	kind;
	int			name;			/* JobAction, JobEvent or REQUEST_NONE */
	int64		job_id;
	const char *message;		/* the event's message, or NULL */
	const char *database;		/* the database concerned, or NULL */
	EditKind	edit;
	int			parallelism;	/* DumpParallelism, for EDIT_DUMP_PARALLELISM */
	Oid			actor;
	const char *history_message;	/* what the guard did, for the history row */

	/* What the history trigger saw the change do, and its follow-up. */
	bool		recorded;		/* false: a user's BEFORE trigger skipped it */
	int			result_status;	/* the job's state after the change */
	int			result_phase;
	struct Request *outer;
} Request;

extern void request_init(Request *request, EdgeKind kind, int name, int64 job_id);
extern void request_init_actor(Request *request);
extern void request_push(Request *request);
extern void request_pop(Request *request);
extern Request *request_for_job(int64 job_id);
extern Oid	request_actor(void);
extern bool request_loading_rows(Relation rel);

#endif							/* DMS_REQUEST_H */
