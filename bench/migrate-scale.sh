# bench/migrate-scale.sh: the migration benchmark's workloads at scale (issue 9, "Scale"),
# sourced by bench/migrate.sh, whose clusters, settings and helpers they use (src_psql,
# dst_psql, log, now, calc, fresh, quiet, the contenders, wait_job, continuous_job,
# after_promotion, percentiles).  Each workload makes its own source databases and drops them.
#
#   jobs10      10 source databases (pgbench scale 2) under a light load (pgbench -c 1 -R 10 on
#               each); 10 continuous jobs, one database each, created and started together:
#               the time until all are Running (CDC) with every database streaming, and until
#               every subscription's apply worker runs (PostgreSQL 15's launcher starts them at
#               most once every wal_retrieve_retry_interval, 5 s); their lag (dms_job_progress)
#               for JOBS10_SECONDS (default 30) from then on; all promoted together and
#               the time until all are Completed; every copy checked against its source, and
#               nothing left (no slot or publication on the source, no subscription here).
#   tables1000  a database of TABLES (default 1000) small tables (a primary key, a secondary
#               index, 5 to 14 rows; every fifth with a bigserial): copied by pg_dump/pg_restore,
#               pgcopydb and a one-time job, each copy checked, with the job's phases; then a
#               continuous job into CDC, changes on a tenth of the tables applied and checked,
#               promoted and checked.
#   memory      a continuous job in CDC for MEMORY_SECONDS (default 600) under pgbench -c 2 on
#               its source (scale SCALE): at every tenth of the run, RssAnon of the engine's
#               processes here (the job worker, the manager, the subscription's apply worker)
#               and the memory contexts of the job worker and the manager
#               (pg_log_backend_memory_contexts, the "Grand total" line of the server log);
#               fails, as scripts/memory-check does, when from the 10% point to the end the
#               job worker's RssAnon or contexts grow by more than 10% or 2 MiB, whichever is
#               larger.

JOBS10_SECONDS=${JOBS10_SECONDS:-30}
TABLES=${TABLES:-1000}
MEMORY_SECONDS=${MEMORY_SECONDS:-600}

# ---------------------------------------------------------------- shared by the three

# check_sql_of DB: the dump's check for the source's database DB, as one query: per table of
# public its rows and a checksum (the sum of the first 64 bits of each row's md5), the number
# of indexes and constraints, the sequences' values.
check_sql_of() {
    src_psql -d "$1" -At -c "
SELECT string_agg(format('SELECT %L AS what, count(*)::text || '' '' || coalesce(sum((''x'' || left(md5(r::text), 16))::bit(64)::bigint::numeric), 0) AS value FROM %I.%I r',
                         'table ' || c.relname, n.nspname, c.relname), E'\nUNION ALL ' ORDER BY c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname = 'public'"
    echo "UNION ALL SELECT 'indexes', count(*)::text FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'constraints', count(*)::text FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'sequence ' || sequencename, last_value::text FROM pg_sequences WHERE schemaname = 'public'
ORDER BY 1"
}

# check_copy WHAT DB [no_sequences]: the destination's DB against the source's, now; a
# difference ends the run.  no_sequences: in CDC, which does not stream sequences (a
# promotion copies them).
check_copy() {
    local what=$1 db=$2 skip='^$'
    [ "${3:-}" = no_sequences ] && skip='^sequence '
    check_sql_of "$db" >"$RUN/check-$db.sql"
    src_psql -d "$db" -At -f "$RUN/check-$db.sql" | { grep -v "$skip" || true; } >"$RUN/check-$db.source"
    dst_psql -d "$db" -At -f "$RUN/check-$db.sql" | { grep -v "$skip" || true; } >"$RUN/check-$db.copy"
    if ! diff "$RUN/check-$db.source" "$RUN/check-$db.copy" >"$RUN/check-$db.diff"; then
        log "$what: the copy of $db differs from the source (< source, > copy):"
        head -n 20 "$RUN/check-$db.diff" >&2
        exit 1
    fi
}

# nothing_left DB...: after promotions, no replication slot on the source, no publication in
# its databases DB..., no subscription on the destination; anything left ends the run.
nothing_left() {
    local db n
    n=$(src_psql -d postgres -At -c "SELECT count(*) FROM pg_replication_slots")
    [ "$n" = 0 ] || { log "$n replication slots left on the source"; exit 1; }
    for db in "$@"; do
        n=$(src_psql -d "$db" -At -c "SELECT count(*) FROM pg_publication")
        [ "$n" = 0 ] || { log "$n publications left in the source's $db"; exit 1; }
    done
    n=$(dst_psql -d postgres -At -c "SELECT count(*) FROM pg_subscription")
    [ "$n" = 0 ] || { log "$n subscriptions left on the destination"; exit 1; }
}

# spans JOBS FROM TO: for each job of JOBS (ids, comma separated), the seconds from its
# history's last FROM row to its last TO row, one a line
spans() {
    dst_psql -d postgres -At -c "
SELECT extract(epoch FROM max(occurred_at) FILTER (WHERE cause = '$3') - max(occurred_at) FILTER (WHERE cause = '$2'))
  FROM dms_job_history WHERE job_id IN ($1) GROUP BY job_id ORDER BY job_id"
}

# span_all JOBS FROM TO: the seconds from the first FROM row of the jobs to their last TO row
span_all() {
    dst_psql -d postgres -At -c "
SELECT extract(epoch FROM max(occurred_at) FILTER (WHERE cause = '$3') - min(occurred_at) FILTER (WHERE cause = '$2'))
  FROM dms_job_history WHERE job_id IN ($1)"
}

# spread: of the numbers on stdin, "min median max" (seconds, 2 decimals)
spread() {
    sort -g | awk '{ v[++n] = $1 } END {
        if (!n) { print "- - -"; exit }
        printf "%.2f %.2f %.2f\n", v[1], n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2, v[n] }'
}

