#!/usr/bin/env bash
# bench/workloads.sh: the benchmark proper, run as the postgres user by bench/run.
# Starts its own cluster in $WORK/data, runs every workload for the three contenders
# interleaved round by round, and prints medians and ratios.
set -euo pipefail

WORK=$1
BENCH=$WORK/bench
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}         # seconds per pgbench run
CYCLE_JOBS=${CYCLE_JOBS:-10000}
BULK_JOBS=${BULK_JOBS:-100000}
CPU_JOBS=${CPU_JOBS:-25000}      # x 4 transitions in one transaction
SCALE_JOBS=${SCALE_JOBS:-1000000}
SCALE_HISTORY=${SCALE_HISTORY:-10000000}
CALLGRIND_JOBS=${CALLGRIND_JOBS:-500}
read -r -a CONTENDERS <<<"${CONTENDERS:-floor dms_lifecycle plpgsql}"

BIN=$(pg_config --bindir)
export PGDATA=$WORK/data PGHOST=$WORK PGPORT=${PGPORT:-5477} PGUSER=postgres PGDATABASE=postgres
RESULTS=$WORK/results.tsv
: >"$RESULTS"

log() { printf '%s  %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
psql_q() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }   # workload, contender, value

server_start() { "$BIN/pg_ctl" -w -l "$WORK/server.log" -o "-p $PGPORT -k $WORK" start >/dev/null; }
server_stop() { "$BIN/pg_ctl" -w -m fast stop >/dev/null 2>&1 || true; }
trap server_stop EXIT

"$BIN/initdb" -A trust -U postgres "$PGDATA" >/dev/null
cat >>"$PGDATA/postgresql.conf" <<EOF
shared_buffers = 1GB
max_wal_size = 8GB
checkpoint_timeout = 30min
listen_addresses = ''
EOF
server_start

# ---------------------------------------------------------------- contenders

# The edges the workloads take: cause, from status, from phase, to status, to phase.
edge() {
    case $1 in
        start)          echo "start not_started NULL starting NULL" ;;
        started)        echo "started starting NULL running full_dump" ;;
        dump_completed) echo "dump_completed running full_dump running cdc" ;;
        stop)           echo "stop running cdc stopping cdc" ;;
        stopped)        echo "stopped stopping cdc stopped cdc" ;;
        resume)         echo "resume stopped cdc resuming cdc" ;;
        resumed)        echo "resumed resuming cdc running cdc" ;;
    esac
}

sql_literal() { if [ "$1" = NULL ]; then echo "NULL::$2"; else echo "'$1'::$2"; fi; }
json_literal() { if [ "$1" = NULL ]; then echo "null"; else echo "\"$1\""; fi; }

# floor_statement STEP WHERE [INTO]: the floor's one statement for a transition of the
# jobs WHERE selects: UPDATE, history INSERT and notification, nothing checked.
floor_statement() {
    local cause fs fp ts tp
    read -r cause fs fp ts tp <<<"$(edge "$1")"
    local payload="'{\"job_id\":' || job_id || ',\"name\":' || to_json(job_name)::text || ',\"cause\":\"$cause\",\"from_status\":$(json_literal "$fs"),\"from_phase\":$(json_literal "$fp"),\"to_status\":$(json_literal "$ts"),\"to_phase\":$(json_literal "$tp"),\"actor\":' || to_json(current_user::text)::text || ',\"history_id\":' || id || '}'"
    echo "WITH moved AS (UPDATE dms_job SET status = $(sql_literal "$ts" dms_job_status), phase = $(sql_literal "$tp" dms_job_phase), updated_at = now(), status_changed_at = now() WHERE $2 RETURNING id, name), hist AS (INSERT INTO dms_job_history (job_id, job_name, cause, from_status, from_phase, to_status, to_phase, actor) SELECT id, name, '$cause', $(sql_literal "$fs" dms_job_status), $(sql_literal "$fp" dms_job_phase), $(sql_literal "$ts" dms_job_status), $(sql_literal "$tp" dms_job_phase), current_user FROM moved RETURNING id, job_id, job_name) SELECT count(pg_notify('dms_lifecycle', $payload)) ${3:-} FROM hist"
}

# floor_create_statement N: the floor's creation of N jobs, with their history and notifications.
floor_create_statement() {
    echo "WITH made AS (INSERT INTO dms_job (name) SELECT 'job' || g FROM generate_series(1, $1) g RETURNING id, name), hist AS (INSERT INTO dms_job_history (job_id, job_name, cause, to_status, actor) SELECT id, name, 'create', 'not_started', current_user FROM made RETURNING id, job_id, job_name) SELECT count(pg_notify('dms_lifecycle', '{\"job_id\":' || job_id || ',\"name\":' || to_json(job_name)::text || ',\"cause\":\"create\",\"from_status\":null,\"from_phase\":null,\"to_status\":\"not_started\",\"to_phase\":null,\"actor\":' || to_json(current_user::text)::text || ',\"history_id\":' || id || '}')) FROM hist"
}

