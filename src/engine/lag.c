/*
 * src/engine/lag.c: how far behind the source a streaming database is, in
 * bytes and in time.
 *
 * The bytes are the source's WAL position minus the position the
 * destination has applied.  The time is how long ago the source was at that
 * applied position: every observation notes the source's WAL position with
 * the source's clock, and the applied position is placed between the two
 * notes around it (WAL grows about evenly between two observations).  The
 * source's clock alone is read, so the two servers' clocks need not agree,
 * and the figure is right however the WAL sender and the apply worker
 * divide the delay between them.
 */
#include "postgres.h"

#include "internal.h"

/* Drops the notes before index 'from'. */
static void
lag_drop(LagClock *clock, int from)
{
	if (from <= 0)
		return;
	memmove(clock->notes, clock->notes + from, (clock->count - from) * sizeof(LagNote));
	clock->count -= from;
}

/*
 * Notes the source at (lsn, at); with the clock full, every other older
 * note goes first: a long lag keeps its start, at a coarser grain.
 */
static void
lag_note(LagClock *clock, uint64 lsn, double at)
{
	if (clock->count > 0 && clock->notes[clock->count - 1].lsn > lsn)
		clock->count = 0;		/* the source went back (restored): start again */
	if (clock->count == LAG_NOTES)
	{
		int			kept = 0;

		for (int i = 0; i < LAG_NOTES; i += 2)
			clock->notes[kept++] = clock->notes[i];
		clock->count = kept;
	}
	clock->notes[clock->count].lsn = lsn;
	clock->notes[clock->count].at = at;
	clock->count++;
}

/*
 * The source is at (source_lsn, source_at) and the destination has applied
 * up to applied_lsn: sets db->lag_bytes and db->lag_seconds.  An applied
 * position older than every note (the worker has just started) takes the
 * larger of fallback_seconds (another estimate, -1 for none) and the age of
 * the oldest note, which the lag is at least; at the first note, with no
 * other estimate, the lag is unknown (-1).
 */
void
lag_observe(EngineDatabase *db, uint64 source_lsn, double source_at, uint64 applied_lsn,
			double fallback_seconds)
{
	LagClock   *clock = &db->lag_clock;
	int			before = -1;

	lag_note(clock, source_lsn, source_at);
	if (applied_lsn >= source_lsn)
	{
		db->lag_bytes = 0;
		db->lag_seconds = 0;
		lag_drop(clock, clock->count - 1);
		return;
	}
	db->lag_bytes = (int64) (source_lsn - applied_lsn);
	for (int i = 0; i < clock->count && clock->notes[i].lsn <= applied_lsn; i++)
		before = i;
	if (before < 0)
	{
		/* with the source's note of now alone, nothing says how old the applied position is */
		if (clock->count == 1 && fallback_seconds < 0)
			db->lag_seconds = -1;
		else
			db->lag_seconds = Max(fallback_seconds, source_at - clock->notes[0].at);
		return;
	}

	/* the last note is the source now, past applied_lsn: there is a note after */
	{
		LagNote    *a = &clock->notes[before];
		LagNote    *b = &clock->notes[before + 1];
		double		reached = a->at + (b->at - a->at) * (double) (applied_lsn - a->lsn) / (double) (b->lsn - a->lsn);

		db->lag_seconds = Max(source_at - reached, 0);
	}
	lag_drop(clock, before);
}