# wait_until T: sleeps until the epoch T (seconds, fractional), if it is still ahead
wait_until() {
    local left
    left=$(calc "$1 - $(now)")
    if awk "BEGIN { exit !($left > 0) }"; then sleep "$left"; fi
}

# ---------------------------------------------------------------- 10 jobs at once

workload_jobs10() {
    local n=10 i db dbs=() ids=() pids=() list texts pid bytes t0 all applied
    for i in $(seq -w 1 "$n"); do dbs+=("jobs10_$i"); done
    log "jobs10: $n source databases at pgbench scale 2, pgbench -c 1 -R 10 on each, $n continuous jobs started together"
    for db in "${dbs[@]}"; do
        src_psql -d postgres -c "CREATE DATABASE $db"
        "$BIN/pgbench" -i -q -s 2 -p "$SRC_PORT" "$db" >"$RUN/pgbench-init-$db.log" 2>&1 ||
            { cat "$RUN/pgbench-init-$db.log"; exit 1; }
        src_psql -d "$db" -c "VACUUM ANALYZE"
    done
    bytes=$(src_psql -d postgres -At -c "SELECT sum(pg_database_size(datname)) FROM pg_database WHERE datname LIKE 'jobs10\_%'")
    src_psql -d postgres -c CHECKPOINT
    dst_psql -d postgres -c CHECKPOINT
    # the load, until the promotion's fence ends its sessions (or the run ends)
    for db in "${dbs[@]}"; do
        "$BIN/pgbench" -n -c 1 -R 10 -T 3600 -p "$SRC_PORT" "$db" >"$RUN/pgbench-$db.log" 2>&1 &
        pids+=($!)
    done
    sleep 2
    mapfile -t ids < <(dst_psql -d postgres -At -c "
        SELECT dms_create_job('bench_' || d, 'continuous', ARRAY[d], 'optimal', source_server => 'src')
          FROM unnest(ARRAY[$(printf "'%s'," "${dbs[@]}" | sed 's/,$//')]) d ORDER BY d")
    list=$(IFS=,; echo "${ids[*]}")           # the ids, as numbers and as text
    texts="'${list//,/\',\'}'"
    # started in one statement, one transaction
    t0=$(now)
    dst_psql -d postgres -At -c "SELECT dms_start(id) FROM dms_job WHERE id IN ($list) ORDER BY id" >/dev/null
    for i in "${ids[@]}"; do wait_job "$i" running cdc; done
    log "  all $n Running (CDC), every database streaming, $(calc "$(now) - $t0") s after dms_start (as polled)"
    # the apply workers, which PostgreSQL's logical replication launcher starts
    dst_psql -d postgres -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '5 min'; BEGIN
        WHILE (SELECT count(*) FROM pg_stat_subscription WHERE pid IS NOT NULL AND relid IS NULL
                  AND split_part(subname, '_', 2) IN ($texts)) < $n LOOP
            IF clock_timestamp() > deadline THEN RAISE 'the apply workers did not all start in 5 minutes'; END IF;
            PERFORM pg_sleep(0.02);
        END LOOP; END \$\$"
    dst_psql -d postgres -At -c "
        SELECT extract(epoch FROM a.backend_start - h.at)
          FROM pg_stat_subscription s JOIN pg_stat_activity a ON a.pid = s.pid
          JOIN (SELECT job_id, max(occurred_at) AS at FROM dms_job_history WHERE cause = 'dump_completed' GROUP BY job_id) h
            ON h.job_id::text = split_part(s.subname, '_', 2)
         WHERE s.relid IS NULL AND h.job_id IN ($list)" >"$RUN/jobs10-apply"
    applied=$(dst_psql -d postgres -At -c "
        SELECT extract(epoch FROM max(a.backend_start) - (SELECT min(occurred_at) FROM dms_job_history WHERE cause = 'start' AND job_id IN ($list)))
          FROM pg_stat_subscription s JOIN pg_stat_activity a ON a.pid = s.pid
         WHERE s.relid IS NULL AND split_part(s.subname, '_', 2) IN ($texts)")

    # the lag, as dms_job_progress shows it, every 100 ms
    dst_psql -d postgres -c "SET client_min_messages = notice" -c "DO \$\$ DECLARE
        until timestamptz := clock_timestamp() + interval '$JOBS10_SECONDS s';
        r record;
    BEGIN
        WHILE clock_timestamp() < until LOOP
            FOR r IN SELECT job_id, lag_bytes, extract(epoch FROM lag) AS lag FROM dms_job_progress
                      WHERE job_id IN ($list) LOOP
                RAISE NOTICE 'progress % % % %', r.job_id, coalesce(r.lag_bytes::text, '-'), coalesce(r.lag::text, '-'),
                    extract(epoch FROM clock_timestamp());
            END LOOP;
            PERFORM pg_sleep(0.1);
        END LOOP;
    END \$\$" 2>&1 | awk '$2 == "progress" { print $3, $4, $5, $6 }' >"$RUN/jobs10-progress"

    dst_psql -d postgres -At -c "SELECT dms_promote(id) FROM dms_job WHERE id IN ($list) ORDER BY id" >/dev/null
    for i in "${ids[@]}"; do wait_job "$i" completed; done
    log "  all $n Completed"
    # the fence ended the load's sessions; a pgbench still there is stopped
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" || true
    done
    for db in "${dbs[@]}"; do check_copy jobs10 "$db"; done
    nothing_left "${dbs[@]}"
    log "  every copy equals its source; no slot, publication or subscription left"
    for i in $(seq 0 $((n - 1))); do after_promotion "${ids[$i]}" "${dbs[$i]}"; done
    for db in "${dbs[@]}"; do src_psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"; done

    local started running promoted lagb lags apply
    all=$(span_all "$list" start dump_completed)
    read -r -a running <<<"$(spans "$list" start dump_completed | spread)"
    read -r -a started <<<"$(spans "$list" start started | spread)"
    read -r -a apply <<<"$(spread <"$RUN/jobs10-apply")"
    read -r -a lagb <<<"$(awk '$2 != "-" { print $2 }' "$RUN/jobs10-progress" | percentiles)"
    read -r -a lags <<<"$(awk '$3 != "-" { print $3 }' "$RUN/jobs10-progress" | percentiles)"
    read -r -a promoted <<<"$(spans "$list" promote promoted | spread)"
    printf '\njobs10: %s continuous jobs, one database each (pgbench scale 2; %s GB in all), pgbench -c 1 -R 10 on each source database\n\n' \
        "$n" "$(calc "$bytes / 1e9")"
    printf '  %-66s %8s\n' "started together (one dms_start statement) to all Running (CDC), s" "$(calc "$all")"
    printf '  %-66s %8s %8s %8s\n' "per job, s" "min" "median" "max"
    printf '  %-66s %8s %8s %8s\n' "  dms_start to Running (CDC), every database streaming" "${running[@]}"
    printf '  %-66s %8s %8s %8s\n' "  of which Starting... (to the started event)" "${started[@]}"
    printf '  %-66s %8s %8s %8s\n' "Running (CDC) to the start of its subscription's apply worker" "${apply[@]}"
    printf '  %-66s %8s\n' "started together to the last apply worker's start, s" "$(calc "$applied")"
    printf '\n  %-66s %8s %10s %10s %10s\n' "lag for $JOBS10_SECONDS s, all jobs, read every 100 ms" "samples" "median" "p99" "max"
    printf '  %-66s %8s %10.0f %10.0f %10.0f\n' "dms_job_progress.lag_bytes, bytes" "${lagb[@]}"
    printf '  %-66s %8s %10s %10s %10s\n' "dms_job_progress.lag, s" "${lags[@]}"
    printf '\n  %-66s %8s\n' "promoted together (one dms_promote statement) to all Completed, s" "$(calc "$(span_all "$list" promote promoted)")"
    printf '  %-66s %8s %8s %8s\n' "per job, dms_promote to Completed, s (min, median, max)" "${promoted[@]}"
    printf '  every copy equal to its source (rows and checksums per table, indexes, constraints); nothing left\n'
}

# ---------------------------------------------------------------- 1000 tables

workload_tables1000() {
    local db=t1000 c seconds job bytes t0 t1 t2 sample
    log "tables1000: a database of $TABLES small tables"
    src_psql -d postgres -c "CREATE DATABASE $db"
    # in transactions of 100 tables: one of them all would hold some 6,000 locks
    src_psql -d "$db" -c "DO \$\$ DECLARE t text; BEGIN
        FOR i IN 1..$TABLES LOOP
            t := 't' || lpad(i::text, 4, '0');
            EXECUTE format('CREATE TABLE %I (id %s PRIMARY KEY, k int NOT NULL, v text)', t,
                           CASE WHEN i % 5 = 0 THEN 'bigserial' ELSE 'int' END);
            EXECUTE format('CREATE INDEX ON %I (k)', t);
            IF i % 5 = 0 THEN
                EXECUTE format('INSERT INTO %I (k, v) SELECT (g * 7) %% 13, md5(g::text) FROM generate_series(1, %s) g', t, 5 + i % 10);
            ELSE
                EXECUTE format('INSERT INTO %I (id, k, v) SELECT g, (g * 7) %% 13, md5(g::text) FROM generate_series(1, %s) g', t, 5 + i % 10);
            END IF;
            IF i % 100 = 0 THEN COMMIT; END IF;
        END LOOP;
    END \$\$" -c "VACUUM ANALYZE" -c CHECKPOINT
    bytes=$(src_psql -d "$db" -At -c "SELECT pg_database_size(current_database())")
    log "  $(src_psql -d "$db" -At -c "SELECT count(*) FILTER (WHERE relkind = 'r') || ' tables, ' || count(*) FILTER (WHERE relkind = 'i') || ' indexes, ' || count(*) FILTER (WHERE relkind = 'S') || ' sequences'
                                        FROM pg_class WHERE relnamespace = 'public'::regnamespace"), $(calc "$bytes / 1e6") MB"

    # the one-time copies, each into an empty database, checked
    : >"$RUN/t1000-times"
    : >"$RUN/t1000-phases.tsv"
    : >"$RUN/t1000-cpu.tsv"
    : >"$RUN/t1000-worker.tsv"
    for c in dump_restore pgcopydb engine_optimal; do
        DB=$db fresh
        quiet
        case $c in
            engine_*) seconds=$(DB=$db PHASES=$RUN/t1000-phases.tsv WORKER=$RUN/t1000-worker.tsv contender_engine "${c#engine_}" t1000) ;;
            *) seconds=$(DB=$db PHASES=$RUN/t1000-phases.tsv "contender_$c" t1000) ;;
        esac
        CPU=$RUN/t1000-cpu.tsv cpu_record "$c" t1000
        check_copy "$c" "$db"
        log "  $(label "$c"): $seconds s, checked"
        printf '%s\t%s\n' "$c" "$seconds" >>"$RUN/t1000-times"
    done
    dst_psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"

    # a continuous job: into CDC, changes on a sample of the tables, promoted
    job=$(continuous_job bench_t1000 "$db")
    log "  continuous job $job in CDC, $(calc "$(span_all "$job" start dump_completed)") s after dms_start"
    sample=$(src_psql -d "$db" -At -c "SELECT count(*) FROM generate_series(1, $TABLES) i WHERE i % 20 IN (3, 10)")
    t0=$(now)
    src_psql -d "$db" -c "DO \$\$ DECLARE t text; BEGIN
        FOR i IN 1..$TABLES LOOP
            CONTINUE WHEN i % 20 NOT IN (3, 10);
            t := 't' || lpad(i::text, 4, '0');
            IF i % 5 = 0 THEN
                EXECUTE format('INSERT INTO %I (k, v) VALUES (1, ''inserted'')', t);
            ELSE
                EXECUTE format('INSERT INTO %I (id, k, v) VALUES (1000, 1, ''inserted'')', t);
            END IF;
            EXECUTE format('UPDATE %I SET k = k + 100, v = ''updated'' WHERE id = 2', t);
            EXECUTE format('DELETE FROM %I WHERE id = 1', t);
            COMMIT;
        END LOOP;
        INSERT INTO t0001 (id, k, v) VALUES (999999, 0, 'the last change');
    END \$\$"
    t1=$(now)
    # one subscription applies in commit order: the last change there means all of them are
    dst_psql -d "$db" -c "DO \$\$ DECLARE deadline timestamptz := clock_timestamp() + interval '10 min'; BEGIN
        WHILE NOT EXISTS (SELECT FROM t0001 WHERE id = 999999) LOOP
            IF clock_timestamp() > deadline THEN RAISE 'the changes did not arrive in 10 minutes'; END IF;
            PERFORM pg_sleep(0.01);
        END LOOP; END \$\$"
    t2=$(now)
    check_copy "CDC" "$db" no_sequences
    log "  changes on $sample tables applied $(calc "$t2 - $t1") s after the last commit, checked"
    dst_psql -d postgres -At -c "SELECT dms_promote($job)" >/dev/null
    wait_job "$job" completed
    check_copy promoted "$db"
    nothing_left "$db"
    log "  promoted in $(calc "$(span_all "$job" promote promoted)") s, checked, nothing left"

    printf '\ntables1000: a database of %s tables (a primary key, a secondary index, 5 to 14 rows each, every fifth with a bigserial), %s MB\n\n' \
        "$TABLES" "$(calc "$bytes / 1e6")"
    printf '  %-52s %8s   %s\n' "one-time copy, checked" "s" "processor s: source + destination + clients"
    while IFS=$'\t' read -r c seconds; do
        printf '  %-52s %8.2f   %s\n' "$(label "$c")" "$seconds" \
            "$(awk -F'\t' -v c="$c" '$1 == c { printf "%.2f + %.2f + %.2f", $3, $4, $5 }' "$RUN/t1000-cpu.tsv")"
    done <"$RUN/t1000-times"
    printf '\n  where the engine'"'"'s time goes (one-time job, optimal), s\n'
    awk -F'\t' '$1 == "engine_optimal" { printf "    %-50s %8.2f\n", $3, $4 }' "$RUN/t1000-phases.tsv"
    awk -F'\t' '{ printf "    %-50s %8.2f\n    %-50s %8.2f\n", "processor: the job worker itself", $3, "processor: its pg_dump and pg_restore", $4 }' "$RUN/t1000-worker.tsv"
    printf '\n  continuous job, s\n'
    printf '    %-50s %8.2f\n' "dms_start to Running (CDC), streaming" "$(span_all "$job" start dump_completed)"
    printf '    %-50s %8.2f\n' "  of which Starting... (to the started event)" "$(span_all "$job" start started)"
    printf '    %-50s %8.2f\n' "changes on $sample tables: the first to all applied" "$(calc "$t2 - $t0")"
    printf '    %-50s %8.2f\n' "  the last commit to all applied" "$(calc "$t2 - $t1")"
    printf '    %s\n' "  (an insert, an update and a delete a table, a transaction each)"
    printf '    %-50s %8.2f\n' "dms_promote to Completed (verify = count)" "$(span_all "$job" promote promoted)"
    printf '  every copy equal to the source (rows and checksums per table, indexes, constraints, sequences); nothing left\n'
    after_promotion "$job" "$db"
    src_psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"
}

