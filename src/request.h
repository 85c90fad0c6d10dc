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
 * Where a request's change of its row is.  The guard takes a pending request
 * and the history trigger a written one, and only when they fire for the
 * request's own write: one trigger level below the call that made it.  Any
 * other write of the job is a direct write, judged from the change; one made
 * while the request's own write is between its guard and the heap (by a
 * user's BEFORE trigger) is refused.
 */
typedef enum RequestStage
{
	REQUEST_PENDING,			/* pushed; its write has not reached the guard */
	REQUEST_GUARDED,			/* the guard applied it; the row is not written yet */
	REQUEST_WRITTEN,			/* the row is written; its AFTER triggers fire */
	REQUEST_RECORDED			/* the history trigger recorded it */
} RequestStage;

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
	bool		reported;		/* an event reported through dms_report() */

	RequestStage stage;
	int			trigger_depth;	/* pg_trigger_depth() of the call that writes */

	/* What the history trigger saw the change do, and its follow-up. */
	int			result_status;	/* the job's state after the change */
	int			result_phase;
	struct Request *outer;
} Request;

extern void request_init(Request *request, EdgeKind kind, int name, int64 job_id);
extern void request_init_actor(Request *request);
extern void request_push(Request *request);
extern void request_pop(Request *request);
extern int	trigger_depth(void);
extern void request_begin_write(Request *request);
extern Request *request_for_job(int64 job_id, RequestStage stage);
extern bool request_in_flight(int64 job_id);
extern Oid	request_actor(void);
extern bool request_loading_rows(Relation rel);

#endif							/* DMS_REQUEST_H */
