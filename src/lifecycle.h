/*
 * src/lifecycle.h: the lifecycle of a migration job as data: states, edges, labels.
 */
#ifndef DMS_LIFECYCLE_H
#define DMS_LIFECYCLE_H

#include <stdbool.h>

/* The C values follow the order of the SQL enums (SPEC section 2). */
typedef enum JobStatus
{
	ST_NOT_STARTED,
	ST_STARTING,
	ST_RUNNING,
	ST_RUNNING_WITH_ERRORS,
	ST_COMPLETED,
	ST_FAILED,
	ST_RESTARTING,
	ST_STOPPED,
	ST_RESUMING,
	ST_STOPPING,
	N_STATUS
} JobStatus;

typedef enum JobPhase
{
	PH_FULL_DUMP,
	PH_CDC,
	PH_PROMOTE_IN_PROGRESS,
	N_PHASE
} JobPhase;

/* Phase values that stand for no phase, or for a pattern in the edge table. */
#define PHASE_NULL	(-1)		/* the status has no phase */
#define PHASE_ANY	(-2)		/* from: every phase the status can have */
#define PHASE_SAME	(-3)		/* to: the phase the job had */

typedef enum MigrationType
{
	MT_ONE_TIME,
	MT_CONTINUOUS,
	N_MIGRATION_TYPE
} MigrationType;

#define TYPE_ANY	(-1)

typedef enum DumpParallelism
{
	DP_MIN,
	DP_OPTIMAL,
	DP_MAX,
	N_DUMP_PARALLELISM
} DumpParallelism;

typedef enum JobAction
{
	ACT_START,
	ACT_STOP,
	ACT_RESUME,
	ACT_RESTART,
	ACT_PROMOTE,
	ACT_EDIT,
	ACT_DELETE,
	N_ACTION
} JobAction;

typedef enum JobEvent
{
	EV_STARTED,
	EV_RESTARTED,
	EV_RESUMED,
	EV_STOPPED,
	EV_DUMP_COMPLETED,
	EV_ERROR,
	EV_ERRORS_CLEARED,
	EV_FAILED,
	EV_RECOVERED,
	EV_PROMOTED,
	N_EVENT
} JobEvent;

typedef enum EdgeKind
{
	EDGE_ACTION,
	EDGE_EVENT
} EdgeKind;

#define STATUS_NONE	(-1)		/* to: the row is removed (delete) */
#define STATUS_SAME	(-2)		/* to: the status does not change (edit) */

/* Edge flags */
#define EDGE_EDITS_DATABASES	0x01	/* an edit here may change the database list */
#define EDGE_NEEDS_MESSAGE		0x02	/* the event carries a non-empty message */
#define EDGE_SETS_MESSAGE		0x04	/* the message becomes the job's error_message */
#define EDGE_APPLIES_PENDING	0x08	/* the pending dump parallelism takes effect */

/* One row of the lifecycle: SPEC section 4, as written there. */
typedef struct LifecycleEdge
{
	EdgeKind	kind;
	int			name;			/* JobAction or JobEvent */
	int			from_status;
	int			from_phase;		/* a JobPhase, PHASE_NULL or PHASE_ANY */
	int			to_status;		/* a JobStatus, STATUS_NONE or STATUS_SAME */
	int			to_phase;		/* a JobPhase, PHASE_NULL or PHASE_SAME */
	int			migration_type; /* a MigrationType or TYPE_ANY */
	int			flags;
} LifecycleEdge;

/* A legal (status, phase) pair: SPEC section 3, with the seed's substatus. */
typedef struct LifecycleState
{
	int			status;
	int			phase;
	const char *substatus_label;
} LifecycleState;

/* A concrete edge: the patterns of the table resolved for one state. */
typedef struct ResolvedEdge
{
	const LifecycleEdge *edge;
	int			to_status;		/* STATUS_NONE for delete */
	int			to_phase;
} ResolvedEdge;

extern const char *const status_names[N_STATUS];
extern const char *const phase_names[N_PHASE];
extern const char *const migration_type_names[N_MIGRATION_TYPE];
extern const char *const dump_parallelism_names[N_DUMP_PARALLELISM];
extern const char *const action_names[N_ACTION];
extern const char *const event_names[N_EVENT];

extern const char *const status_labels[N_STATUS];
extern const char *const phase_labels[N_PHASE];
extern const char *const action_labels[N_ACTION];

extern bool lifecycle_state_is_legal(int status, int phase);
extern const char *lifecycle_substatus_label(int status, int phase);
extern bool lifecycle_resolve(EdgeKind kind, int name, int status, int phase,
							  int migration_type, ResolvedEdge *out);
extern bool lifecycle_find_edge(int from_status, int from_phase,
								int to_status, int to_phase,
								int migration_type, ResolvedEdge *out);
extern bool lifecycle_event_needs_message(int event);
extern bool lifecycle_keeps_message(int status);
extern bool lifecycle_is_final(int status);
extern bool lifecycle_message_loop(int status, int phase, int migration_type, ResolvedEdge *out);
extern bool lifecycle_edits_databases(int status);
extern int	lifecycle_allowed_actions(int status, int phase, bool *allowed);
extern const char *edge_name(const LifecycleEdge *edge);

/* Iteration over every concrete edge, for dms_transitions(). */
typedef struct EdgeCursor
{
	int			edge;
	int			state;
} EdgeCursor;

extern bool lifecycle_next_edge(EdgeCursor *cursor, ResolvedEdge *out,
								int *from_status, int *from_phase);

#endif							/* DMS_LIFECYCLE_H */
