#!/usr/bin/env bash
# Proxy benchmark: wrk against (a) the upstream directly, (b) the Mobius proxy at 100% stable,
# (c) the Mobius proxy at a 90/10 split, (d) nginx with the same 90/10 weighted upstream.
# Everything on loopback. See bench/README.md ("Proxy") for what the figures mean.
#
#   bench/proxy/run.sh                  # defaults: wrk -t2 -c32 -d10s, 1 proxy thread / 1 nginx worker
#   DURATION=30s CONNECTIONS=64 bench/proxy/run.sh
#   WORKERS="1 2" bench/proxy/run.sh    # (b)-(d) for each proxy-thread / nginx-worker count
#   ROUNDS=5 bench/proxy/run.sh         # rounds of (b)-(d), interleaved (default 3); medians reported
#   BASELINE=/tmp/old/proxy bench/proxy/run.sh   # also (e): another build of examples/proxy at 90/10,
#                                       # in the same rounds (e.g. the build before a change);
#                                       # odd rounds run b c d e, even rounds b e d c
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
WORKERS="${WORKERS:-1}"
ROUNDS="${ROUNDS:-3}"   # (b)-(d) are run this many times, interleaved; the median run is reported
BASELINE="${BASELINE:-}"  # optional: path to another proxy example binary, measured as (e)
UPSTREAM_A=127.0.0.1:9101
UPSTREAM_B=127.0.0.1:9102
PROXY=127.0.0.1:9180
NGINX=127.0.0.1:9190
WORK="$(mktemp -d /tmp/mobius-proxy-bench.XXXXXX)"
PIDS=()     # the upstreams
CURRENT=""  # the proxy or nginx under test

cleanup() {
    for pid in "${PIDS[@]}" $CURRENT; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

need() {
    command -v "$1" >/dev/null 2>&1 && return
    echo "installing $2" >&2
    if ! apt-get install -y "$2" >/dev/null 2>&1; then
        apt-get update >/dev/null && apt-get install -y "$2" >/dev/null
    fi
}
need wrk wrk
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need nginx nginx-light
NGINX_BIN="$(command -v nginx || echo /usr/sbin/nginx)"

echo "building the examples (release)" >&2
(cd "$ROOT" && cargo build --release -p mobius-proxy --examples >&2)
EXAMPLES="$ROOT/target/release/examples"

wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

# Prints "rps p50_ms p99_ms errors" for one wrk run against $1.
measure() {
    local out="$WORK/wrk.$2.txt"
    wrk -t1 -c4 -d1s "http://$1/" >/dev/null 2>&1 || true   # warm the pools
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://$1/" >"$out"
    awk '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
            return v + 0
        }
        /Requests\/sec/ { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { errors += $NF }
        /Socket errors/ { gsub(",", ""); errors += $4 + $6 + $8 + $10 }
        END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, errors }
    ' "$out"
}

rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
hwm_kb() { awk '/VmHWM/ { print $2 }' "/proc/$1/status"; }

"$EXAMPLES/upstream" "$UPSTREAM_A" 1 2>/dev/null & PIDS+=($!)
"$EXAMPLES/upstream" "$UPSTREAM_B" 1 2>/dev/null & PIDS+=($!)
wait_port "$UPSTREAM_A"; wait_port "$UPSTREAM_B"

declare -A R
R[a]="$(measure "$UPSTREAM_A" a)"

# A 90/10 proxy run: (c) this checkout's proxy, or (e) the baseline build. Args: case, threads, round.
split_case() {
    local bin="$EXAMPLES/proxy" pid
    [ "$1" = e ] && bin="$BASELINE"
    "$bin" --listen "$PROXY" --stable "$UPSTREAM_A" --canary "$UPSTREAM_B" --weight 10 --threads "$2" \
        2>"$WORK/proxy-$1.log" &
    pid=$!; CURRENT=$pid; wait_port "$PROXY"
    R[$1$2.$3]="$(measure "$PROXY" "$1$2.$3") $(rss_kb $pid) $(hwm_kb $pid)"
    kill -INT $pid; wait $pid 2>/dev/null || true; CURRENT=""
}

