#!/usr/bin/env bash
# bench/migrate.sh: the migration benchmark proper, run as the postgres user by
# bench/migrate.  Starts a source and a destination cluster in $RUN (Unix sockets only),
# fills the source with one data set, then every contender copies it into a fresh
# destination database, contenders interleaved round by round (each round starting with
# the next contender), each copy checked against the source before its time counts.
# Prints best and median times, ratios, and where the engine's time goes.  Workloads
# (WORKLOADS): dump, cdc, cutover (below), and jobs10, tables1000, memory (at scale, in
# bench/migrate-scale.sh).
set -euo pipefail
shopt -s inherit_errexit         # a step that fails in a contender, run as $(...), ends the run

RUN=$1
BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
SCALE=${SCALE:-20}
ROUNDS=${ROUNDS:-3}
SRC_PORT=${SRC_PORT:-5701}
DST_PORT=${DST_PORT:-5702}
CDC_SECONDS=${CDC_SECONDS:-60}
read -r -a WORKLOADS <<<"${WORKLOADS:-dump cdc cutover}"
read -r -a CONTENDERS <<<"${CONTENDERS:-dump_restore pgcopydb subscription engine_min engine_optimal engine_max}"
DB=bench                         # the source database, and its copy's name on the destination
RESULTS=$RUN/results.tsv         # contender, round, seconds
PHASES=$RUN/phases.tsv           # contender, round, phase, seconds
CPU=$RUN/cpu.tsv                 # contender, round, CPU seconds: source, destination, clients
WORKER=$RUN/worker.tsv           # engine contender, round, CPU seconds: job worker, its programs
: >"$RESULTS"
: >"$PHASES"
: >"$CPU"
: >"$WORKER"
export PGUSER=postgres PGHOST=$RUN PGOPTIONS='-c client_min_messages=warning'

wl() { [[ " ${WORKLOADS[*]} " == *" $1 "* ]]; }   # whether workload $1 runs
log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }
src_psql() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -p "$SRC_PORT" "$@"; }
dst_psql() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -p "$DST_PORT" "$@"; }

# ---------------------------------------------------------------- the clusters

servers_stop() {
    for c in destination source; do
        [ -f "$RUN/$c/postmaster.pid" ] && "$BIN/pg_ctl" -D "$RUN/$c" -m immediate stop >/dev/null 2>&1
    done
    return 0
}
trap servers_stop EXIT

for c in source destination; do
    "$BIN/initdb" -A trust -U postgres -E UTF8 --locale=C.UTF-8 -D "$RUN/$c" >"$RUN/initdb-$c.log" 2>&1 ||
        { cat "$RUN/initdb-$c.log"; exit 1; }
done
# Both: sockets in $RUN only; checkpoints kept out of the copies (each contender starts
# after a CHECKPOINT on both sides and writes well under max_wal_size), and autovacuum
# (the source is vacuumed and analyzed once; each copy is checked, then dropped).
common="listen_addresses = ''
unix_socket_directories = '$RUN'
max_wal_size = 8GB
checkpoint_timeout = 30min
autovacuum = off"
# source: logical decoding for the engine's slot and the subscription's (and its table
# synchronisation's) slots; jobs10 streams 10 databases at once (a slot and a WAL sender
# each), with room for a WAL sender that lingers while its subscription's worker restarts
cat >>"$RUN/source/postgresql.conf" <<EOF
$common
port = $SRC_PORT
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
EOF
# destination: the engine, with the settings of its TAP tests (t/DmsEngine.pm), and the
# subscription's workers.  jobs10 runs 10 jobs at once: 10 job workers and 10 apply
# workers beside the launcher, the manager and the logical replication launcher (23
# background workers, and parallel query's), 10 subscriptions, each with a replication
# origin, which max_replication_slots bounds here
cat >>"$RUN/destination/postgresql.conf" <<EOF
$common
port = $DST_PORT
shared_preload_libraries = 'dms_lifecycle'
dms_lifecycle.database = 'postgres'
dms_lifecycle.naptime = '200ms'
max_worker_processes = 32
max_logical_replication_workers = 16
max_replication_slots = 20
EOF
for c in source destination; do
    "$BIN/pg_ctl" -D "$RUN/$c" -l "$RUN/$c.log" -w start >/dev/null
done

# ---------------------------------------------------------------- the data set

log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}'), $(nproc) cores; workloads ${WORKLOADS[*]}; scale $SCALE"
if wl dump; then  # the dump's data set (the other workloads make their own)
log "the dump: $ROUNDS rounds"
log "the source: pgbench scale $SCALE, a table with 2 secondary indexes, a table without a primary key, sequences"
src_psql -d postgres -c "CREATE DATABASE $DB"
"$BIN/pgbench" -i -q -s "$SCALE" -p "$SRC_PORT" "$DB" >"$RUN/pgbench-init.log" 2>&1 ||
    { cat "$RUN/pgbench-init.log"; exit 1; }
src_psql -d "$DB" <<'EOF'
CREATE TABLE items (id bigserial PRIMARY KEY, sku text NOT NULL, price numeric(10, 2) NOT NULL,
                    created_at timestamptz NOT NULL, note text);
INSERT INTO items (sku, price, created_at, note)
SELECT 'SKU-' || lpad((g * 7919 % 1000003)::text, 7, '0'), (g % 100000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '37 seconds', md5(g::text)
  FROM generate_series(1, 200000) g;
CREATE INDEX items_sku ON items (sku);
CREATE INDEX items_created_price ON items (created_at, price);
CREATE TABLE events (at timestamptz NOT NULL, kind text NOT NULL, payload text);
INSERT INTO events
SELECT timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second',
       (ARRAY['view', 'click', 'buy'])[1 + g % 3], repeat(md5(g::text), 2)
  FROM generate_series(1, 100000) g;
CREATE SEQUENCE tickets START 1000;
SELECT setval('tickets', 4242) \g /dev/null
VACUUM (FREEZE, ANALYZE);
CHECKPOINT;
EOF
src_psql -d "$DB" -At -c "SELECT format('%s: %s rows, %s, indexes %s', c.relname, c.reltuples::bigint,
                                     pg_size_pretty(pg_table_size(c.oid)), pg_size_pretty(pg_indexes_size(c.oid)))
   FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' ORDER BY pg_table_size(c.oid) DESC" |
    while read -r line; do log "  $line"; done
log "  database: $(src_psql -d "$DB" -At -c "SELECT pg_size_pretty(pg_database_size(current_database()))")"

