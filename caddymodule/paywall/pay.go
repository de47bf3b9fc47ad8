package paywall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hashwall/hashwall/payword"
)

// storeTimeout bounds every Redis call of the payment path: a stuck store
// must turn into a 503, not a hung request.
const storeTimeout = 2 * time.Second

// verifyPayment checks the payment in header hdr for offer o (steps 1 to
// 7 of docs/protocol.md §7) before the upstream answers; nothing is spent.
// It returns the payment and the time the check took. It makes no store
// call unless the gateway is still starting or keys rotate, and those bound
// their own waits by storeTimeout.
func (h *Handler) verifyPayment(ctx context.Context, hdr string, o offer) (*payword.Payment, time.Duration, error) {
	start := time.Now()
	p, err := h.verify(ctx, hdr, o, start)
	return p, time.Since(start), err
}

// charge spends verified payment p for offer o, once the upstream has
// answered with a page worth paying for, and returns its grant. Nothing is
// spent unless it returns no error. took is the verification's time, for
// the latency metric.
func (h *Handler) charge(ctx context.Context, p *payword.Payment, o offer, took time.Duration) (*grantClaims, string, error) {
	start := time.Now()
	if p.Amount < o.Price {
		// An upstream-priced page: its price is known only now.
		return nil, "", fmt.Errorf("%w: paid %d of %d tokens", payword.ErrUnderpaid, p.Amount, o.Price)
	}
	if h.be.crl.revoked(p.Cert.Serial) {
		return nil, "", fmt.Errorf("%w: %s", errRevoked, p.Cert.Serial) // while the upstream answered
	}
	// No deadline of its own: every Redis command is bounded by storeTimeout
	// (redisurl's budget, the pipeline's own), and so is a new segment's
	// admission as a whole (admitSegment). A timer per payment costs more.
	auth, iat, exp, retried, err := h.record(ctx, p, o, start)
	if err != nil {
		return nil, "", err
	}
	scope := "path"
	if o.Product[len(o.Product)-1] == '/' {
		scope = "prefix"
	}
	g := &grantClaims{Product: o.Product, Scope: scope, User: p.Cert.UserID, Price: p.Amount, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: h.Vendor, Subject: p.Cert.Serial.String(), ID: auth,
		IssuedAt: jwt.NewNumericDate(time.Unix(iat, 0)), ExpiresAt: jwt.NewNumericDate(time.Unix(exp, 0)),
	}}
	g.ready()
	token, err := h.grants.mint(g)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", errUnavailable, err)
	}
	h.metrics.paid(o.Rule, p.Amount, retried)
	h.metrics.paySeconds.Observe((took + time.Since(start)).Seconds())
	return g, token, nil
}

