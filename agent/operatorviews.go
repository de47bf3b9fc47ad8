package agent

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
)

// What the bank's operator looks up beyond the ledger: readers and vendors
// by name, and the figures of the last minutes. Names are indexed in the
// zsets unames and vnames (score 0, so ZRANGEBYLEX finds a prefix), which
// registration writes in its script; a store from before the index gets
// it at start (indexNames). The figures are the ingest script's st:<minute>.

// Bounds of the operator's views.
const (
	maxSearch      = 64 // a search prefix, as long as a name
	defaultMinutes = 60
	maxMinutes     = 2 * 24 * 60 // st:<minute> lives two days
)

// namesIndexed marks a store whose names are indexed.
const namesIndexed = "idx:names"

// indexNames indexes the names of a store's accounts registered before
// the index existed, once: it reads the accounts set a page at a time.
func (a *Agent) indexNames(ctx context.Context) error {
	if n, err := a.rdb.Exists(ctx, a.prefix+namesIndexed).Result(); err != nil || n == 1 {
		return err
	}
	var cursor uint64
	for {
		accts, next, err := a.rdb.SScan(ctx, a.prefix+"accounts", cursor, "", 1000).Result()
		if err != nil {
			return err
		}
		pipe := a.rdb.Pipeline()
		names := make([]*redis.StringCmd, 0, len(accts))
		for _, acct := range accts {
			if id, ok := strings.CutPrefix(acct, "v:"); ok {
				pipe.ZAdd(ctx, a.prefix+"vnames", redis.Z{Member: id})
			} else if strings.HasPrefix(acct, "u:") {
				names = append(names, pipe.HGet(ctx, a.prefix+acct, "name"))
			}
		}
		if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
			return err
		}
		var zs []redis.Z
		for _, c := range names {
			if c.Val() != "" {
				zs = append(zs, redis.Z{Member: c.Val()})
			}
		}
		if len(zs) > 0 {
			if err := a.rdb.ZAdd(ctx, a.prefix+"unames", zs...).Err(); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return a.rdb.Set(ctx, a.prefix+namesIndexed, "1", 0).Err()
}

// names is a page of the index key: the names that start with q, after
// after, at most limit; next is the last one if more follow.
func (a *Agent) names(ctx context.Context, key, q, after string, limit int) (names []string, next string, err error) {
	lo, hi := "["+q, "+"
	if q != "" {
		hi = "[" + q + "\xff"
	}
	if after != "" && after >= q {
		lo = "(" + after
	}
	names, err = a.rdb.ZRangeByLex(ctx, a.prefix+key, &redis.ZRangeBy{Min: lo, Max: hi, Count: int64(limit + 1)}).Result()
	if err != nil {
		return nil, "", err
	}
	if len(names) > limit {
		names, next = names[:limit], names[limit-1]
	}
	return names, next, nil
}

// Users is a page of readers whose username starts with q, after after.
func (a *Agent) Users(ctx context.Context, q, after string, limit int) (*agentapi.Users, error) {
	names, next, err := a.names(ctx, "unames", q, after, limit)
	if err != nil {
		return nil, err
	}
	out := &agentapi.Users{Users: make([]agentapi.UserSummary, 0, len(names)), Next: next}
	pipe := a.rdb.Pipeline()
	uids := make([]*redis.StringCmd, len(names))
	for i, n := range names {
		uids[i] = pipe.Get(ctx, a.prefix+"uname:"+n)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, err
	}
	hs, certs := make([]*redis.SliceCmd, len(names)), make([]*redis.IntCmd, len(names))
	for i := range names {
		hs[i] = pipe.HMGet(ctx, a.prefix+"u:"+uids[i].Val(), "bal", "status", "ctime")
		certs[i] = pipe.SCard(ctx, a.prefix+"ucerts:"+uids[i].Val())
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, err
	}
	for i, n := range names {
		f := hs[i].Val()
		out.Users = append(out.Users, agentapi.UserSummary{Username: n, ID: uids[i].Val(), Balance: field(f, 0),
			Status: str(f, 1), Certificates: certs[i].Val(), Created: field(f, 2)})
	}
	return out, nil
}

// VendorList is a page of vendors whose id starts with q, after after.
func (a *Agent) VendorList(ctx context.Context, q, after string, limit int) (*agentapi.Vendors, error) {
	ids, next, err := a.names(ctx, "vnames", q, after, limit)
	if err != nil {
		return nil, err
	}
	out := &agentapi.Vendors{Vendors: make([]agentapi.VendorSummary, 0, len(ids)), Next: next}
	pipe := a.rdb.Pipeline()
	hs := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		hs[i] = pipe.HMGet(ctx, a.prefix+"v:"+id, "bal", "status", "fraud", "lastrep", "lag")
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, err
	}
	for i, id := range ids {
		f := hs[i].Val()
		out.Vendors = append(out.Vendors, agentapi.VendorSummary{Vendor: id, Balance: field(f, 0), Status: str(f, 1),
			Fraud: field(f, 2), LastReport: field(f, 3), Lag: field(f, 4)})
	}
	return out, nil
}