# The check of a copy: per table its row count and a checksum (the sum of the first 64 bits
# of each row's md5: any row lost, doubled or changed changes it, whatever the order), the
# number of indexes and constraints, and the sequences' values.
check_sql=$(src_psql -d "$DB" -At -c "
SELECT string_agg(format('SELECT %L AS what, count(*)::text || '' '' || coalesce(sum((''x'' || left(md5(r::text), 16))::bit(64)::bigint::numeric), 0) AS value FROM %I.%I r',
                         'table ' || c.relname, n.nspname, c.relname), ' UNION ALL ' ORDER BY c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname = 'public'")
check_sql="$check_sql UNION ALL SELECT 'indexes', count(*)::text FROM pg_indexes WHERE schemaname = 'public'
 UNION ALL SELECT 'constraints', count(*)::text FROM pg_constraint WHERE connamespace = 'public'::regnamespace
 UNION ALL SELECT 'sequence ' || sequencename, last_value::text FROM pg_sequences WHERE schemaname = 'public'
 ORDER BY 1"
src_psql -d "$DB" -At -c "$check_sql" >"$RUN/source.check"
log "what each copy must equal (rows and checksum per table, counts, sequences):"
while read -r line; do log "  $line"; done <"$RUN/source.check"
"$BIN/pg_dump" -p "$SRC_PORT" --schema-only -Fc -f "$RUN/schema.dump" "$DB"   # the subscription's schema
fi

# check CONTENDER: the destination's copy against the source; a difference ends the run.
# PostgreSQL's subscriptions do not copy sequences: the subscription's check skips them.
check() {
    local skip='^$'
    [ "$1" = subscription ] && skip='^sequence '
    dst_psql -d "$DB" -At -c "$check_sql" | grep -v "$skip" >"$RUN/copy.check"
    if ! diff <(grep -v "$skip" "$RUN/source.check") "$RUN/copy.check" >"$RUN/check.diff"; then
        log "$1: the copy differs from the source (< source, > copy):"
        cat "$RUN/check.diff" >&2
        exit 1
    fi
}

# fresh: an empty destination database, and both clusters checkpointed.
fresh() {
    dst_psql -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB TEMPLATE template0" \
        -c CHECKPOINT
    src_psql -d postgres -c CHECKPOINT
}

# ---------------------------------------------------------------- contenders
# Each prints its seconds on stdout; details go to $PHASES and the log.

label() {
    case $1 in
        dump_restore)   echo "pg_dump -Fd -j 2, pg_restore -j 2" ;;
        pgcopydb)       echo "pgcopydb clone, 2 table + 2 index jobs" ;;
        subscription)   echo "subscription, copy_data = true" ;;
        engine_min)     echo "engine, dump_parallelism min (1)" ;;
        engine_optimal) echo "engine, dump_parallelism optimal (2)" ;;
        engine_max)     echo "engine, dump_parallelism max (4)" ;;
    esac
}

phase() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$PHASES"; }

# The processor time a contender took, apart from everything else on the machine: on each
# cluster, what its postmaster's children used (the kernel adds a child's time, and its own
# children's, to its parent when the parent collects it on exit: so backends, WAL senders,
# subscription workers, and the engine's job worker with its pg_dump and pg_restore), and
# the contender's own client programs.  cpu_mark at the timed start, cpu_client at its end
# (both in the contender's shell); cpu_record once the clusters are quiet again.
TICK=$(getconf CLK_TCK)
cluster_ticks() { awk '{ print $16 + $17 }' "/proc/$(head -n 1 "$RUN/$1/postmaster.pid")/stat"; }
shell_ticks() { local st; read -r -a st <"/proc/$BASHPID/stat"; SHELL_TICKS=$((st[15] + st[16])); }
cpu_mark() {
    echo "$(cluster_ticks source) $(cluster_ticks destination)" >"$RUN/cpu.mark"
    shell_ticks
    CLIENT_MARK=$SHELL_TICKS
}
cpu_client() { shell_ticks; echo $((SHELL_TICKS - CLIENT_MARK)) >"$RUN/cpu.client"; }

