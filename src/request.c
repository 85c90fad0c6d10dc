/*
 * src/request.c: the stack of actions and events under way in this backend.
 *
 * A function that performs an action pushes a request, runs one statement on
 * the job and pops it.  The guard reads the request to know which edge is
 * meant; the history trigger reads it to name the cause and the actor.  A
 * write with no request for its job is a direct write, judged from the change.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "catalog/namespace.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "tcop/pquery.h"
#include "utils/fmgrprotos.h"

#include "request.h"

static Request *current = NULL;

void
request_init(Request *request, EdgeKind kind, int name, int64 job_id)
{
	memset(request, 0, sizeof(*request));
	request->kind = kind;
	request->name = name;
	request->job_id = job_id;
	request->edit = EDIT_NONE;
}

/* A frame that only carries the current actor. */
void
request_init_actor(Request *request)
{
	request_init(request, EDGE_ACTION, REQUEST_NONE, 0);
	request->actor = request_actor();
}

/*
 * The actor is the role that made the outermost call: a request pushed
 * inside another one (the extension's own follow-up, or a call from a
 * trigger, even a SECURITY DEFINER one) keeps the role that set it off.
 */
void
request_push(Request *request)
{
	if (!OidIsValid(request->actor))
		request->actor = request_actor();
	request->outer = current;
	current = request;
}

/* Pops the request; callers pop in PG_FINALLY, so an error leaves no request behind. */
void
request_pop(Request *request)
{
	current = request->outer;
}

int
trigger_depth(void)
{
	return DatumGetInt32(DirectFunctionCall1(pg_trigger_depth, (Datum) 0));
}

/* Called just before the request's own write: its triggers fire one level down. */
void
request_begin_write(Request *request)
{
	request->trigger_depth = trigger_depth();
	request->stage = REQUEST_PENDING;
}

/*
 * The request a trigger firing for a job's write serves: the innermost one,
 * at the given stage, whose own write this is.
 */
Request *
request_for_job(int64 job_id, RequestStage stage)
{
	if (current != NULL && current->job_id == job_id && current->name != REQUEST_NONE &&
		current->stage == stage && trigger_depth() == current->trigger_depth + 1)
		return current;
	return NULL;
}

/* Is a change of this job between its guard and the heap, further up the stack? */
bool
request_in_flight(int64 job_id)
{
	for (Request *r = current; r != NULL; r = r->outer)
		if (r->job_id == job_id && r->name != REQUEST_NONE && r->stage < REQUEST_WRITTEN)
			return true;
	return false;
}

/*
 * Is this write a COPY FROM into this very table, as pg_restore loads it?
 * Such rows come with their own history, so they are checked for consistency
 * but are not new changes.  Any other write during a COPY (a COPY TO whose
 * query writes, a trigger of another table's COPY FROM) is not a load.
 */
bool
request_loading_rows(Relation rel)
{
	ListCell   *lc;

	if (current != NULL || ActivePortal == NULL || ActivePortal->commandTag != CMDTAG_COPY)
		return false;
	foreach(lc, ActivePortal->stmts)
	{
		PlannedStmt *stmt = lfirst_node(PlannedStmt, lc);
		CopyStmt   *copy;

		if (stmt->commandType != CMD_UTILITY || !IsA(stmt->utilityStmt, CopyStmt))
			continue;
		copy = (CopyStmt *) stmt->utilityStmt;
		if (copy->is_from && copy->relation != NULL &&
			RangeVarGetRelid(copy->relation, NoLock, true) == RelationGetRelid(rel))
			return true;
	}
	return false;
}

Oid
request_actor(void)
{
	return current ? current->actor : GetUserId();
}
