/*
 * src/lifecycle.c: the lifecycle of a migration job, written down once as data.
 *
 * Everything else derives from the two tables below: the trigger guard, the
 * action functions, dms_report(), dms_allowed_actions(), dms_transitions(),
 * the labels, the README's state diagram and the tests' expectations.  To
 * change the lifecycle, change these tables and nothing else.
 */
#include "lifecycle.h"

#include <stddef.h>

#define lengthof_array(a) ((int) (sizeof(a) / sizeof((a)[0])))

/* SQL enum labels, in enum order. */
const char *const status_names[N_STATUS] = {
	"not_started", "starting", "running", "running_with_errors", "completed",
	"failed", "restarting", "stopped", "resuming", "stopping"
};
const char *const phase_names[N_PHASE] = {"full_dump", "cdc", "promote_in_progress"};
const char *const migration_type_names[N_MIGRATION_TYPE] = {"one_time", "continuous"};
const char *const dump_parallelism_names[N_DUMP_PARALLELISM] = {"min", "optimal", "max"};
const char *const action_names[N_ACTION] = {
	"start", "stop", "resume", "restart", "promote", "edit", "delete"
};
const char *const event_names[N_EVENT] = {
	"started", "restarted", "resumed", "stopped", "dump_completed", "error",
	"errors_cleared", "failed", "recovered", "promoted"
};

/* The seed's words. */
const char *const status_labels[N_STATUS] = {
	"Not started", "Starting...", "Running", "Running with errors", "Completed",
	"Failed", "Restarting", "Stopped", "Resuming", "Stopping..."
};
const char *const phase_labels[N_PHASE] = {"Full dump", "CDC", "Promote in progress"};
const char *const action_labels[N_ACTION] = {
	"Start", "Stop", "Resume", "Restart", "Promote", "Edit", "Delete"
};

/*
 * The legal (status, phase) pairs of SPEC section 3, one row per state of the
 * seed, with the substatus the seed shows for it.
 */
static const LifecycleState states[] = {
	{ST_NOT_STARTED, PHASE_NULL, NULL},
	{ST_STARTING, PHASE_NULL, NULL},
	{ST_RUNNING, PH_FULL_DUMP, "Full dump"},
	{ST_RUNNING, PH_CDC, "CDC"},
	{ST_RUNNING, PH_PROMOTE_IN_PROGRESS, "Promote in progress"},
	{ST_RUNNING_WITH_ERRORS, PH_FULL_DUMP, "Full dump"},
	{ST_RUNNING_WITH_ERRORS, PH_CDC, "CDC"},
	{ST_COMPLETED, PHASE_NULL, NULL},
	{ST_FAILED, PH_FULL_DUMP, "Failed in full dump"},
	{ST_FAILED, PH_CDC, "Failed in CDC"},
	{ST_RESTARTING, PHASE_NULL, NULL},
	{ST_STOPPED, PH_FULL_DUMP, "Stopped in full dump"},
	{ST_STOPPED, PH_CDC, "Stopped in CDC"},
	{ST_RESUMING, PH_CDC, NULL},
	{ST_STOPPING, PH_FULL_DUMP, NULL},
	{ST_STOPPING, PH_CDC, NULL},
};