# quiet: waits until neither cluster has a session, WAL sender, subscription worker or
# engine job worker left (the contender's processes have exited and been counted).
quiet() {
    local port busy
    for port in "$SRC_PORT" "$DST_PORT"; do
        for _ in $(seq 600); do
            busy=$("$BIN/psql" -X -At -p "$port" -d postgres -c "SELECT count(*) FROM pg_stat_activity
                     WHERE pid <> pg_backend_pid() AND (backend_type IN ('client backend', 'walsender',
                           'logical replication worker', 'parallel worker', 'autovacuum worker')
                        OR application_name LIKE 'dms_lifecycle job %')")
            [ "$busy" = 0 ] && break
            sleep 0.1
        done
    done
    sleep 0.2
}

cpu_record() {
    local s0 d0
    quiet
    read -r s0 d0 <"$RUN/cpu.mark"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(calc "($(cluster_ticks source) - $s0) / $TICK")" \
        "$(calc "($(cluster_ticks destination) - $d0) / $TICK")" "$(calc "$(cat "$RUN/cpu.client") / $TICK")" >>"$CPU"
}

# pg_dump in directory format with 2 jobs (compressed, its default), then pg_restore with
# 2 jobs into the empty database; both timed.
contender_dump_restore() {
    local round=$1 t0 t1 t2
    rm -rf "$RUN/dump"
    cpu_mark
    t0=$(now)
    "$BIN/pg_dump" -p "$SRC_PORT" -Fd -j 2 -f "$RUN/dump" "$DB"
    t1=$(now)
    "$BIN/pg_restore" -p "$DST_PORT" -j 2 -d "$DB" "$RUN/dump"
    t2=$(now)
    cpu_client
    rm -rf "$RUN/dump"
    phase dump_restore "$round" "pg_dump" "$(calc "$t1 - $t0")"
    phase dump_restore "$round" "pg_restore" "$(calc "$t2 - $t1")"
    calc "$t2 - $t0"
}

# pgcopydb clone (Debian's; it finds pg_dump and pg_restore through PG_CONFIG): schema,
# 2 COPY jobs, 2 CREATE INDEX jobs, VACUUM ANALYZE, sequences; its work directory in $RUN.
# Where its time goes, from the summary it prints at the end: its steps, and the copy and
# index build of the largest table (the first of its table summary, largest first).
contender_pgcopydb() {
    local round=$1 t0 t1
    rm -rf "$RUN/pgcopydb"
    cpu_mark
    t0=$(now)
    PG_CONFIG=$BIN/pg_config pgcopydb clone \
        --source "postgresql:///$DB?host=$RUN&port=$SRC_PORT&user=postgres" \
        --target "postgresql:///$DB?host=$RUN&port=$DST_PORT&user=postgres" \
        --dir "$RUN/pgcopydb" --table-jobs 2 --index-jobs 2 >"$RUN/pgcopydb.log" 2>&1 ||
        { log "pgcopydb failed:"; tail -n 30 "$RUN/pgcopydb.log" >&2; exit 1; }
    t1=$(now)
    cpu_client
    rm -rf "$RUN/pgcopydb"
    awk -v c=pgcopydb -v r="$round" '
        # its durations: 42ms, 9s442, 40s, 1m05s, 1h02m
        function dur(x,    a) {
            if (x ~ /ms$/) { sub(/ms$/, "", x); return x / 1000 }
            if (x ~ /h/) { split(x, a, /h/); sub(/m$/, "", a[2]); return a[1] * 3600 + a[2] * 60 }
            if (x ~ /m/) { split(x, a, /m/); sub(/s$/, "", a[2]); return a[1] * 60 + a[2] }
            split(x, a, /s/); return a[1] + (a[2] == "" ? 0 : a[2] / 1000)
        }
        function out(name, v) { printf "%s\t%s\t%s\t%.3f\n", c, r, name, v }
        / \| [^|]+ \| +[^|]+ \| +[0-9hms]+ \| +[0-9]+ \| +[0-9hms]+ *$/ && !big {
            split($0, f, / *\| */); big = 1
            table = "copy of " f[3]; tcopy = dur(f[4]); tindex = dur(f[6])
        }
        { n = split($0, f, /  +/) }
        n >= 5 && f[2] ~ /^(Dump Schema|Catalog Queries|Prepare Schema)/ { schema += dur(f[4]) }
        n >= 5 && f[2] ~ /^COPY, INDEX/ { rows = dur(f[4]) }
        n >= 5 && f[2] == "COPY (cumulative)" { copies = dur(f[4]) }
        n >= 5 && f[2] ~ /^CREATE INDEX/ { indexes = dur(f[4]) }
        n >= 5 && f[2] == "Finalize Schema" { finalize = dur(f[4]) }
        END {
            out("schema: pg_dump, catalog, pre-data", schema)
            out("rows, indexes, VACUUM (wall clock)", rows)
            out("  COPY, summed over its jobs", copies)
            out("  CREATE INDEX, summed over its jobs", indexes)
            if (big) { out("  " table, tcopy); out("  its indexes", tindex) }
            out("post-data left (pg_restore)", finalize)
        }' "$RUN/pgcopydb.log" >>"$PHASES"
    calc "$t1 - $t0"
}

# A subscription to a publication of all tables, with its own initial copy (2 table
# synchronisation workers, max_sync_workers_per_subscription's default), into the full
# schema restored beforehand (not timed): from CREATE SUBSCRIPTION until every table is
# ready ('r'), polled every 20 ms in the server.  Then dropped, with its slot and the
# publication (made for it alone: the other contenders would copy it).
contender_subscription() {
    local round=$1 out
    "$BIN/pg_restore" -p "$DST_PORT" -d "$DB" "$RUN/schema.dump"
    src_psql -d "$DB" -c "CREATE PUBLICATION bench_all FOR ALL TABLES"
    dst_psql -d "$DB" -c CHECKPOINT
    cpu_mark
    out=$(dst_psql -d "$DB" -At -c "SET client_min_messages = warning" \
        -c "SELECT extract(epoch FROM clock_timestamp())" \
        -c "CREATE SUBSCRIPTION bench_sub CONNECTION 'host=$RUN port=$SRC_PORT dbname=$DB user=postgres'
                PUBLICATION bench_all WITH (copy_data = true)" \
        -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '30 min'; BEGIN
                LOOP
                    EXIT WHEN EXISTS (SELECT FROM pg_subscription_rel)
                          AND NOT EXISTS (SELECT FROM pg_subscription_rel WHERE srsubstate <> 'r');
                    IF clock_timestamp() > deadline THEN RAISE 'the subscription''s tables are not ready'; END IF;
                    PERFORM pg_sleep(0.02);
                END LOOP; END \$\$" \
        -c "SELECT extract(epoch FROM clock_timestamp())" \
        -c "DROP SUBSCRIPTION bench_sub")
    cpu_client
    src_psql -d "$DB" -c "DROP PUBLICATION bench_all"
    calc "$(sed -n 2p <<<"$out") - $(sed -n 1p <<<"$out")"
}

# The engine: a one-time job of the database with dump_parallelism LEVEL, timed from
# dms_start to Completed by the job's history (bench_watch, below, waits for it).
contender_engine() {
    local level=$1 round=$2 job
    job=$(dst_psql -d postgres -At -c "SELECT dms_create_job('bench_${level}_$round', 'one_time', ARRAY['$DB'],
                                                                '$level', source_server => 'src')")
    cpu_mark
    dst_psql -d postgres -At -c "SELECT dms_start($job)" >/dev/null
    dst_psql -d postgres -At -F '|' -c "SELECT * FROM bench_watch($job)" >"$RUN/watch"
    cpu_client
    if ! grep -q '^status||completed$' "$RUN/watch"; then
        log "engine_$level: the job did not complete:"
        cat "$RUN/watch" >&2
        dst_psql -d postgres -c "SELECT * FROM dms_job_progress WHERE job_id = $job" >&2
        tail -n 20 "$RUN/destination.log" >&2
        exit 1
    fi
    log "  $(awk -F'|' '$1 == "dump_completed" { print $3 }' "$RUN/watch")"
    # the tables copied in ranges, as the destination's log says
    sed -n "s/.*dms_lifecycle: migration job $job, database \"$DB\": table \(.*\)/\1/p" "$RUN/destination.log" |
        while read -r line; do log "  $line"; done
    # the phases, from the history's events and the states' earliest observed_at
    awk -F'|' -v c="engine_$level" -v r="$round" '
        { at[$1] = $2 }
        function span(name, from, to) {
            if ((from in at) && (to in at) && at[from] != "" && at[to] != "")
                printf "%s\t%s\t%s\t%.3f\n", c, r, name, at[to] - at[from]
        }
        END {
            span("preflight (dms_start to schema)", "start", "schema")
            span("schema: slot, pg_dump, pre-data", "schema", "started")
            span("wait for the copy", "started", "copying")
            span("copy of the rows", "copying", "indexing")
            span("post-data (indexes), sequences", "indexing", "done")
            span("Completed", "done", "dump_completed")
            span("total", "start", "dump_completed")
        }' "$RUN/watch" >>"$PHASES"
    awk -F'|' -v c="engine_$level" -v r="$round" -v tick="$TICK" '
        $1 == "worker ticks" { w = $2 } $1 == "program ticks" { p = $2 }
        END { printf "%s\t%s\t%.2f\t%.2f\n", c, r, w / tick, p / tick }' "$RUN/watch" >>"$WORKER"
    awk -F'|' '$1 == "start" { s = $2 } $1 == "dump_completed" { printf "%.3f", $2 - s }' "$RUN/watch"
}

# ---------------------------------------------------------------- the destination's engine

# the extension, the source as a server of the engine's wrapper, and bench_watch(job):
# waits (polling every 20 ms in the server) until the job has completed or failed, keeping
# the earliest observed_at of each state its database went through (the engine writes the
# row when the database enters a state, then every naptime while it copies), and the
# processor time of the job's worker (its /proc/PID/stat: its own, and that of the
# pg_dump and pg_restore it ran), as last seen; returns those, the job's history events,
# and its final status.
dst_psql -d postgres <<EOF
CREATE EXTENSION dms_lifecycle;
CREATE SERVER src FOREIGN DATA WRAPPER dms_lifecycle_connection OPTIONS (host '$RUN', port '$SRC_PORT');
CREATE USER MAPPING FOR PUBLIC SERVER src OPTIONS (user 'postgres');
CREATE FUNCTION bench_watch(job bigint) RETURNS TABLE (what text, at float8, note text)
LANGUAGE plpgsql AS \$\$
DECLARE
    seen jsonb := '{}';
    st text;
    r record;
    worker int;
    stat text[];
    own bigint;
    programs bigint;
    deadline timestamptz := clock_timestamp() + interval '30 min';
BEGIN
    LOOP
        FOR r IN SELECT d.state::text AS s, extract(epoch FROM d.observed_at)::float8 AS t
                   FROM dms_job_database d WHERE d.job_id = job LOOP
            IF NOT seen ? r.s OR (seen ->> r.s)::float8 > r.t THEN
                seen := seen || jsonb_build_object(r.s, r.t);
            END IF;
        END LOOP;
        SELECT a.pid INTO worker FROM pg_stat_activity a WHERE a.application_name = 'dms_lifecycle job ' || job;
        IF worker IS NOT NULL THEN
            BEGIN
                -- the fields after the command's name: utime, stime, cutime, cstime are 12 to 15
                stat := string_to_array(split_part(pg_read_file('/proc/' || worker || '/stat'), ') ', 2), ' ');
                own := stat[12]::bigint + stat[13]::bigint;
                programs := stat[14]::bigint + stat[15]::bigint;
            EXCEPTION WHEN OTHERS THEN
                NULL;       -- it has just ended
            END;
        END IF;
        SELECT j.status::text INTO st FROM dms_job j WHERE j.id = job;
        EXIT WHEN st IS NULL OR st IN ('completed', 'failed') OR clock_timestamp() > deadline;
        PERFORM pg_sleep(0.02);
    END LOOP;
    RETURN QUERY SELECT key, value::text::float8, NULL::text FROM jsonb_each(seen);
    RETURN QUERY SELECT h.cause, extract(epoch FROM h.occurred_at)::float8, h.message
                   FROM dms_job_history h WHERE h.job_id = job ORDER BY h.id;
    RETURN QUERY SELECT 'worker ticks', own::float8, NULL UNION ALL SELECT 'program ticks', programs::float8, NULL;
    RETURN QUERY SELECT 'status', NULL::float8, coalesce(st, 'deleted');
END
\$\$;
EOF

# ---------------------------------------------------------------- the rounds of the dump

workload_dump() {
for round in $(seq "$ROUNDS"); do
    n=${#CONTENDERS[@]}
    for i in $(seq 0 $((n - 1))); do
        contender=${CONTENDERS[$(((i + round - 1) % n))]}
        fresh
        quiet
        case $contender in
            engine_*) seconds=$(contender_engine "${contender#engine_}" "$round") ;;
            *) seconds=$("contender_$contender" "$round") ;;
        esac
        cpu_record "$contender" "$round"
        check "$contender"
        log "round $round, $(label "$contender"): $seconds s, checked"
        printf '%s\t%s\t%s\n' "$contender" "$round" "$seconds" >>"$RESULTS"
        slots=$(src_psql -d postgres -At -c "SELECT count(*) FROM pg_replication_slots")
        [ "$slots" = 0 ] || { log "$contender left $slots replication slots on the source"; exit 1; }
    done
done
dst_psql -d postgres -c "DROP DATABASE $DB WITH (FORCE)"

# ---------------------------------------------------------------- the report

for contender in "${CONTENDERS[@]}"; do printf '%s\t%s\n' "$contender" "$(label "$contender")"; done >"$RUN/labels.tsv"
awk -F'\t' -v rounds="$ROUNDS" -v scale="$SCALE" -v cores="$(nproc)" '
    function median(a, n,    i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    FILENAME ~ /\/labels\.tsv$/ { order[++contenders] = $1; name[$1] = $2; next }
    FILENAME ~ /\/results\.tsv$/ { v[$1, ++nv[$1]] = $3; wall[$1, $2] = $3; next }
    FILENAME ~ /\/cpu\.tsv$/ {
        k = $1; n = ++nc[k]; src[k, n] = $3; dst[k, n] = $4; cli[k, n] = $5
        tot[k, n] = $3 + $4 + $5; used[k, n] = wall[k, $2] > 0 ? ($3 + $4 + $5) / wall[k, $2] : 0
        next
    }
    FILENAME ~ /\/worker\.tsv$/ { k = $1; n = ++nw[k]; wown[k, n] = $3; wprog[k, n] = $4; next }
    FILENAME ~ /\/phases\.tsv$/ { k = $1 SUBSEP $3; if (!(k in np)) porder[$1, ++nphases[$1]] = $3; pv[k, ++np[k]] = $4; next }
    function med_of(arr, k, n,    j, a) { for (j = 1; j <= n; j++) a[j] = arr[k, j]; return median(a, n) }
    END {
        for (i = 1; i <= contenders; i++) {
            c = order[i]
            if (!nv[c]) continue
            med[c] = med_of(v, c, nv[c])
            best[c] = v[c, 1]; for (j = 2; j <= nv[c]; j++) if (v[c, j] < best[c]) best[c] = v[c, j]
            if (c !~ /^engine_/ && (fastest == "" || med[c] < med[fastest])) fastest = c
        }
        ref = ("engine_optimal" in med) ? "engine_optimal" : ""
        for (i = 1; i <= contenders && ref == ""; i++) if (order[i] ~ /^engine_/ && (order[i] in med)) ref = order[i]
        printf "\nA copy of pgbench scale %s and its companions, %s rounds, contenders interleaved, every copy checked\n\n", scale, rounds
        printf "  %-40s %8s %9s   %s\n", "contender", "best s", "median s", (ref != "" ? "median / " name[ref] : "")
        for (i = 1; i <= contenders; i++) {
            c = order[i]
            if (c in med)
                printf "  %-40s %8.2f %9.2f   %s\n", name[c], best[c], med[c], (ref != "" ? sprintf("%.2f", med[c] / med[ref]) : "")
        }
        if (fastest != "") {
            printf "\n  the fastest other: %s, median %.2f s\n", name[fastest], med[fastest]
            for (i = 1; i <= contenders; i++)
                if (order[i] ~ /^engine_/ && (order[i] in med))
                    printf "  %-40s %8.2f x its time (median / median: below 1, the engine is faster)\n", name[order[i]], med[order[i]] / med[fastest]
        }
        printf "\n  processor time (medians, s): source cluster, destination cluster, client programs; cores busy = all / wall (of %s)\n", cores
        printf "  %-40s %8s %12s %8s %8s %8s\n", "contender", "source", "destination", "clients", "all", "cores"
        for (i = 1; i <= contenders; i++) {
            c = order[i]
            if (nc[c])
                printf "  %-40s %8.2f %12.2f %8.2f %8.2f %8.2f\n", name[c], med_of(src, c, nc[c]), med_of(dst, c, nc[c]),
                    med_of(cli, c, nc[c]), med_of(tot, c, nc[c]), med_of(used, c, nc[c])
        }
        for (i = 1; i <= contenders; i++) {
            c = order[i]
            if (nw[c])
                printf "  %s: of its destination time, the job worker itself %.2f s, its pg_dump and pg_restore %.2f s\n",
                    name[c], med_of(wown, c, nw[c]), med_of(wprog, c, nw[c])
        }
        for (i = 1; i <= contenders; i++) {
            c = order[i]
            if (!nphases[c]) continue
            printf "\n  where the time goes, %s (medians, s)\n", name[c]
            for (j = 1; j <= nphases[c]; j++) {
                k = c SUBSEP porder[c, j]
                printf "    %-40s %8.2f\n", porder[c, j], med_of(pv, k, np[k])
            }
        }
    }' "$RUN/labels.tsv" "$RESULTS" "$CPU" "$WORKER" "$PHASES"
}

# ---------------------------------------------------------------- continuous jobs

# wait_job JOB STATUS [PHASE]: waits (polling every 50 ms in the server, for at most 30
# minutes) until the job has STATUS (and PHASE), and with phase cdc every database of it
# streams; a failure, errors or the timeout end the run.
wait_job() {
    local cond="status = '$2'"
    [ -n "${3:-}" ] && cond="$cond AND phase = '$3'"
    [ "${3:-}" = cdc ] && cond="$cond AND NOT EXISTS (SELECT FROM dms_job_database d WHERE d.job_id = $1 AND d.state <> 'streaming')"
    dst_psql -d postgres -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '30 min'; BEGIN
        LOOP
            EXIT WHEN EXISTS (SELECT FROM dms_job WHERE id = $1 AND $cond);
            IF clock_timestamp() > deadline OR EXISTS (SELECT FROM dms_job WHERE id = $1
                                                        AND status IN ('failed', 'running_with_errors')) THEN
                RAISE 'job $1 did not reach $2 ${3:-}: %', (SELECT status || ' ' || coalesce(error_message, '') FROM dms_job WHERE id = $1);
            END IF;
            PERFORM pg_sleep(0.05);
        END LOOP; END \$\$" ||
        { dst_psql -d postgres -c "SELECT * FROM dms_job_progress WHERE job_id = $1" >&2
          tail -n 20 "$RUN/destination.log" >&2; exit 1; }
}

# continuous_job NAME DB...: empty databases of those names on the destination, a
# continuous job of them (dump_parallelism optimal) started and waited for until it is
# Running (CDC) with every database streaming; prints its id.
continuous_job() {
    local name=$1 db job list
    shift
    list=$(printf "'%s'," "$@")
    for db in "$@"; do
        dst_psql -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db TEMPLATE template0"
    done
    job=$(dst_psql -d postgres -At -c "SELECT dms_create_job('$name', 'continuous', ARRAY[${list%,}],
                                                            'optimal', source_server => 'src')")
    dst_psql -d postgres -At -c "SELECT dms_start($job)" >/dev/null
    wait_job "$job" running cdc
    echo "$job"
}

# after_promotion JOB DB...: the promoted job leaves no slot; the source databases made
# writable again (the promotion's fence leaves them read-only), the copies dropped.
after_promotion() {
    local job=$1 db slots
    shift
    slots=$(src_psql -d postgres -At -c "SELECT count(*) FROM pg_replication_slots")
    [ "$slots" = 0 ] || { log "job $job left $slots replication slots on the source"; exit 1; }
    for db in "$@"; do
        src_psql -d postgres -c "ALTER DATABASE $db RESET default_transaction_read_only"
        dst_psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"
    done
}

# median: of the numbers on stdin
median() { sort -g | awk '{ v[++n] = $1 } END { print n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'; }

# percentiles: of the numbers on stdin, their count, median, 99th percentile (nearest
# rank) and maximum
percentiles() {
    sort -g | awk '{ v[++n] = $1 } END {
        if (!n) { print "0 - - -"; exit }
        p = int(0.99 * n + 0.999); if (p < 1) p = 1
        printf "%d %.3f %.3f %.3f\n", n, n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[p], v[n] }'
}

# ---------------------------------------------------------------- CDC under load

# pgbench -c 4 on the source's database cdc (pgbench at SCALE, and cdc_clock) for
# CDC_SECONDS at a time: first with no migration, then CDC_ROUNDS rounds, each of runs
# with a migration of cdc in CDC and one more with no migration.  The migrations: a
# continuous job of cdc, and a plain publication of its tables with a subscription
# (PostgreSQL's own logical replication, on which the job's CDC is built), each with
# the source's WAL sender in each of the placements below; their order turns from round
# to round.  Each run with a migration is compared with the runs without on either side
# of its round, against drift on a shared machine.  Beside every run a session writes a
# row of cdc_clock every 100 ms (its clock_timestamp(), committed at once); with a
# migration, a session on the destination looks for new rows every 10 ms and notes
# destination clock_timestamp() - the row's time when one appears, and with the job
# another reads dms_job_progress's lag_bytes and lag every 100 ms.
#
# The readers commit at every look: a transaction held open for the run would hold back
# the destination's xmin, and with it the pruning of the rows the apply worker updates,
# whose chains of dead versions it would then walk at every update (a first version
# did: the apply worker used a whole processor and lagged by a minute).  Autovacuum is on
# in both clusters here, as on any server that takes pgbench's updates for long.
#
# Where the processes run (CDC_PIN).  1, the default on 2 processors or more: the source
# cluster and its clients (pgbench, the clock's writer) on processor 0, which the load
# keeps busy, and the destination cluster on processor 1; each migration then runs
# twice, its WAL sender moved to processor 1 ("spare": a source with a processor to
# spare for its WAL sender; it shares it with the destination here) and left on
# processor 0 ("busy": a source with none, where every millisecond its WAL sender
# spends decoding is taken from its sessions).  0: everything shares every processor
# ("shared"), the destination's apply competing with the source.
CDC_ROUNDS=${CDC_ROUNDS:-3}
CDC_PIN=${CDC_PIN:-$(( $(nproc) >= 2 ? 1 : 0 ))}
SOURCE_CPU=all
DESTINATION_CPU=all

# pin CLUSTER CPUS: the cluster's postmaster and every process it has started run on CPUS
# (those it starts later inherit it).
pin() {
    local pm
    pm=$(head -n 1 "$RUN/$1/postmaster.pid")
    for pid in $pm $(pgrep -P "$pm"); do taskset -a -p -c "$2" "$pid" >/dev/null 2>&1 || true; done
}
on() { if [ "$1" = all ]; then shift; "$@"; else local c=$1; shift; taskset -c "$c" "$@"; fi; }

clock_writer() {
    on "$SOURCE_CPU" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -p "$SRC_PORT" -d cdc -c "DO \$\$ DECLARE until timestamptz := clock_timestamp() + interval '$CDC_SECONDS s'; BEGIN
        WHILE clock_timestamp() < until LOOP
            INSERT INTO cdc_clock (at) VALUES (clock_timestamp());
            COMMIT;
            PERFORM pg_sleep(0.1);
        END LOOP;
        INSERT INTO cdc_clock (at, final) VALUES (clock_timestamp(), true);
    END \$\$"
}
clock_reader() {
    dst_psql -d cdc -c "SET client_min_messages = notice" -c "DO \$\$ DECLARE
        deadline timestamptz := clock_timestamp() + interval '$CDC_SECONDS s' + interval '5 min';
        seen bigint := coalesce((SELECT max(id) FROM cdc_clock), 0);
        finished boolean := false;
        r record;
    BEGIN
        WHILE NOT finished AND clock_timestamp() < deadline LOOP
            FOR r IN SELECT id, extract(epoch FROM clock_timestamp() - at) AS lag, final FROM cdc_clock
                      WHERE id > seen ORDER BY id LOOP
                IF NOT r.final THEN RAISE NOTICE 'clock % %', r.id, r.lag; END IF;
                seen := r.id;
                finished := r.final;
            END LOOP;
            COMMIT;
            PERFORM pg_sleep(0.01);
        END LOOP;
    END \$\$" 2>&1 | awk '$2 == "clock" { print $4 }'
}
progress_reader() {
    dst_psql -d postgres -c "SET client_min_messages = notice" -c "DO \$\$ DECLARE
        until timestamptz := clock_timestamp() + interval '$CDC_SECONDS s';
        r record;
    BEGIN
        WHILE clock_timestamp() < until LOOP
            FOR r IN SELECT lag_bytes, extract(epoch FROM lag) AS lag FROM dms_job_progress WHERE job_id = $1 LOOP
                RAISE NOTICE 'progress % %', r.lag_bytes, coalesce(r.lag::text, '-');
            END LOOP;
            COMMIT;
            PERFORM pg_sleep(0.1);
        END LOOP;
    END \$\$" 2>&1 | awk '$2 == "progress" { print $3, $4 }'
}
# The processor time of live processes (their own, in ticks).
proc_ticks() {
    local pid total=0 st
    for pid in "$@"; do
        read -r -a st <"/proc/$pid/stat" 2>/dev/null || continue
        total=$((total + st[13] + st[14]))
    done
    echo "$total"
}
# source_pids KIND: the source's processes that serve a migration, KIND walsender (its
# WAL senders) or engine (the engine's sessions, application_name dms_lifecycle).
source_pids() {
    local cond="backend_type = 'walsender'"
    [ "$1" = engine ] && cond="application_name = 'dms_lifecycle' AND backend_type <> 'walsender'"
    src_psql -d postgres -At -c "SELECT pid FROM pg_stat_activity WHERE $cond ORDER BY pid" | tr '\n' ' '
}
# settled: waits until the source has no client session but the engine's (the last
# VACUUM's has exited and been collected: its processor time is not the next run's).
settled() {
    src_psql -d postgres -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '1 min'; BEGIN
        WHILE EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
                                                     AND application_name <> 'dms_lifecycle') LOOP
            IF clock_timestamp() > deadline THEN RAISE 'the source has sessions left'; END IF;
            PERFORM pg_sleep(0.05);
        END LOOP; END \$\$"
    sleep 0.3
}
# load NAME [WALSENDERS ENGINE]: pgbench -c 4 for CDC_SECONDS on the source's cdc, the
# clock writer beside it; prints pgbench's transactions per second.  Notes in
# $RUN/cdc-cpu-NAME the source's processor time meanwhile (ticks: the sessions of the
# load, counted when they have exited; the WAL senders WALSENDERS and the engine's
# sessions ENGINE, pids which live on, each) and the transactions.  A WAL sender that
# is gone by the end (its apply worker restarted) voids the run.
load() {
    local name=$1 walsenders=${2:-} engine=${3:-} c0 c1 w0 w1 e0 e1 pid
    settled
    c0=$(cluster_ticks source)
    w0=$(proc_ticks $walsenders)
    e0=$(proc_ticks $engine)
    clock_writer &
    local writer=$!
    on "$SOURCE_CPU" "$BIN/pgbench" -n -c 4 -T "$CDC_SECONDS" -p "$SRC_PORT" cdc >"$RUN/pgbench-$name.log" 2>&1 ||
        { cat "$RUN/pgbench-$name.log" >&2; exit 1; }
    wait "$writer"
    w1=$(proc_ticks $walsenders)
    e1=$(proc_ticks $engine)
    for pid in $walsenders; do
        [ -e "/proc/$pid" ] || { log "$name: the WAL sender $pid ended during the run"; exit 1; }
    done
    sleep 0.5                    # the load's sessions exited and collected
    c1=$(cluster_ticks source)
    echo "$((c1 - c0)) $((w1 - w0)) $((e1 - e0)) $(awk '/^number of transactions actually processed:/ { print $6 }' "$RUN/pgbench-$name.log")" \
        >"$RUN/cdc-cpu-$name"
    awk '/^tps = / { printf "%.1f", $3 }' "$RUN/pgbench-$name.log"
}
# per_tx NAME: the source's processor milliseconds per transaction in run NAME: all, its
# WAL senders', the engine's sessions'
per_tx() {
    awk -v tick="$TICK" '{ f = 1000 / tick / $4; printf "%.4f %.4f %.4f", ($1 + $2 + $3) * f, $2 * f, $3 * f }' "$RUN/cdc-cpu-$1"
}
# quiet_source: the source vacuumed and checkpointed before a run, as for the first
quiet_source() { src_psql -d cdc -c "VACUUM ANALYZE" -c CHECKPOINT; }

