/*
 * src/engine.h: what the built-in migration engine shares with the rest of the extension.
 *
 * A job with a source server is engine-driven: the built-in engine (a
 * background worker of this library) migrates it and is the only one that
 * reports its events.  Its connections are servers and user mappings of the
 * foreign-data wrapper dms_lifecycle_connection.
 */
#ifndef DMS_ENGINE_H
#define DMS_ENGINE_H

#include "postgres.h"

struct Catalog;

/* The foreign-data wrapper whose servers a job names. */
#define CONNECTION_WRAPPER "dms_lifecycle_connection"

/*
 * True in the engine's own sessions, false everywhere else (the default):
 * dms_report() on an engine-driven job is refused (55000) unless it is set.
 * Defined in src/actions.c; the engine worker sets it once it has connected.
 */
extern bool engine_session;

/*
 * The source server of a job as stored (the name given to dms_create_job),
 * or NULL if the job has none or the database is still at 1.0; *found is
 * false if the job does not exist.  Reads the newest committed row, as the
 * tables' owner, in the caller's memory.  Defined in src/change.c.
 */
extern char *job_source_server(struct Catalog *catalog, int64 job_id, bool *found);

/*
 * A job changed in this transaction: the engine's manager is woken when it
 * commits, so that an action on a job is picked up at once.  A no-op when
 * the library is not preloaded.  Defined in src/engine/shared.c.
 */
extern void engine_wake_at_commit(void);

/* src/connection_options.c */

/*
 * Checks a source server that a job names, as the current user: 22023 if no
 * server has that name or it belongs to another wrapper, 42501 without
 * USAGE on it.  what names it in messages ("source server").
 */
extern void connection_server_check(const char *name, const char *what);

/* A destination server: 0A000, 1.1 migrates into this cluster only. */
extern void connection_destination_refuse(const char *name) pg_attribute_noreturn();

#endif							/* DMS_ENGINE_H */