func str(f []any, i int) string { s, _ := f[i].(string); return s }

func field(f []any, i int) int64 { n, _ := strconv.ParseInt(str(f, i), 10, 64); return n }

// Stats is the figures of the minutes up to now's, oldest first.
func (a *Agent) Stats(ctx context.Context, minutes int) (*agentapi.Stats, error) {
	last := a.now().Unix() / 60
	pipe := a.rdb.Pipeline()
	ms := make([]*redis.SliceCmd, minutes)
	for i := range ms {
		ms[i] = pipe.HMGet(ctx, fmt.Sprintf("%sst:%d", a.prefix, last-int64(minutes-1-i)), "claims", "paid", "value", "lagsum", "lagn", "lagmax")
	}
	crl := pipe.ZCard(ctx, agentapi.CRLKey)
	fraud := pipe.LLen(ctx, a.prefix+"fraud")
	users := pipe.ZCard(ctx, a.prefix+"unames")
	vendors := pipe.ZCard(ctx, a.prefix+"vnames")
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, err
	}
	out := &agentapi.Stats{Minutes: make([]agentapi.MinuteStats, minutes), CRLEntries: crl.Val(), FraudCases: fraud.Val(),
		Users: users.Val(), Vendors: vendors.Val()}
	for i, c := range ms {
		f := c.Val()
		m := agentapi.MinuteStats{Minute: (last - int64(minutes-1-i)) * 60, Claims: field(f, 0), Paid: field(f, 1), Value: field(f, 2), LagMax: field(f, 5)}
		if n := field(f, 4); n > 0 {
			m.LagMean = float64(field(f, 3)) / float64(n)
		}
		out.Minutes[i] = m
	}
	return out, nil
}

func (a *Agent) handleUsers(w http.ResponseWriter, r *http.Request) error {
	return a.serveSearch(w, r, func(ctx context.Context, q, after string, limit int) (any, error) {
		return a.Users(ctx, q, after, limit)
	})
}

func (a *Agent) handleVendorList(w http.ResponseWriter, r *http.Request) error {
	return a.serveSearch(w, r, func(ctx context.Context, q, after string, limit int) (any, error) {
		return a.VendorList(ctx, q, after, limit)
	})
}

// serveSearch answers a search of the operator: q a name's start, after
// the last name of the page before, limit as pageParams.
func (a *Agent) serveSearch(w http.ResponseWriter, r *http.Request, f func(ctx context.Context, q, after string, limit int) (any, error)) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	_, limit, err := pageParams(r, "")
	if err != nil {
		return err
	}
	q, after := r.URL.Query().Get("q"), r.URL.Query().Get("after")
	if !searchable(q) || !searchable(after) {
		return fail(http.StatusBadRequest, agentapi.CodeMalformed, fmt.Sprintf("q and after are at most %d visible ASCII characters", maxSearch))
	}
	out, err := f(r.Context(), q, after, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// searchable is a name or the start of one: usernames and vendor ids are
// visible ASCII (payword.ValidID and registration's checks), so nothing
// else can match; "\xff", which closes a prefix's range, cannot come in.
func searchable(s string) bool {
	return len(s) <= maxSearch && !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e })
}

func (a *Agent) handleStats(w http.ResponseWriter, r *http.Request) error {
	if err := a.requireAdmin(r); err != nil {
		return err
	}
	minutes := defaultMinutes
	if s := r.URL.Query().Get("minutes"); s != "" {
		var err error
		if minutes, err = strconv.Atoi(s); err != nil || minutes < 1 || minutes > maxMinutes {
			return fail(http.StatusBadRequest, agentapi.CodeMalformed, fmt.Sprintf("minutes is 1 to %d", maxMinutes))
		}
	}
	out, err := a.Stats(r.Context(), minutes)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
