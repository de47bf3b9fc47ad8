#!/usr/bin/env bash
# Wallet benchmark: `hashwall-wallet get` of paid articles against
# `hashwall demo`, on loopback, as a reader runs it: a fresh CLI process per
# article. Prints what the CLI reports as the payment itself (from choosing
# the tokens to the vendor's answer, recorded in the journal; process start
# and the password KDF excluded), median and 90th percentile over N
# articles (target: <= 2 ms).
#
# Knobs (environment): N (default 40 articles), REDIS (a redis:// URL for
# the demo instead of its embedded in-memory store).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-40}

work=$(mktemp -d)
demo=
cleanup() {
	[ -n "$demo" ] && kill "$demo" 2>/dev/null
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

freeport() {
	local p
	while :; do
		p=$(shuf -i 20000-60000 -n 1)
		(echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
SITE=$(freeport); AGENT=$(freeport)

echo "building hashwall and hashwall-wallet..."
go build -o "$work/hashwall" ./cmd/hashwall
go build -o "$work/hashwall-wallet" ./cmd/hashwall-wallet

"$work/hashwall" demo --site "127.0.0.1:$SITE" --agent "127.0.0.1:$AGENT" ${REDIS:+--redis "$REDIS"} >"$work/demo.log" 2>&1 &
demo=$!
for _ in $(seq 100); do
	grep -q "Serving until" "$work/demo.log" && break
	sleep 0.2
done
grep -q "Serving until" "$work/demo.log" || { echo "the demo did not start:"; cat "$work/demo.log"; exit 1; }
eval "export $(grep -o 'HASHWALL_WALLET=[^ ]* HASHWALL_PASSWORD=[^ ]*' "$work/demo.log")"
grep -E "^store:" "$work/demo.log"
"$work/hashwall-wallet" limits --per-site-day $((2 * N + 2)) >/dev/null # 2 tokens an article

times=()
for i in $(seq "$N"); do
	out=$("$work/hashwall-wallet" get -v "http://127.0.0.1:$SITE/articles/archive/$i" -o /dev/null 2>&1) ||
		{ echo "get $i failed: $out"; exit 1; }
	t=$(echo "$out" | sed -n 's/^the payment took \([0-9.]*\)\(ms\|µs\|s\) .*/\1 \2/p')
	[ -n "$t" ] || { echo "article $i was not paid: $out"; exit 1; }
	times+=("$(echo "$t" | awk '{ v = $1; if ($2 == "µs") v /= 1000; if ($2 == "s") v *= 1000; printf "%.3f", v }')")
	sleep 0.2 # a reader between two articles; the report of the last one has gone to the agent
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$N" '
	{ t[NR] = $1 }
	END { printf "payment in a fresh hashwall-wallet process, %d articles: median %.2f ms, p90 %.2f ms, min %.2f ms, max %.2f ms (target <= 2 ms)\n",
		n, t[int((n+1)/2)], t[int(n*0.9+0.5)], t[1], t[n] }'