# The extension's (and its PL/pgSQL twin's) call for a transition of job ID.
call() {
    case $1 in
        start|stop|resume) echo "dms_$1($2)" ;;
        *)                 echo "dms_report($2, '$1')" ;;
    esac
}

# fresh_database CONTENDER: an empty database with the contender installed.
fresh_database() {
    local db=bench_$1
    psql_q -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
    case $1 in
        floor)         psql_q -d "$db" -f "$BENCH/floor.sql" ;;
        dms_lifecycle) psql_q -d "$db" -c "CREATE EXTENSION dms_lifecycle" ;;
        plpgsql)       psql_q -d "$db" -c "CREATE EXTENSION dms_lifecycle VERSION 'plpgsql'" ;;
    esac
    echo "$db"
}

# load_stopped DB JOBS HISTORY: JOBS jobs stopped in CDC and HISTORY history rows,
# loaded with triggers off (session_replication_role) so that every contender starts
# from the same rows.
load_stopped() {
    psql_q -d "$1" <<EOF
SET session_replication_role = replica;
INSERT INTO dms_job (name, status, phase, created_at, updated_at, status_changed_at)
SELECT 'job' || g, 'stopped', 'cdc', now(), now(), now() FROM generate_series(1, $2) g;
INSERT INTO dms_job_history (job_id, job_name, cause, from_status, to_status, actor)
SELECT g % $2 + 1, 'job' || (g % $2 + 1), 'stopped', 'stopping', 'stopped', 'bench'
  FROM generate_series(1, $3) g;
VACUUM ANALYZE;
CHECKPOINT;
EOF
}

# durable_cycle CONTENDER DB JOBS: pgbench, 2 clients, each moving random jobs of its own
# through resume, resumed, stop, stopped; one autocommit statement per transition.
durable_cycle() {
    local contender=$1 db=$2 jobs=$3 script=$WORK/cycle_$1.pgb
    {
        echo "\\set id :client_id * ($jobs / 2) + random(1, $jobs / 2)"
        for step in resume resumed stop stopped; do
            if [ "$contender" = floor ]; then echo "$(floor_statement "$step" "id = :id");"
            else echo "SELECT $(call "$step" :id);"; fi
        done
    } >"$script"
    # a short warm-up first: the first writes after a checkpoint log full pages
    "$BIN/pgbench" -n -M prepared -c 2 -j 2 -T 2 -f "$script" "$db" >/dev/null 2>&1
    "$BIN/pgbench" -n -M prepared -c 2 -j 2 -T "$DURATION" -f "$script" "$db" 2>&1 |
        awk '/^tps = / { print $3 * 4 }'     # transitions per second
}

# seconds STATEMENT...: wall time of psql running the statements, one transaction each.
seconds() {
    local db=$1 start end
    shift
    start=$(date +%s.%N)
    for statement in "$@"; do psql_q -d "$db" -c "$statement" >/dev/null; done
    end=$(date +%s.%N)
    calc "$end - $start"
}

# cycle_loop CONTENDER N: one DO block that takes jobs 1..N through the durable cycle.
cycle_loop() {
    local body=""
    for step in resume resumed stop stopped; do
        if [ "$1" = floor ]; then body+="$(floor_statement "$step" "id = i" "INTO sent"); "
        else body+="PERFORM $(call "$step" i); "; fi
    done
    echo "DO \$\$ DECLARE sent bigint; BEGIN FOR i IN 1..$2 LOOP $body END LOOP; END \$\$;"
}

# ---------------------------------------------------------------- workloads

workload_durable() {
    local round=$1
    for contender in "${CONTENDERS[@]}"; do
        local db
        db=$(fresh_database "$contender")
        load_stopped "$db" "$CYCLE_JOBS" 0
        local tps
        tps=$(durable_cycle "$contender" "$db" "$CYCLE_JOBS")
        log "durable cycle, round $round, $contender: $tps transitions/s"
        record durable "$contender" "$tps"
    done
}

workload_bulk() {
    local round=$1
    for contender in "${CONTENDERS[@]}"; do
        local db statements=() t
        db=$(fresh_database "$contender")
        if [ "$contender" = floor ]; then
            statements+=("$(floor_create_statement "$BULK_JOBS")")
            for step in start started dump_completed stop stopped; do
                statements+=("$(floor_statement "$step" true)")
            done
        else
            statements+=("SELECT count(dms_create_job('job' || g)) FROM generate_series(1, $BULK_JOBS) g")
            for step in start started dump_completed stop stopped; do
                statements+=("SELECT count($(call "$step" id)) FROM dms_job")
            done
        fi
        t=$(seconds "$db" "${statements[@]}")
        log "bulk, round $round, $contender: $t s"
        record bulk "$contender" "$(calc "6 * $BULK_JOBS / $t")"
    done
}