# ---------------------------------------------------------------- memory in a long CDC

# rss_anon PID: RssAnon of a process, kB ("-" if it is gone)
rss_anon() { awk '/^RssAnon:/ { print $2; found = 1 } END { if (!found) print "-" }' "/proc/$1/status" 2>/dev/null || echo -; }

# contexts PID: the total and used bytes of a destination process's memory contexts, which
# pg_log_backend_memory_contexts makes it write to the server log ("Grand total: ..."),
# read from the log after its present end; "- -" if none came within 10 s
contexts() {
    local pid=$1 from line
    from=$(stat -c %s "$RUN/destination.log")
    dst_psql -d postgres -At -c "SELECT pg_log_backend_memory_contexts($pid)" >/dev/null
    for _ in $(seq 100); do
        line=$(tail -c +"$((from + 1))" "$RUN/destination.log" | grep -m 1 "\[$pid\] LOG:  Grand total: " || true)
        if [ -n "$line" ]; then
            sed -E 's/.*Grand total: ([0-9]+) bytes in .* ([0-9]+) used.*/\1 \2/' <<<"$line"
            return
        fi
        sleep 0.1
    done
    echo "- -"
}

# engine_pids JOB: the pids of its job worker, the manager, its subscription's apply worker
engine_pids() {
    dst_psql -d postgres -At -F ' ' -c "
SELECT (SELECT pid FROM pg_stat_activity WHERE application_name = 'dms_lifecycle job $1'),
       (SELECT pid FROM pg_stat_activity WHERE application_name = 'dms_lifecycle manager'),
       (SELECT pid FROM pg_stat_subscription WHERE subname LIKE 'dms\\_$1\\_%' AND relid IS NULL)"
}