# plain_subscription: the source's cdc restored, schema only, into an empty cdc on the
# destination; a publication of all its tables on the source and a subscription of it
# that copies them (copy_data = true), waited for until every table is ready and its
# apply worker streams.  drop_plain_subscription takes them down, slot included.
plain_subscription() {
    dst_psql -d postgres -c "DROP DATABASE IF EXISTS cdc WITH (FORCE)" -c "CREATE DATABASE cdc TEMPLATE template0"
    "$BIN/pg_dump" -p "$SRC_PORT" --schema-only cdc | dst_psql -d cdc >/dev/null
    src_psql -d cdc -c "CREATE PUBLICATION bench_cdc FOR ALL TABLES"
    dst_psql -d cdc -c "SET client_min_messages = warning" \
        -c "CREATE SUBSCRIPTION bench_cdc CONNECTION 'host=$RUN port=$SRC_PORT dbname=cdc user=postgres'
                PUBLICATION bench_cdc WITH (copy_data = true)" \
        -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '30 min'; BEGIN
                LOOP
                    EXIT WHEN EXISTS (SELECT FROM pg_subscription_rel)
                          AND NOT EXISTS (SELECT FROM pg_subscription_rel WHERE srsubstate <> 'r')
                          AND EXISTS (SELECT FROM pg_stat_subscription WHERE subname = 'bench_cdc'
                                                                         AND relid IS NULL AND pid IS NOT NULL);
                    IF clock_timestamp() > deadline THEN RAISE 'the subscription does not stream'; END IF;
                    PERFORM pg_sleep(0.05);
                END LOOP; END \$\$"
}
drop_plain_subscription() {
    local slots
    dst_psql -d cdc -c "DROP SUBSCRIPTION bench_cdc"
    src_psql -d cdc -c "DROP PUBLICATION bench_cdc"
    slots=$(src_psql -d postgres -At -c "SELECT count(*) FROM pg_replication_slots")
    [ "$slots" = 0 ] || { log "the subscription left $slots replication slots on the source"; exit 1; }
    dst_psql -d postgres -c "DROP DATABASE cdc WITH (FORCE)"
}
# wait_streaming [JOB]: waits until every replication slot of the source is in use by a
# WAL sender, its subscription's apply worker connected, and has confirmed the source's
# WAL position of then; and the job's dms_job_progress says a lag of 0.  An apply worker
# may start up to wal_retrieve_retry_interval after its subscription (PostgreSQL's
# launcher starts apply workers at most once an interval, and the one it started last
# was for the subscription dropped before): the run measures the lag under load, not
# that start.
wait_streaming() {
    src_psql -d postgres -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '5 min'; BEGIN
        LOOP
            EXIT WHEN EXISTS (SELECT FROM pg_replication_slots)
                  AND NOT EXISTS (SELECT FROM pg_replication_slots WHERE active_pid IS NULL);
            IF clock_timestamp() > deadline THEN RAISE 'the source has a slot no WAL sender uses'; END IF;
            PERFORM pg_sleep(0.05);
        END LOOP; END \$\$" \
        -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '5 min'; target pg_lsn := pg_current_wal_lsn(); BEGIN
        WHILE EXISTS (SELECT FROM pg_replication_slots WHERE confirmed_flush_lsn < target) LOOP
            IF clock_timestamp() > deadline THEN RAISE 'a slot of the source does not catch up'; END IF;
            PERFORM pg_sleep(0.05);
        END LOOP; END \$\$"
    [ -z "${1:-}" ] || dst_psql -d postgres -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '5 min'; BEGIN
        WHILE EXISTS (SELECT FROM dms_job_progress WHERE job_id = $1 AND lag IS DISTINCT FROM interval '0') LOOP
            IF clock_timestamp() > deadline THEN RAISE 'job $1 does not report a lag of 0'; END IF;
            PERFORM pg_sleep(0.05);
        END LOOP; END \$\$"
}
migration_label() { case $1 in job) echo "the job" ;; subscription) echo "a plain subscription" ;; esac; }
place_label() {
    case $1 in
        spare) echo "its WAL sender on the spare processor" ;;
        busy) echo "its WAL sender on the source's busy processor" ;;
        shared) echo "every processor shared" ;;
    esac
}

