#!/usr/bin/awk -f
# bench/report.awk: medians of the benchmark's results and their ratios, against the targets.
# Input lines: workload <TAB> contender <TAB> value.

function median(key,    n, i, j, t, v) {
    n = count[key]
    for (i = 1; i <= n; i++) v[i] = values[key, i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function has(key) { return count[key] > 0 }
function row(what, value, unit) { printf "  %-44s %14.1f %s\n", what, value, unit }
function ratio(what, value, target, better,    ok) {
    ok = better == ">=" ? value >= target : value <= target
    printf "  %-44s %8.2f x   target %s %.2f   %s\n", what, value, better, target, ok ? "met" : "MISSED"
}

BEGIN { FS = "\t" }
{ key = $1 SUBSEP $2; count[key]++; values[key, count[key]] = $3 }
END {
    print ""
    print "Medians (contenders interleaved in each round)"
    split("durable bulk cpu_us instructions", ws, " ")
    split("transitions/s transitions/s us/transition instructions/transition", us, " ")
    for (i = 1; i <= 4; i++)
        for (c = 1; c <= 3; c++) {
            split("floor dms_lifecycle plpgsql", cs, " ")
            k = ws[i] SUBSEP cs[c]
            if (has(k)) row(ws[i] ", " cs[c], median(k), us[i])
        }
    if (has("scale_small" SUBSEP "dms_lifecycle")) {
        row("durable cycle, 10,000 jobs, floor", median("scale_small" SUBSEP "floor"), "transitions/s")
        row("durable cycle, 1,000,000 jobs, floor", median("scale_large" SUBSEP "floor"), "transitions/s")
        row("durable cycle, 10,000 jobs", median("scale_small" SUBSEP "dms_lifecycle"), "transitions/s")
        row("durable cycle, 1,000,000 jobs", median("scale_large" SUBSEP "dms_lifecycle"), "transitions/s")
        row("dms_job_overview, 1,000,000 jobs", median("overview_s" SUBSEP "dms_lifecycle"), "s")
        row("plain SELECT of the same columns", median("select_s" SUBSEP "dms_lifecycle"), "s")
    }
    print ""
    print "Ratios"
    d = "durable" SUBSEP; b = "bulk" SUBSEP; p = "cpu_us" SUBSEP; n = "instructions" SUBSEP
    if (has(d "floor") && has(d "dms_lifecycle"))
        ratio("durable cycle: dms_lifecycle / floor", median(d "dms_lifecycle") / median(d "floor"), 0.90, ">=")
    if (has(b "floor") && has(b "dms_lifecycle"))
        ratio("bulk: dms_lifecycle / floor", median(b "dms_lifecycle") / median(b "floor"), 0.5, ">=")
    if (has(b "plpgsql"))
        ratio("bulk: dms_lifecycle / PL/pgSQL", median(b "dms_lifecycle") / median(b "plpgsql"), 2.5, ">=")
    if (has(p "plpgsql"))
        ratio("CPU time per transition: dms_lifecycle / PL/pgSQL", median(p "dms_lifecycle") / median(p "plpgsql"), 0.5, "<=")
    if (has(n "plpgsql"))
        ratio("instructions per transition: dms_lifecycle / PL/pgSQL", median(n "dms_lifecycle") / median(n "plpgsql"), 0.5, "<=")
    if (has("scale_small" SUBSEP "dms_lifecycle")) {
        ratio("scale: 1,000,000 jobs / 10,000 jobs", median("scale_large" SUBSEP "dms_lifecycle") / median("scale_small" SUBSEP "dms_lifecycle"), 0.9, ">=")
        printf "  %-44s %8.2f x   (the same writes without checks)\n", "scale, floor: 1,000,000 jobs / 10,000 jobs", median("scale_large" SUBSEP "floor") / median("scale_small" SUBSEP "floor")
    }
    if (has("overview_s" SUBSEP "dms_lifecycle"))
        ratio("inspection: overview / plain SELECT", median("overview_s" SUBSEP "dms_lifecycle") / median("select_s" SUBSEP "dms_lifecycle"), 2.0, "<=")
}
