/*
 * src/inspect.c: what a person or program reads: allowed actions, the edges, the seed's labels.
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"

#include "job.h"

PG_FUNCTION_INFO_V1(dms_allowed_actions);
PG_FUNCTION_INFO_V1(dms_transitions);
PG_FUNCTION_INFO_V1(dms_status_label);
PG_FUNCTION_INFO_V1(dms_substatus_label);
PG_FUNCTION_INFO_V1(dms_action_label);
PG_FUNCTION_INFO_V1(dms_allowed_action_labels);

/* dms_allowed_actions(job_id): the actions an operator may take now, in enum order. */
Datum
dms_allowed_actions(PG_FUNCTION_ARGS)
{
	Catalog    *catalog = catalog_for_function(fcinfo);
	JobRow		job;
	bool		allowed[N_ACTION];
	Datum		actions[N_ACTION];
	int			n = 0;

	require_argument(fcinfo, 0, "job_id");
	if (!job_read(catalog, PG_GETARG_INT64(0), PLAN_JOB_FETCH, true, &job))
		report_job_missing(PG_GETARG_INT64(0));

	lifecycle_allowed_actions(job.status, job.phase, allowed);
	for (int a = 0; a < N_ACTION; a++)
		if (allowed[a])
			actions[n++] = ObjectIdGetDatum(catalog->action_oids[a]);
	PG_RETURN_ARRAYTYPE_P(construct_array(actions, n, catalog->action_type, sizeof(Oid), true,
										  TYPALIGN_INT));
}

/* dms_transitions(): every edge of the lifecycle, one row per state it starts from. */
Datum
dms_transitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Catalog    *catalog = catalog_for_function(fcinfo);
	EdgeCursor	cursor = {0};
	ResolvedEdge edge;
	int			from_status,
				from_phase;

	InitMaterializedSRF(fcinfo, 0);
	while (lifecycle_next_edge(&cursor, &edge, &from_status, &from_phase))
	{
		const LifecycleEdge *e = edge.edge;
		Datum		values[7];
		bool		nulls[7] = {false};

		values[0] = CStringGetTextDatum(e->kind == EDGE_ACTION ? "action" : "event");
		values[1] = CStringGetTextDatum(edge_name(e));
		values[2] = ObjectIdGetDatum(catalog->status_oids[from_status]);
		nulls[3] = from_phase == PHASE_NULL;
		values[3] = nulls[3] ? (Datum) 0 : ObjectIdGetDatum(catalog->phase_oids[from_phase]);
		nulls[4] = edge.to_status == STATUS_NONE;
		values[4] = nulls[4] ? (Datum) 0 : ObjectIdGetDatum(catalog->status_oids[edge.to_status]);
		nulls[5] = edge.to_phase == PHASE_NULL;
		values[5] = nulls[5] ? (Datum) 0 : ObjectIdGetDatum(catalog->phase_oids[edge.to_phase]);
		nulls[6] = e->migration_type == TYPE_ANY;
		values[6] = nulls[6] ? (Datum) 0 :
			ObjectIdGetDatum(catalog->migration_type_oids[e->migration_type]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* dms_status_label(status): 'Not started', 'Starting...', 'Running', ... */
Datum
dms_status_label(PG_FUNCTION_ARGS)
{
	Catalog    *catalog = catalog_for_function(fcinfo);

	require_argument(fcinfo, 0, "status");
	PG_RETURN_TEXT_P(cstring_to_text(status_labels[status_index(catalog, PG_GETARG_DATUM(0))]));
}

/* dms_substatus_label(status, phase): 'CDC', 'Failed in full dump', 'Stopped in CDC', ... or NULL */
Datum
dms_substatus_label(PG_FUNCTION_ARGS)
{
	Catalog    *catalog;
	const char *label;

	require_argument(fcinfo, 0, "status");
	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();		/* a status without a phase has no substatus */
	catalog = catalog_for_function(fcinfo);
	label = lifecycle_substatus_label(status_index(catalog, PG_GETARG_DATUM(0)),
									  phase_index(catalog, PG_GETARG_DATUM(1)));
	if (label == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(label));
}

/* dms_action_label(action): 'Start', 'Stop', ... */
Datum
dms_action_label(PG_FUNCTION_ARGS)
{
	Catalog    *catalog = catalog_for_function(fcinfo);

	require_argument(fcinfo, 0, "action");
	PG_RETURN_TEXT_P(cstring_to_text(action_labels[action_index(catalog, PG_GETARG_DATUM(0))]));
}

/* dms_allowed_action_labels(status, phase): 'Stop, Promote, Edit, Delete', for the overview */
Datum
dms_allowed_action_labels(PG_FUNCTION_ARGS)
{
	Catalog    *catalog;
	int			status,
				phase = PHASE_NULL;

	require_argument(fcinfo, 0, "status");
	catalog = catalog_for_function(fcinfo);
	status = status_index(catalog, PG_GETARG_DATUM(0));
	if (!PG_ARGISNULL(1))
		phase = phase_index(catalog, PG_GETARG_DATUM(1));
	if (!lifecycle_state_is_legal(status, phase))
		PG_RETURN_NULL();		/* no job is ever in such a state */
	PG_RETURN_TEXT_P(cstring_to_text(allowed_actions_text(status, phase)));
}