# cdc_run KIND PLACE ROUND: the load with a migration of cdc in CDC, KIND job or
# subscription, its WAL senders placed PLACE (spare: on the destination's processor),
# its lag read meanwhile; then the job promoted, or the subscription dropped.  Sets
# CDC_TPS.
cdc_run() {
    local kind=$1 place=$2 round=$3 name="$1-$2-$3" job="" readers=() walsenders engine="" pid
    if [ "$kind" = job ]; then
        job=$(continuous_job "bench_cdc_${place}_$round" cdc)
    else
        plain_subscription
    fi
    wait_streaming "$job"
    walsenders=$(source_pids walsender)
    [ "$kind" = job ] && engine=$(source_pids engine)
    if [ -z "$walsenders" ] || { [ "$kind" = job ] && [ -z "$engine" ]; }; then
        log "$name: no WAL sender${job:+ or engine session} on the source"
        exit 1
    fi
    if [ "$place" = spare ]; then
        for pid in $walsenders; do taskset -p -c "$DESTINATION_CPU" "$pid" >/dev/null; done
    fi
    log "  round $round: $(migration_label "$kind") in CDC${job:+ (job $job)}, $(place_label "$place"); the same load"
    [ -n "$job" ] && { progress_reader "$job" >"$RUN/cdc-progress-$name" & readers+=($!); }
    clock_reader >"$RUN/cdc-clock-$name" &
    readers+=($!)
    CDC_TPS=$(load "$name" "$walsenders" "$engine")
    wait "${readers[@]}"
    if [ -n "$job" ]; then
        dst_psql -d postgres -At -c "SELECT dms_promote($job)" >/dev/null
        wait_job "$job" completed
        after_promotion "$job" cdc
    else
        drop_plain_subscription
    fi
}