# memory_verdict SAMPLES: the growth of each figure of the samples (lines of: point, seconds,
# then the job worker's RssAnon kB, contexts total and used bytes, the manager's the same,
# the apply worker's RssAnon kB) from the first to the last; the job worker's RssAnon and
# contexts are judged.  Its last line is the verdict: ok or FAIL.
memory_verdict() {
    awk '
        function judge(what, a, b, judged,   growth, allowed, bad) {
            if (a == "-" || b == "-") { printf "  %-28s not measured\n", what; return judged }
            growth = b - a
            allowed = a * 0.10; if (allowed < 2 * 1048576) allowed = 2 * 1048576
            bad = (judged && growth > allowed)
            printf "  %-28s %8.2f MiB -> %8.2f MiB: %+8.3f MiB (%+6.2f%%)%s\n", what, a / 1048576, b / 1048576,
                   growth / 1048576, (a > 0 ? 100 * growth / a : 0),
                   (judged ? sprintf(", allowed %.2f MiB: %s", allowed / 1048576, bad ? "TOO MUCH" : "ok") : " (not judged)")
            return bad
        }
        function k(v) { return v == "-" ? "-" : v * 1024 }
        NR == 1 { for (i = 3; i <= 9; i++) a[i] = $i }
        { for (i = 3; i <= 9; i++) b[i] = $i; n = NR }
        END {
            bad = judge("job worker, RssAnon", k(a[3]), k(b[3]), 1)
            bad += judge("job worker, contexts", a[4], b[4], 1)
            judge("job worker, contexts used", a[5], b[5], 0)
            judge("manager, RssAnon", k(a[6]), k(b[6]), 0)
            judge("manager, contexts", a[7], b[7], 0)
            judge("manager, contexts used", a[8], b[8], 0)
            judge("apply worker, RssAnon", k(a[9]), k(b[9]), 0)
            if (n != 10) printf "  only %d samples of 10\n", n
            print ((n == 10 && bad == 0) ? "ok" : "FAIL")
        }' "$1"
}