for round in $(seq 1 "$ROUNDS"); do
for w in $WORKERS; do
    "$EXAMPLES/proxy" --listen "$PROXY" --stable "$UPSTREAM_A" --threads "$w" 2>"$WORK/proxy-b.log" &
    pid=$!; CURRENT=$pid; wait_port "$PROXY"
    R[b$w.$round]="$(measure "$PROXY" "b$w.$round") $(rss_kb $pid) $(hwm_kb $pid)"
    kill -INT $pid; wait $pid 2>/dev/null || true; CURRENT=""

    # (c) and, with a baseline, (e) swap places every other round: b c d e, then b e d c, so
    # neither always follows the same run (a fixed order biased an A/A comparison by ~5%;
    # bench/RESULTS.md).
    first=c; second=${BASELINE:+e}
    if [ -n "$BASELINE" ] && [ $((round % 2)) -eq 0 ]; then first=e; second=c; fi
    split_case "$first" "$w" "$round"

    mkdir -p "$WORK/nginx"
    cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes $w;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/nginx/body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    upstream app {
        server $UPSTREAM_A weight=9;
        server $UPSTREAM_B weight=1;
        keepalive 32;
    }
    server {
        listen $NGINX;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
CONF
    "$NGINX_BIN" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" & pid=$!; CURRENT=$pid
    wait_port "$NGINX"
    R[d$w.$round]="$(measure "$NGINX" "d$w.$round")"
    kill -QUIT $pid; wait $pid 2>/dev/null || true; CURRENT=""

    [ -n "$second" ] && split_case "$second" "$w" "$round"
    split="$(grep -E '^(stable|canary):' "$WORK/proxy-c.log" | tr '\n' ' ')"

    R[split$w]="$split"
    echo "round $round, $w thread(s)/worker(s): b ${R[b$w.$round]} | c ${R[c$w.$round]} | d ${R[d$w.$round]}${BASELINE:+ | e ${R[e$w.$round]}}" >&2
done
done

# The run with the median rps among the rounds of one case.
median() {
    local key="$1" r
    for r in $(seq 1 "$ROUNDS"); do echo "${R[$key.$r]}"; done | sort -n -k1,1 | sed -n "$(( (ROUNDS + 1) / 2 ))p"
}
for w in $WORKERS; do
    for c in b c d ${BASELINE:+e}; do R[$c$w]="$(median "$c$w")"; done
done

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; $(nproc) CPUs; upstreams: 1 tokio thread each;"
echo "(b)-(d): the median-rps run of $ROUNDS interleaved rounds (every round is printed above)"
echo
echo "| case | proxy threads / nginx workers | rps | p50 ms | p99 ms | errors | proxy RSS after / peak |"
echo "|---|---|---|---|---|---|---|"
row() { # name workers "rps p50 p99 errors [rss hwm]"
    set -- "$1" "$2" $3
    local rss="–"
    [ -n "${7:-}" ] && rss="$(awk -v a="$7" -v b="$8" 'BEGIN { printf "%.1f / %.1f MB", a / 1024, b / 1024 }')"
    echo "| $1 | $2 | $3 | $4 | $5 | $6 | $rss |"
}
row "(a) direct to upstream" "–" "${R[a]}"
for w in $WORKERS; do
    row "(b) Mobius proxy, 100% stable" "$w" "${R[b$w]}"
    row "(c) Mobius proxy, 90/10" "$w" "${R[c$w]}"
    row "(d) nginx, weight 9/1" "$w" "${R[d$w]}"
    [ -n "$BASELINE" ] && row "(e) baseline proxy build, 90/10" "$w" "${R[e$w]}"
done
echo
for w in $WORKERS; do
    read -r crps _ cp99 _ <<<"${R[c$w]}"
    read -r drps _ dp99 _ <<<"${R[d$w]}"
    read -r arps _ _ _ <<<"${R[a]}"
    awk -v w="$w" -v c="$crps" -v d="$drps" -v cp="$cp99" -v dp="$dp99" -v a="$arps" 'BEGIN {
        printf "%s thread(s)/worker(s): (c)/(d) rps %.2fx, p99 %.2fx; (c)/(a) rps %.2fx\n", w, c / d, cp / dp, c / a }'
    if [ -n "$BASELINE" ]; then
        read -r erps _ ep99 _ <<<"${R[e$w]}"
        awk -v w="$w" -v e="$erps" -v d="$drps" -v ep="$ep99" -v dp="$dp99" -v c="$crps" 'BEGIN {
            printf "%s thread(s)/worker(s): (e)/(d) rps %.2fx, p99 %.2fx; (c)/(e) rps %.2fx\n", w, e / d, ep / dp, c / e }'
    fi
    echo "  split seen by the proxy in (c): ${R[split$w]}"
done
echo
echo "raw wrk output: $WORK"