#define A(name, fs, fp, ts, tp, flags) \
	{EDGE_ACTION, ACT_##name, ST_##fs, fp, ts, tp, TYPE_ANY, flags}
#define E(name, fs, fp, ts, tp, type, flags) \
	{EDGE_EVENT, EV_##name, ST_##fs, fp, ts, tp, type, flags}
#define FD	PH_FULL_DUMP
#define CDC PH_CDC
#define PIP PH_PROMOTE_IN_PROGRESS
#define ANY PHASE_ANY
#define SAME PHASE_SAME
#define NONE PHASE_NULL
#define MSG (EDGE_NEEDS_MESSAGE | EDGE_SETS_MESSAGE)
#define DBS EDGE_EDITS_DATABASES
#define PEND EDGE_APPLIES_PENDING

/*
 * SPEC section 4: every edge of the lifecycle.  Rows read: action or event,
 * from (status, phase), to (status, phase), migration type, flags.
 */
static const LifecycleEdge edges[] = {
	/* 4.1 user actions */
	A(START, NOT_STARTED, NONE, ST_STARTING, NONE, 0),
	A(STOP, RUNNING, FD, ST_STOPPING, SAME, 0),
	A(STOP, RUNNING, CDC, ST_STOPPING, SAME, 0),
	A(STOP, RUNNING_WITH_ERRORS, ANY, ST_STOPPING, SAME, 0),
	A(RESUME, STOPPED, CDC, ST_RESUMING, CDC, 0),
	A(RESTART, RUNNING_WITH_ERRORS, ANY, ST_RESTARTING, NONE, PEND),
	A(RESTART, FAILED, ANY, ST_RESTARTING, NONE, PEND),
	A(RESTART, STOPPED, ANY, ST_RESTARTING, NONE, PEND),
	A(PROMOTE, RUNNING, CDC, ST_RUNNING, PIP, 0),
	A(PROMOTE, RUNNING_WITH_ERRORS, CDC, ST_RUNNING, PIP, 0),
	A(PROMOTE, FAILED, CDC, ST_RUNNING, PIP, 0),
	A(PROMOTE, STOPPED, CDC, ST_RUNNING, PIP, 0),
	A(DELETE, NOT_STARTED, NONE, STATUS_NONE, NONE, 0),
	A(DELETE, STARTING, NONE, STATUS_NONE, NONE, 0),
	A(DELETE, RUNNING, ANY, STATUS_NONE, NONE, 0),
	A(DELETE, COMPLETED, NONE, STATUS_NONE, NONE, 0),
	A(DELETE, FAILED, ANY, STATUS_NONE, NONE, 0),
	A(DELETE, RESTARTING, NONE, STATUS_NONE, NONE, 0),
	A(DELETE, STOPPED, ANY, STATUS_NONE, NONE, 0),
	A(DELETE, RESUMING, ANY, STATUS_NONE, NONE, 0),
	A(DELETE, STOPPING, ANY, STATUS_NONE, NONE, 0),
	A(EDIT, NOT_STARTED, NONE, STATUS_SAME, SAME, DBS),
	A(EDIT, RUNNING, FD, STATUS_SAME, SAME, 0),
	A(EDIT, RUNNING, CDC, STATUS_SAME, SAME, 0),
	A(EDIT, STOPPED, ANY, STATUS_SAME, SAME, DBS),
	A(EDIT, FAILED, ANY, STATUS_SAME, SAME, DBS),

	/* 4.2 engine events */
	E(STARTED, STARTING, NONE, ST_RUNNING, FD, TYPE_ANY, 0),
	E(RESTARTED, RESTARTING, NONE, ST_RUNNING, FD, TYPE_ANY, 0),
	E(RESUMED, RESUMING, CDC, ST_RUNNING, CDC, TYPE_ANY, 0),
	E(STOPPED, STOPPING, ANY, ST_STOPPED, SAME, TYPE_ANY, 0),
	E(DUMP_COMPLETED, RUNNING, FD, ST_RUNNING, CDC, MT_CONTINUOUS, 0),
	E(DUMP_COMPLETED, RUNNING_WITH_ERRORS, FD, ST_RUNNING_WITH_ERRORS, CDC, MT_CONTINUOUS, 0),
	E(DUMP_COMPLETED, RUNNING, FD, ST_COMPLETED, NONE, MT_ONE_TIME, 0),
	E(DUMP_COMPLETED, RUNNING_WITH_ERRORS, FD, ST_COMPLETED, NONE, MT_ONE_TIME, 0),
	E(ERROR, RUNNING, FD, ST_RUNNING_WITH_ERRORS, SAME, TYPE_ANY, MSG),
	E(ERROR, RUNNING, CDC, ST_RUNNING_WITH_ERRORS, SAME, TYPE_ANY, MSG),
	E(ERROR, RUNNING_WITH_ERRORS, ANY, ST_RUNNING_WITH_ERRORS, SAME, TYPE_ANY, MSG),
	E(ERRORS_CLEARED, RUNNING_WITH_ERRORS, ANY, ST_RUNNING, SAME, TYPE_ANY, 0),
	E(FAILED, STARTING, NONE, ST_FAILED, FD, TYPE_ANY, MSG),
	E(FAILED, RESTARTING, NONE, ST_FAILED, FD, TYPE_ANY, MSG),
	E(FAILED, RESUMING, CDC, ST_FAILED, CDC, TYPE_ANY, MSG),
	E(FAILED, RUNNING, FD, ST_FAILED, SAME, TYPE_ANY, MSG),
	E(FAILED, RUNNING, CDC, ST_FAILED, SAME, TYPE_ANY, MSG),
	E(FAILED, RUNNING_WITH_ERRORS, ANY, ST_FAILED, SAME, TYPE_ANY, MSG),
	E(FAILED, STOPPING, ANY, ST_FAILED, SAME, TYPE_ANY, MSG),
	E(FAILED, RUNNING, PIP, ST_FAILED, CDC, TYPE_ANY, MSG),
	E(FAILED, FAILED, ANY, ST_FAILED, SAME, TYPE_ANY, MSG),
	E(RECOVERED, FAILED, ANY, ST_RUNNING, SAME, TYPE_ANY, 0),
	E(PROMOTED, RUNNING, PIP, ST_COMPLETED, NONE, TYPE_ANY, 0),
};

bool
lifecycle_state_is_legal(int status, int phase)
{
	for (int i = 0; i < lengthof_array(states); i++)
		if (states[i].status == status && states[i].phase == phase)
			return true;
	return false;
}

const char *
lifecycle_substatus_label(int status, int phase)
{
	for (int i = 0; i < lengthof_array(states); i++)
		if (states[i].status == status && states[i].phase == phase)
			return states[i].substatus_label;
	return NULL;
}

const char *
edge_name(const LifecycleEdge *edge)
{
	return edge->kind == EDGE_ACTION ? action_names[edge->name] : event_names[edge->name];
}

/* Does the edge start at this legal state, for this migration type? */
static bool
edge_starts_at(const LifecycleEdge *edge, int status, int phase, int migration_type)
{
	if (edge->from_status != status)
		return false;
	if (edge->from_phase != PHASE_ANY && edge->from_phase != phase)
		return false;
	if (migration_type != TYPE_ANY && edge->migration_type != TYPE_ANY &&
		edge->migration_type != migration_type)
		return false;
	return true;
}

static void
edge_resolve(const LifecycleEdge *edge, int status, int phase, ResolvedEdge *out)
{
	out->edge = edge;
	out->to_status = edge->to_status == STATUS_SAME ? status : edge->to_status;
	out->to_phase = edge->to_phase == PHASE_SAME ? phase : edge->to_phase;
	if (edge->to_status == STATUS_NONE)
		out->to_phase = PHASE_NULL;
}

/*
 * The edge that an action or event takes from (status, phase), if any.  A
 * migration_type of TYPE_ANY matches edges of either type.
 */
bool
lifecycle_resolve(EdgeKind kind, int name, int status, int phase,
				  int migration_type, ResolvedEdge *out)
{
	for (int i = 0; i < lengthof_array(edges); i++)
	{
		const LifecycleEdge *edge = &edges[i];

		if (edge->kind == kind && edge->name == name &&
			edge_starts_at(edge, status, phase, migration_type))
		{
			edge_resolve(edge, status, phase, out);
			return true;
		}
	}
	return false;
}

/*
 * The edge that leads from one state to another, for a change made without
 * naming its cause (a direct UPDATE).  Edits and deletes are not changes of
 * state and are never returned.
 */
bool
lifecycle_find_edge(int from_status, int from_phase, int to_status, int to_phase,
					int migration_type, ResolvedEdge *out)
{
	for (int i = 0; i < lengthof_array(edges); i++)
	{
		const LifecycleEdge *edge = &edges[i];
		ResolvedEdge candidate;

		if (edge->kind == EDGE_ACTION &&
			(edge->name == ACT_EDIT || edge->name == ACT_DELETE))
			continue;
		if (!edge_starts_at(edge, from_status, from_phase, migration_type))
			continue;
		edge_resolve(edge, from_status, from_phase, &candidate);
		if (candidate.to_status == to_status && candidate.to_phase == to_phase)
		{
			*out = candidate;
			return true;
		}
	}
	return false;
}

/* Does the event carry a message (SPEC 4.2: "error" and "failed")? */
bool
lifecycle_event_needs_message(int event)
{
	for (int i = 0; i < lengthof_array(edges); i++)
		if (edges[i].kind == EDGE_EVENT && edges[i].name == event &&
			(edges[i].flags & EDGE_NEEDS_MESSAGE))
			return true;
	return false;
}

/* Do edges that set the error message lead into this status? */
bool
lifecycle_keeps_message(int status)
{
	for (int i = 0; i < lengthof_array(edges); i++)
		if ((edges[i].flags & EDGE_SETS_MESSAGE) && edges[i].to_status == status)
			return true;
	return false;
}

/* Does no edge but delete leave this status? */
bool
lifecycle_is_final(int status)
{
	for (int i = 0; i < lengthof_array(edges); i++)
		if (edges[i].from_status == status &&
			!(edges[i].kind == EDGE_ACTION && edges[i].name == ACT_DELETE))
			return false;
	return true;
}

/* The self-loop that replaces the error message of a job in this state, if any. */
bool
lifecycle_message_loop(int status, int phase, int migration_type, ResolvedEdge *out)
{
	for (int i = 0; i < lengthof_array(edges); i++)
	{
		const LifecycleEdge *edge = &edges[i];

		if (!(edge->flags & EDGE_SETS_MESSAGE) ||
			!edge_starts_at(edge, status, phase, migration_type))
			continue;
		edge_resolve(edge, status, phase, out);
		if (out->to_status == status && out->to_phase == phase)
			return true;
	}
	return false;
}

/* May an edit change the database list of a job in this status? */
bool
lifecycle_edits_databases(int status)
{
	for (int i = 0; i < lengthof_array(edges); i++)
		if (edges[i].from_status == status && (edges[i].flags & EDGE_EDITS_DATABASES))
			return true;
	return false;
}

/* Marks allowed[action] for every action with an edge from (status, phase). */
int
lifecycle_allowed_actions(int status, int phase, bool *allowed)
{
	int			count = 0;

	for (int a = 0; a < N_ACTION; a++)
	{
		ResolvedEdge edge;

		allowed[a] = lifecycle_resolve(EDGE_ACTION, a, status, phase, TYPE_ANY, &edge);
		if (allowed[a])
			count++;
	}
	return count;
}

/*
 * Steps through every edge of the table resolved for each legal state it
 * starts from, in table order.  Returns false when there are no more.
 */
bool
lifecycle_next_edge(EdgeCursor *cursor, ResolvedEdge *out,
					int *from_status, int *from_phase)
{
	for (; cursor->edge < lengthof_array(edges); cursor->edge++, cursor->state = 0)
	{
		const LifecycleEdge *edge = &edges[cursor->edge];

		for (; cursor->state < lengthof_array(states); cursor->state++)
		{
			const LifecycleState *state = &states[cursor->state];

			if (edge_starts_at(edge, state->status, state->phase, TYPE_ANY))
			{
				edge_resolve(edge, state->status, state->phase, out);
				*from_status = state->status;
				*from_phase = state->phase;
				cursor->state++;
				return true;
			}
		}
	}
	return false;
}