// verify parses the payment in hdr and checks it for offer o at now, in the
// order of docs/protocol.md §7 (steps 1 to 7): the certificate against the
// trusted keys (learning a rotated key once), the revocation list, and the
// segment's binding and Merkle path. It writes nothing.
func (h *Handler) verify(ctx context.Context, hdr string, o offer, now time.Time) (*payword.Payment, error) {
	p, err := payword.ParseAuthorization(hdr)
	if err != nil {
		return nil, err
	}
	if err := h.be.storeReady(ctx); err != nil {
		return nil, err
	}
	v, err := h.be.keys.verifier(ctx)
	if err != nil {
		return nil, err
	}
	req := payword.Request{Vendor: h.Vendor, Product: o.Product, Price: o.Price, Now: now}
	if err := v.Check(p, req); errors.Is(err, payword.ErrUnknownKey) && h.be.keys.refresh(ctx, v) {
		// The agent may have rotated its key: pin the new one, then retry.
		if v, err = h.be.keys.verifier(ctx); err != nil {
			return nil, err
		}
		if err := v.Check(p, req); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if h.be.crl.revoked(p.Cert.Serial) {
		return nil, fmt.Errorf("%w: %s", errRevoked, p.Cert.Serial)
	}
	if age := h.be.crl.age(now); age > h.crlMaxAge {
		return nil, fmt.Errorf("%w: last synced %v ago", errCRLStale, age.Round(time.Second))
	}
	if err := h.be.checkSegment(p); err != nil {
		return nil, err
	}
	return p, nil
}

// record spends verified payment p for offer o (steps 8 and 9): it admits a
// new segment (registering it with the agent when due), then checks the
// tokens against the vendor's state, advances it and queues the claim for
// the agent in one script. It returns the authorization number and the
// grant's times, those first given when the same payment was accepted
// before (retried).
func (h *Handler) record(ctx context.Context, p *payword.Payment, o offer, now time.Time) (auth string, iat, exp int64, retried bool, err error) {
	if p.Binding != nil {
		max := h.offlineSegments
		if o.Mode == ModeOnline {
			max = -1
		}
		if err := h.be.admitSegment(ctx, p, max); err != nil {
			return "", 0, 0, false, err
		}
	}
	auth = newAuth()
	iat, exp = now.Unix(), now.Add(o.TTL).Unix()
	c := payword.Claim{
		Serial: p.Cert.Serial, Segment: p.Segment, Binding: bindingRaw(p), Index: p.Index,
		Token: p.Token, Amount: p.Amount, Product: p.Product, Auth: auth, Time: iat,
	}
	claim := c.AppendJSON(make([]byte, 0, 512))
	first := auth + " " + strconv.FormatInt(iat, 10) + " " + strconv.FormatInt(exp, 10)
	rec, err := accept(ctx, h.be.pipe, h.be.ks, p, acceptance{
		Record:      first,
		RecordTTL:   int64(o.TTL/time.Second) + 1,
		Claim:       claim,
		Stream:      h.be.ks.streamOf(o.Mode, p.Cert.Serial),
		StateExpiry: p.Cert.ExpiresAt + 3600,
	})
	if errors.Is(err, payword.ErrReplay) {
		// Accepted before the store moved to the sharded layout?
		if old, ok := h.be.legacyRecord(ctx, p); ok {
			rec, err = old, nil
		}
	}
	if err != nil {
		return "", 0, 0, false, err
	}
	if strings.HasPrefix(rec, voidPrefix) {
		return "", 0, 0, false, errVoided
	}
	auth, iat, exp, ok := parseRecord(rec)
	if !ok {
		return "", 0, 0, false, fmt.Errorf("%w: corrupt authorization record", errUnavailable)
	}
	return auth, iat, exp, rec != first, nil
}

// recordVoid voids payment p, accepted with grant g for offer o: see
// voidScript. The void's claim is the payment's claim, marked void, under
// the authorization number with voidSuffix (each stream entry is answered
// under its own).
func (h *Handler) recordVoid(ctx context.Context, p *payword.Payment, g *grantClaims, o offer) error {
	iat, exp := g.IssuedAt.Unix(), g.ExpiresAt.Unix()
	c := payword.Claim{
		Serial: p.Cert.Serial, Segment: p.Segment, Binding: bindingRaw(p), Index: p.Index,
		Token: p.Token, Amount: p.Amount, Product: p.Product, Auth: g.ID + payword.VoidSuffix, Time: iat, Void: true,
	}
	claim := c.AppendJSON(make([]byte, 0, 512))
	rec := g.ID + " " + strconv.FormatInt(iat, 10) + " " + strconv.FormatInt(exp, 10)
	keys := []string{h.be.ks.authorization(p), h.be.ks.streamOf(o.Mode, p.Cert.Serial)}
	n, err := h.be.pipe.rep.Run(ctx, h.be.rdb, voidScript, keys, rec, claim).Int()
	if err != nil {
		return fmt.Errorf("%w: %v", errUnavailable, err)
	}
	if n != 1 {
		return fmt.Errorf("the payment's record is gone or changed")
	}
	return nil
}

func bindingRaw(p *payword.Payment) payword.Bytes {
	if p.Binding == nil {
		return nil
	}
	return p.Binding.Raw()
}

// Authorization numbers: a random prefix per process and a counter, unique
// across a vendor's gateways without a system call per payment.
var (
	authPrefix  = func() string { var b [8]byte; _, _ = rand.Read(b[:]); return hex.EncodeToString(b[:]) }()
	authCounter atomic.Uint64
)

func newAuth() string {
	return authPrefix + "." + strconv.FormatUint(authCounter.Add(1), 36)
}