workload_cdc() {
    local round run runs=() places=(shared) n i kind place before after ratio cost clock b w a port
    log "CDC: the source's cdc, pgbench scale $SCALE and cdc_clock; pgbench -c 4 for $CDC_SECONDS s; $CDC_ROUNDS rounds"
    if [ "$CDC_PIN" != 0 ]; then
        SOURCE_CPU=0
        DESTINATION_CPU=1
        pin source "$SOURCE_CPU"
        pin destination "$DESTINATION_CPU"
        places=(spare busy)
        log "  the source cluster and its clients on processor $SOURCE_CPU, the destination cluster on processor $DESTINATION_CPU"
    fi
    for place in "${places[@]}"; do runs+=("job:$place" "subscription:$place"); done
    for port in "$SRC_PORT" "$DST_PORT"; do
        "$BIN/psql" -X -q -p "$port" -d postgres -c "ALTER SYSTEM SET autovacuum = on" -c "SELECT pg_reload_conf()" >/dev/null
    done
    src_psql -d postgres -c "CREATE DATABASE cdc"
    on "$SOURCE_CPU" "$BIN/pgbench" -i -q -s "$SCALE" -p "$SRC_PORT" cdc >"$RUN/pgbench-init-cdc.log" 2>&1 ||
        { cat "$RUN/pgbench-init-cdc.log"; exit 1; }
    src_psql -d cdc -c "CREATE TABLE cdc_clock (id bigserial PRIMARY KEY, at timestamptz NOT NULL, final boolean NOT NULL DEFAULT false)"
    : >"$RUN/cdc-rounds"
    quiet_source
    before=$(load without-1)
    log "  without a migration: $before tps"
    n=${#runs[@]}
    for round in $(seq "$CDC_ROUNDS"); do
        for i in $(seq 0 $((n - 1))); do
            run=${runs[$(((i + round - 1) % n))]}
            quiet_source
            cdc_run "${run%:*}" "${run#*:}" "$round"
            printf '%s\n' "$CDC_TPS" >"$RUN/cdc-tps-${run%:*}-${run#*:}-$round"
        done
        quiet_source
        after=$(load "without-$((round + 1))")
        read -r -a b <<<"$(per_tx "without-$round")"
        read -r -a a <<<"$(per_tx "without-$((round + 1))")"
        for run in "${runs[@]}"; do
            kind=${run%:*}
            place=${run#*:}
            read -r -a clock <<<"$(percentiles <"$RUN/cdc-clock-$kind-$place-$round")"
            read -r -a w <<<"$(per_tx "$kind-$place-$round")"
            ratio=$(calc "$(cat "$RUN/cdc-tps-$kind-$place-$round") / (($before + $after) / 2)")
            cost=$(calc "(${w[0]} - (${b[0]} + ${a[0]}) / 2) / ((${b[0]} + ${a[0]}) / 2)")
            log "  round $round, $(migration_label "$kind"), $(place_label "$place"): $(cat "$RUN/cdc-tps-$kind-$place-$round") tps against $before and $after without; ratio $ratio; lag measured median ${clock[1]} s, p99 ${clock[2]} s; source ms per transaction ${b[0]}, ${w[0]} (WAL sender ${w[1]}, engine ${w[2]}), ${a[0]}"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$kind" "$place" "$before" \
                "$(cat "$RUN/cdc-tps-$kind-$place-$round")" "$after" "$ratio" "${clock[2]}" "${b[0]}" "${w[0]}" "${w[1]}" "${w[2]}" \
                "${a[0]}" "$cost" >>"$RUN/cdc-rounds"
        done
        before=$after
    done
    src_psql -d postgres -c "DROP DATABASE cdc WITH (FORCE)"
    for port in "$SRC_PORT" "$DST_PORT"; do
        "$BIN/psql" -X -q -p "$port" -d postgres -c "ALTER SYSTEM RESET autovacuum" -c "SELECT pg_reload_conf()" >/dev/null
    done
    if [ "$CDC_PIN" != 0 ]; then
        pin source "0-$(($(nproc) - 1))"
        pin destination "0-$(($(nproc) - 1))"
        SOURCE_CPU=all
        DESTINATION_CPU=all
    fi
    cdc_report "${places[@]}"
}

# cdc_report PLACE...: the lag of every round together, then round by round the source's
# tps and processor time per transaction with each migration and without, and medians.
cdc_report() {
    local place kind lag bytes secs
    printf '\nCDC: pgbench -c 4 on the source (scale %s), %s s a run, %s rounds; %s\n\n' "$SCALE" "$CDC_SECONDS" "$CDC_ROUNDS" \
        "$(if [ "$CDC_PIN" != 0 ]; then echo "the source and its clients on processor 0, the destination on 1"
           else echo "both clusters share every processor"; fi)"
    printf '  %-84s %8s %10s %10s %10s\n' "lag, every round together, s" "samples" "median" "p99" "max"
    for place in "$@"; do
        for kind in job subscription; do
            read -r -a lag <<<"$(cat "$RUN"/cdc-clock-"$kind-$place"-* | percentiles)"
            printf '  %-84s %8s %10s %10s %10s\n' "$(migration_label "$kind"), $(place_label "$place"): measured" "${lag[@]}"
        done
        read -r -a secs <<<"$(cat "$RUN"/cdc-progress-job-"$place"-* | awk '$2 != "-" { print $2 }' | percentiles)"
        read -r -a bytes <<<"$(cat "$RUN"/cdc-progress-job-"$place"-* | awk '$1 >= 0 { print $1 }' | percentiles)"
        printf '  %-84s %8s %10s %10s %10s\n' "the job, $(place_label "$place"): dms_job_progress.lag" "${secs[@]}"
        printf '  %-84s %8s %10.0f %10.0f %10.0f\n' "the job, $(place_label "$place"): dms_job_progress.lag_bytes, bytes" "${bytes[@]}"
    done
    printf '\n  the source, pgbench -c 4, by round: tps without before, with the migration in CDC, without after, with /\n'
    printf '  mean without; p99 lag measured, s; the source'"'"'s processor ms per transaction: without before, with the\n'
    printf '  migration (of which its WAL sender, and the engine'"'"'s sessions), without after; and the migration'"'"'s\n'
    printf '  cost in processor time per transaction: (with - mean without) / mean without\n'
    printf '  %-5s %-13s %-7s %8s %8s %8s %7s %7s   %7s %7s %7s %7s %7s %7s\n' round migration sender before with after ratio p99 \
        before with "sender" engine after cost
    while IFS=$'\t' read -r round kind place before during after ratio p99 cb cw cs ce ca cost; do
        printf '  %-5s %-13s %-7s %8s %8s %8s %7s %7s   %7s %7s %7s %7s %7s %7s\n' "$round" "$kind" "$place" "$before" "$during" \
            "$after" "$ratio" "$p99" "$cb" "$cw" "$cs" "$ce" "$ca" "$cost"
    done <"$RUN/cdc-rounds"
    printf '\n'
    for place in "$@"; do
        for kind in job subscription; do
            printf '  %-70s median %s x the tps without; median cost %s\n' "$(migration_label "$kind"), $(place_label "$place"):" \
                "$(awk -F'\t' -v k="$kind" -v p="$place" '$2 == k && $3 == p { print $7 }' "$RUN/cdc-rounds" | median)" \
                "$(awk -F'\t' -v k="$kind" -v p="$place" '$2 == k && $3 == p { print $14 }' "$RUN/cdc-rounds" | median)"
        done
        printf '  %-70s median %s\n' "the job's tps / the subscription's, $(place_label "$place"), same round:" \
            "$(awk -F'\t' -v p="$place" '$3 == p { t[$1, $2] = $5; r[$1] = 1 }
                  END { for (i in r) printf "%.3f\n", t[i, "job"] / t[i, "subscription"] }' "$RUN/cdc-rounds" | median)"
    done
}

# ---------------------------------------------------------------- the cutover

# 3 source databases at pgbench scale SCALE, quiet; for verify = count, then checksum
# (ALTER SYSTEM and pg_reload_conf on the destination): a continuous job of the three
# waited for in CDC, then from dms_promote to Completed, by the job's history (the
# promote and promoted rows).
workload_cutover() {
    local dbs=(cut1 cut2 cut3) db bytes verify job out
    log "cutover: ${dbs[*]}, pgbench scale $SCALE each"
    for db in "${dbs[@]}"; do
        src_psql -d postgres -c "CREATE DATABASE $db"
        "$BIN/pgbench" -i -q -s "$SCALE" -p "$SRC_PORT" "$db" >"$RUN/pgbench-init-$db.log" 2>&1 ||
            { cat "$RUN/pgbench-init-$db.log"; exit 1; }
        src_psql -d "$db" -c "VACUUM ANALYZE"
    done
    bytes=$(src_psql -d postgres -At -c "SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname IN ('cut1', 'cut2', 'cut3')")
    log "  $(calc "$bytes / 1e9") GB in all (pg_database_size)"
    : >"$RUN/cutover.tsv"
    for verify in count checksum; do
        dst_psql -d postgres -c "ALTER SYSTEM SET dms_lifecycle.verify = $verify" -c "SELECT pg_reload_conf()" >/dev/null
        job=$(continuous_job "bench_cutover_$verify" "${dbs[@]}")
        src_psql -d postgres -c CHECKPOINT
        dst_psql -d postgres -c CHECKPOINT
        sleep 1
        dst_psql -d postgres -At -c "SELECT dms_promote($job)" >/dev/null
        wait_job "$job" completed
        out=$(dst_psql -d postgres -At -c "SELECT extract(epoch FROM max(occurred_at) FILTER (WHERE cause = 'promoted'))
                                                 - extract(epoch FROM max(occurred_at) FILTER (WHERE cause = 'promote'))
                                             FROM dms_job_history WHERE job_id = $job")
        log "  verify = $verify: $(calc "$out") s from dms_promote to Completed"
        printf '%s\t%s\n' "$verify" "$out" >>"$RUN/cutover.tsv"
        after_promotion "$job" "${dbs[@]}"
    done
    dst_psql -d postgres -c "ALTER SYSTEM RESET dms_lifecycle.verify" -c "SELECT pg_reload_conf()" >/dev/null
    for db in "${dbs[@]}"; do src_psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"; done
    printf '\nCutover: 3 databases at pgbench scale %s (%s GB), the source quiet, dms_promote to Completed\n\n' "$SCALE" "$(calc "$bytes / 1e9")"
    printf '  %-20s %10s %10s\n' "verify" "s" "s per GB"
    while IFS=$'\t' read -r verify out; do
        printf '  %-20s %10.2f %10.2f\n' "$verify" "$out" "$(calc "$out / ($bytes / 1e9)")"
    done <"$RUN/cutover.tsv"
}

# ---------------------------------------------------------------- the workloads

. "$(dirname "${BASH_SOURCE[0]}")/migrate-scale.sh"   # jobs10, tables1000, memory
for w in "${WORKLOADS[@]}"; do
    case $w in
        dump|cdc|cutover|jobs10|tables1000|memory) ;;
        *) log "unknown workload $w (dump, cdc, cutover, jobs10, tables1000, memory)"; exit 1 ;;
    esac
done
for w in dump cdc cutover jobs10 tables1000 memory; do
    if wl "$w"; then "workload_$w"; fi
done
