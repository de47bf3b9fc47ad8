package agent

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/payword"
)

// certInfo is the immutable part of a certificate record that verifying a
// claim needs, with K decrypted. Mutable state (status, owners) stays in Redis.
type certInfo struct {
	k        payword.Secret
	segments uint32
	m        uint32
	scope    string
	stub     *payword.Certificate   // carries UserKey for Binding.Verify
	userKey  *voi.ExpandedPublicKey // for batch verification of bindings
}

// certCache keeps decrypted certificate records of recent claims, so a batch
// costs no Redis round trip per certificate. Bounded, emptied when full.
type certCache struct {
	a  *Agent
	mu sync.RWMutex
	m  map[payword.Serial]*certInfo
}

const maxCachedCerts = 1 << 16

func newCertCache(a *Agent) *certCache {
	return &certCache{a: a, m: make(map[payword.Serial]*certInfo)}
}

// load returns the records of serials (nil for unknown ones), fetching the
// missing ones in one pipeline.
func (c *certCache) load(ctx context.Context, serials []payword.Serial) (map[payword.Serial]*certInfo, error) {
	out := make(map[payword.Serial]*certInfo, len(serials))
	var miss []payword.Serial
	c.mu.RLock()
	for _, s := range serials {
		if ci, ok := c.m[s]; ok {
			out[s] = ci
		} else if _, seen := out[s]; !seen {
			out[s] = nil
			miss = append(miss, s)
		}
	}
	c.mu.RUnlock()
	if len(miss) == 0 {
		return out, nil
	}
	cmds := make([]*redis.SliceCmd, len(miss))
	_, err := c.a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, s := range miss {
			cmds[i] = p.HMGet(ctx, c.a.certKey(s), "k", "S", "m", "scope", "upk")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, s := range miss {
		ci, err := c.a.parseCertInfo(s, cmds[i].Val())
		if err != nil {
			return nil, err
		}
		out[s] = ci
	}
	c.mu.Lock()
	if len(c.m)+len(miss) > maxCachedCerts {
		clear(c.m)
	}
	for _, s := range miss {
		if out[s] != nil {
			c.m[s] = out[s]
		}
	}
	c.mu.Unlock()
	return out, nil
}

func (a *Agent) parseCertInfo(s payword.Serial, v []any) (*certInfo, error) {
	f := make([]string, len(v))
	for i, x := range v {
		f[i], _ = x.(string)
	}
	if f[0] == "" {
		return nil, nil // unknown certificate
	}
	k, err := a.master.open(s, f[0])
	if err != nil {
		return nil, err
	}
	segs, _ := strconv.ParseUint(f[1], 10, 32)
	m, _ := strconv.ParseUint(f[2], 10, 32)
	ci := &certInfo{k: k, segments: uint32(segs), m: uint32(m), scope: f[3], stub: &payword.Certificate{Serial: s}}
	upk, _ := b64.DecodeString(f[4])
	copy(ci.stub.UserKey[:], upk)
	if ci.userKey, err = voi.NewExpandedPublicKey(upk); err != nil {
		return nil, fmt.Errorf("agent: certificate %s: user key: %w", s, err)
	}
	return ci, nil
}

// certKey names a certificate's hash; its other keys add a suffix. The
// {serial} hash tag is the contract's; on a Cluster the prefix's own tag,
// which comes first, wins (see keyPrefix).
func (a *Agent) certKey(s payword.Serial) string { return a.prefix + "c:{" + s.String() + "}" }