workload_memory() {
    local db=memory job t0 k pids p first load tps verdict
    if ! [[ $MEMORY_SECONDS =~ ^[1-9][0-9]*$ ]] || [ "$MEMORY_SECONDS" -lt 10 ]; then
        log "MEMORY_SECONDS must be a whole number of at least 10, not '$MEMORY_SECONDS'"
        exit 1
    fi
    log "memory: a continuous job in CDC for $MEMORY_SECONDS s under pgbench -c 2 (scale $SCALE), sampled every $((MEMORY_SECONDS / 10)) s"
    src_psql -d postgres -c "CREATE DATABASE $db"
    "$BIN/pgbench" -i -q -s "$SCALE" -p "$SRC_PORT" "$db" >"$RUN/pgbench-init-$db.log" 2>&1 ||
        { cat "$RUN/pgbench-init-$db.log"; exit 1; }
    src_psql -d "$db" -c "VACUUM ANALYZE" -c CHECKPOINT
    job=$(continuous_job bench_memory "$db")
    first=$(engine_pids "$job")
    log "  job $job in CDC; job worker, manager, apply worker: $first"
    "$BIN/pgbench" -n -c 2 -T "$MEMORY_SECONDS" -p "$SRC_PORT" "$db" >"$RUN/pgbench-$db.log" 2>&1 &
    load=$!
    t0=$(now)
    : >"$RUN/memory.samples"
    for k in $(seq 10); do
        wait_until "$(calc "$t0 + $MEMORY_SECONDS * $k / 10")"
        pids=$(engine_pids "$job")
        [ "$pids" = "$first" ] || { log "the engine's processes changed (pids $first, now $pids): see $RUN/destination.log"; tail -n 20 "$RUN/destination.log" >&2; exit 1; }
        read -r -a p <<<"$pids"
        # point, seconds, then per process RssAnon kB (and contexts total, used bytes)
        echo "$((k * 10)) $(calc "$(now) - $t0") $(rss_anon "${p[0]}") $(contexts "${p[0]}") $(rss_anon "${p[1]}") $(contexts "${p[1]}") $(rss_anon "${p[2]}")" \
            >>"$RUN/memory.samples"
        log "  $((k * 10))%: $(tail -n 1 "$RUN/memory.samples")"
    done
    wait "$load" || { cat "$RUN/pgbench-$db.log" >&2; exit 1; }
    tps=$(awk '/^tps = / { printf "%.1f", $3 }' "$RUN/pgbench-$db.log")
    dst_psql -d postgres -At -c "SELECT dms_promote($job)" >/dev/null
    wait_job "$job" completed
    check_copy memory "$db"
    nothing_left "$db"
    after_promotion "$job" "$db"
    src_psql -d postgres -c "DROP DATABASE $db WITH (FORCE)"

    printf '\nmemory: a continuous job in CDC for %s s under pgbench -c 2 on its source (scale %s, %s tps); then promoted, checked, nothing left\n\n' \
        "$MEMORY_SECONDS" "$SCALE" "$tps"
    printf '  the job worker (pid %s), the manager (pid %s), the subscription'"'"'s apply worker (pid %s): RssAnon (/proc/PID/status), memory contexts (total, used)\n\n' \
        "${p[0]}" "${p[1]}" "${p[2]}"
    awk '
        function mib(v) { return v == "-" ? "-" : sprintf("%.3f", v / 1048576) }
        function kib(v) { return v == "-" ? "-" : sprintf("%.3f", v / 1024) }
        BEGIN {
            printf "  %5s %7s | %-29s | %-29s | %s\n", "", "", "job worker, MiB", "manager, MiB", "apply worker, MiB"
            printf "  %5s %7s | %9s %9s %9s | %9s %9s %9s | %9s\n", "point", "s", "RssAnon", "contexts", "used", "RssAnon", "contexts", "used", "RssAnon"
        }
        { printf "  %4d%% %7.0f | %9s %9s %9s | %9s %9s %9s | %9s\n", $1, $2, kib($3), mib($4), mib($5), kib($6), mib($7), mib($8), kib($9) }
    ' "$RUN/memory.samples"
    printf '\n  growth from the 10%% point to the end (judged: the job worker, by more than 10%% or 2 MiB, whichever is larger, is too much)\n'
    verdict=$(memory_verdict "$RUN/memory.samples")
    sed '$d' <<<"$verdict"
    if [ "$(tail -n 1 <<<"$verdict")" != ok ]; then
        log "memory: FAILED: the job worker grew by more than 10% or 2 MiB from the 10% point to the end of the CDC run (or a sample is missing); samples in $RUN/memory.samples"
        exit 1
    fi
    printf '  the job worker did not grow beyond the allowance\n'
}