workload_cpu() {
    local round=$1
    for contender in "${CONTENDERS[@]}"; do
        local db t
        db=$(fresh_database "$contender")
        load_stopped "$db" "$CPU_JOBS" 0
        t=$(seconds "$db" "$(cycle_loop "$contender" "$CPU_JOBS")")
        log "CPU cost, round $round, $contender: $t s for $((CPU_JOBS * 4)) transitions"
        record cpu_us "$contender" "$(calc "$t * 1000000 / ($CPU_JOBS * 4)")"
    done
}

# Instructions per transition, counted by callgrind in a single-user backend: a run with
# CALLGRIND_JOBS x 4 transitions minus one with a fifth of them, so that start-up, the
# first plans and the caches cancel out.
workload_callgrind() {
    command -v valgrind >/dev/null || { log "valgrind not installed: no instruction counts"; return; }
    local dbs=()
    for contender in "${CONTENDERS[@]}"; do
        local db
        db=$(fresh_database "$contender")
        load_stopped "$db" "$CALLGRIND_JOBS" 0
        dbs+=("$db")
    done
    server_stop
    local i=0
    for contender in "${CONTENDERS[@]}"; do
        local db=${dbs[$i]} counts=()
        i=$((i + 1))
        for n in $((CALLGRIND_JOBS / 5)) "$CALLGRIND_JOBS"; do
            counts+=("$(cycle_loop "$contender" "$n" | tr '\n' ' ' | valgrind --tool=callgrind --callgrind-out-file=/dev/null \
                "$BIN/postgres" --single -D "$PGDATA" -j "$db" 2>&1 >/dev/null |
                awk '/Collected :/ { print $NF }')")
        done
        local per=$(( (counts[1] - counts[0]) / ((CALLGRIND_JOBS - CALLGRIND_JOBS / 5) * 4) ))
        log "instructions per transition, $contender: $per"
        record instructions "$contender" "$per"
    done
    server_start
}

# The durable cycle on SCALE_JOBS jobs and SCALE_HISTORY history rows against the same
# on CYCLE_JOBS jobs, for dms_lifecycle and for the floor (which writes the same rows:
# what both lose at scale is the cost of the writes, not of the checks); then the
# overview of all those jobs against a plain SELECT.
workload_scale() {
    local large=() small=()
    for contender in floor dms_lifecycle; do
        local db
        psql_q -c "DROP DATABASE IF EXISTS bench_${contender}_large"
        db=$(fresh_database "$contender")
        psql_q -c "ALTER DATABASE $db RENAME TO ${db}_large"
        log "loading $SCALE_JOBS jobs and $SCALE_HISTORY history rows for $contender"
        load_stopped "${db}_large" "$SCALE_JOBS" "$SCALE_HISTORY"
        large+=("${db}_large")
        db=$(fresh_database "$contender")
        load_stopped "$db" "$CYCLE_JOBS" 0
        small+=("$db")
    done
    for round in $(seq "$ROUNDS"); do
        local i=0
        for contender in floor dms_lifecycle; do
            local a b
            a=$(durable_cycle "$contender" "${small[$i]}" "$CYCLE_JOBS")
            b=$(durable_cycle "$contender" "${large[$i]}" "$SCALE_JOBS")
            log "scale, round $round, $contender: $CYCLE_JOBS jobs $a, $SCALE_JOBS jobs $b transitions/s"
            record scale_small "$contender" "$a"
            record scale_large "$contender" "$b"
            i=$((i + 1))
        done
    done
    local db=${large[1]}
    for round in $(seq "$ROUNDS"); do
        local o p
        o=$(seconds "$db" "COPY (SELECT * FROM dms_job_overview) TO '/dev/null'")
        p=$(seconds "$db" "COPY (SELECT id, name, migration_type, status, phase, error_message,
                                        dump_parallelism, pending_dump_parallelism,
                                        status_changed_at, updated_at FROM dms_job) TO '/dev/null'")
        log "inspection, round $round: overview $o s, plain SELECT $p s"
        record overview_s dms_lifecycle "$o"
        record select_s dms_lifecycle "$p"
    done
}

log "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}'), $(nproc) cores, rounds=$ROUNDS, duration=${DURATION}s"
WORKLOADS=" ${WORKLOADS:-durable bulk cpu callgrind scale} "
[ "${SKIP_SCALE:-}" = 1 ] && WORKLOADS=${WORKLOADS/ scale / }
for round in $(seq "$ROUNDS"); do
    for w in durable bulk cpu; do
        [[ $WORKLOADS == *" $w "* ]] && "workload_$w" "$round"
    done
done
[[ $WORKLOADS == *" callgrind "* ]] && workload_callgrind
[[ $WORKLOADS == *" scale "* ]] && workload_scale

"$BENCH/report.awk" "$RESULTS"
