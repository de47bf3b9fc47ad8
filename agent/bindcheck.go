package agent

import (
	"runtime"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/hashwall/hashwall/payword"
)

// bindCache remembers binding encodings whose signature verified: the
// gateway sends the same binding with every claim of a segment, and an
// Ed25519 verification costs more than the rest of a claim. A binding's
// encoding names its serial, hence the user key it was checked against.
type bindCache struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

const maxCachedBindings = 1 << 18

func newBindCache() *bindCache { return &bindCache{m: make(map[string]struct{})} }

func (b *bindCache) known(raw []byte) bool {
	b.mu.RLock()
	_, ok := b.m[string(raw)]
	b.mu.RUnlock()
	return ok
}

func (b *bindCache) add(raws ...[]byte) {
	b.mu.Lock()
	if len(b.m)+len(raws) > maxCachedBindings {
		clear(b.m)
	}
	for _, raw := range raws {
		b.m[string(raw)] = struct{}{}
	}
	b.mu.Unlock()
}

// verified checks one binding's signature (cached).
func (b *bindCache) verified(bind *payword.Binding, ci *certInfo) bool {
	if b.known(bind.Raw()) {
		return true
	}
	if bind.Verify(ci.stub) != nil {
		return false
	}
	b.add(bind.Raw())
	return true
}

// pendingBinding is a binding of a report whose signature is not cached yet.
type pendingBinding struct {
	b    *payword.Binding
	user *voi.ExpandedPublicKey
	ok   bool
}

// verifyAll checks the pending bindings with Ed25519 batch verification
// (voi's default, cofactored rules: the same verdict as payword's single
// verification), split over the CPUs, and caches the valid ones.
func (b *bindCache) verifyAll(pending []*pendingBinding) {
	if len(pending) == 0 {
		return
	}
	workers := min(runtime.GOMAXPROCS(0), (len(pending)+15)/16)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			part := pending[w*len(pending)/workers : (w+1)*len(pending)/workers]
			bv := voi.NewBatchVerifier()
			for _, p := range part {
				msg, sig := p.b.Signed()
				bv.AddExpanded(p.user, msg, sig)
			}
			_, valid := bv.Verify(nil)
			for i, p := range part {
				p.ok = valid[i]
			}
		})
	}
	wg.Wait()
	var good [][]byte
	for _, p := range pending {
		if p.ok {
			good = append(good, p.b.Raw())
		}
	}
	b.add(good...)
}
