package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// checkPurchase validates a purchase, fills its default scope and returns
// the wallet's public key.
func checkPurchase(q *agentapi.Purchase, maxTokens int) ([]byte, error) {
	if q.Tokens < 1 || q.Tokens > int64(maxTokens) {
		return nil, fail(http.StatusBadRequest, agentapi.CodeInvalidTokens, fmt.Sprintf("tokens must be in 1..%d", maxTokens))
	}
	if q.Scope == "" {
		q.Scope = payword.GenericScope
	}
	if q.Scope != payword.GenericScope && !payword.ValidID(q.Scope) {
		return nil, fail(http.StatusBadRequest, agentapi.CodeInvalidScope, `scope must be "*" or a vendor id`)
	}
	if q.RequestID != "" && !payword.ValidID(q.RequestID) {
		return nil, fail(http.StatusBadRequest, agentapi.CodeInvalidRequestID, "request_id must be an id")
	}
	return parsePublicKey(q.PublicKey)
}

// parsePublicKey accepts only a key a wallet can have made: the canonical
// encoding of a point of the prime-order subgroup. Off-curve, small-order
// (the identity among them) and mixed-order points are refused: no honest
// key is one, and a small-order key admits signatures that verify for
// many messages.
func parsePublicKey(s string) ([]byte, error) {
	bad := fail(http.StatusBadRequest, agentapi.CodeInvalidPublicKey, "public_key must be a base64url Ed25519 public key")
	upk, err := payword.DecodeBase64(s)
	if err != nil || len(upk) != ed25519.PublicKeySize {
		return nil, bad
	}
	var cy curve.CompressedEdwardsY
	var p curve.EdwardsPoint
	if _, err := cy.SetBytes(upk); err != nil || !cy.IsCanonicalVartime() {
		return nil, bad
	}
	if _, err := p.SetCompressedY(&cy); err != nil || p.IsSmallOrder() || !p.IsTorsionFree() {
		return nil, bad
	}
	return upk, nil
}

func (a *Agent) handlePurchase(w http.ResponseWriter, r *http.Request) error {
	uid, err := a.userAuth(r) // step A
	if err != nil {
		return err
	}
	var q agentapi.Purchase
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	upk, err := checkPurchase(&q, a.cfg.MaxTokens)
	if err != nil {
		return err
	}
	m := a.cfg.SegmentLen
	segments := int((q.Tokens + int64(m) - 1) / int64(m))
	b, err := a.issue(r.Context(), uid, segments, upk, q.Scope, q.RequestID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, b)
	return nil
}

// issue runs steps B–D: generate K, sign the certificate, then charge the
// balance and record the certificate in one script. If the balance does not
// cover it the certificate is simply dropped: it was never stored or sent.
func (a *Agent) issue(ctx context.Context, uid string, segments int, upk []byte, scope, requestID string) (*agentapi.Bundle, error) {
	return a.issueFor(ctx, uid, segments, upk, scope, requestID, false)
}

// issueFor is issue; hosted: the certificate joins the user's hosted wallet
// in the same script.
func (a *Agent) issueFor(ctx context.Context, uid string, segments int, upk []byte, scope, requestID string, hosted bool) (*agentapi.Bundle, error) {
	m := a.cfg.SegmentLen
	now := a.now()
	c := &payword.Certificate{
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Duration(a.cfg.CertTTL)).Unix(),
		UnitValue: a.cfg.UnitValue, Currency: a.cfg.Currency, Scope: scope, UserID: uid,
	}
	rand.Read(c.Serial[:])
	copy(c.UserKey[:], upk)
	var k payword.Secret
	rand.Read(k[:])
	c.Issue(k, segments, m)
	raw, err := c.Sign(a.signer)
	if err != nil {
		return nil, err
	}
	tokens := segments * m
	cost := uint64(tokens) * a.cfg.UnitValue
	serial := c.Serial.String()
	if _, _, err := a.applyRecoveredFor(ctx, uid); err != nil { // a due recovery credit pays too
		return nil, err
	}
	res, err := a.run(ctx, purchase, uid, serial, cost, tokens, segments, m,
		a.cfg.UnitValue, scope, c.IssuedAt, c.ExpiresAt, a.master.seal(c.Serial, k),
		b64.EncodeToString(upk), now.Unix(), requestID, b64.EncodeToString(raw), hostedFlag(hosted)).Text()
	if err != nil {
		return nil, err
	}
	if prev, ok := strings.CutPrefix(res, "replay:"); ok {
		return a.storedBundle(ctx, prev)
	}
	switch res {
	case "ok":
	case "insufficient_funds":
		return nil, fail(http.StatusPaymentRequired, agentapi.CodeInsufficientFunds, "balance does not cover the certificate")
	case "user_inactive":
		return nil, fail(http.StatusForbidden, agentapi.CodeUserRevoked, "user account is revoked")
	case "vendor_unknown":
		return nil, fail(http.StatusBadRequest, agentapi.CodeUnknownVendor, "scope names no active vendor")
	case "vendor_generic":
		return nil, fail(http.StatusBadRequest, agentapi.CodeGenericVendor, "scope names a vendor of the generic system; buy a generic certificate")
	default:
		return nil, fmt.Errorf("purchase script: %q", res)
	}
	a.metrics.issued.Inc()
	a.metrics.tokens.Add(float64(tokens))
	a.log.Info("certificate issued", zap.String("serial", serial), zap.String("user", uid), zap.Int("tokens", tokens))
	return &agentapi.Bundle{
		Serial: serial, Certificate: b64.EncodeToString(raw), Secret: b64.EncodeToString(k[:]),
		Segments: segments, SegmentLen: m, Tokens: tokens, Cost: cost, Currency: a.cfg.Currency,
		ExpiresAt: c.ExpiresAt,
	}, nil
}

// handleRecover revokes the user's certificates at once. Their unclaimed
// value is credited only when the report window ends (less the claims that
// arrived meanwhile), RecoverAdvance of it at once; a new certificate is
// issued from what was credited at once. An account recovers at most once
// per RecoverEvery.
func (a *Agent) handleRecover(w http.ResponseWriter, r *http.Request) error {
	uid, err := a.userAuth(r)
	if err != nil {
		return err
	}
	var q agentapi.Recover
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	upk, err := parsePublicKey(q.PublicKey)
	if err != nil {
		return err
	}
	out, err := a.recoverAccount(r.Context(), uid)
	if err != nil {
		return err
	}
	value := out.RecoveredValue
	// Buy as many whole segments of what was credited at once as the
	// balance allows (late claims may already have eaten some).
	segments := min(int(uint64(value)/(a.cfg.UnitValue*uint64(a.cfg.SegmentLen))), a.cfg.MaxTokens/a.cfg.SegmentLen)
	if segments > 0 {
		b, err := a.issue(r.Context(), uid, segments, upk, payword.GenericScope, "")
		if e, ok := errors.AsType[*agentapi.Error](err); ok && e.Code == agentapi.CodeInsufficientFunds {
			err = nil // the value stays on the balance
		}
		if err != nil {
			return err
		}
		out.Bundle = b
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// recoverAccount revokes the user's certificates (the API's recovery and
// the recovery page): the Recovery without its Bundle.
func (a *Agent) recoverAccount(ctx context.Context, uid string) (agentapi.Recovery, error) {
	if _, _, err := a.applyRecoveredFor(ctx, uid); err != nil {
		return agentapi.Recovery{}, err
	}
	now := a.now()
	due := now.Add(time.Duration(a.cfg.ReportWindow)).Unix()
	res, err := a.run(ctx, recoverCerts, uid, now.Unix(), due, a.cfg.RecoverAdvance,
		int64(time.Duration(a.cfg.RecoverEvery)/time.Second)).Int64Slice()
	if err != nil {
		return agentapi.Recovery{}, err
	}
	value, pending := res[0], res[2]
	a.metrics.revocations.WithLabelValues("recovered").Add(float64(res[1]))
	switch value {
	case -1:
		return agentapi.Recovery{}, fail(http.StatusForbidden, agentapi.CodeUserRevoked, "user account is revoked")
	case -2:
		return agentapi.Recovery{}, retryLater(fail(http.StatusTooManyRequests, agentapi.CodeRecoverTooOften,
			fmt.Sprintf("an account may recover once every %v", a.cfg.RecoverEvery)), time.Duration(res[3])*time.Second)
	}
	a.metrics.recoveries.Inc()
	a.log.Info("certificates recovered", zap.String("user", uid), zap.Int64("value", value), zap.Int64("pending", pending))
	out := agentapi.Recovery{RecoveredValue: value, PendingCredit: pending}
	if pending > 0 {
		out.CreditAt = due
	}
	return out, nil
}

// storedBundle rebuilds the bundle of an issued certificate, for a retried
// purchase whose first answer was lost.
func (a *Agent) storedBundle(ctx context.Context, serial string) (*agentapi.Bundle, error) {
	s, err := payword.ParseSerial(serial)
	if err != nil {
		return nil, err
	}
	v, err := a.rdb.HMGet(ctx, a.certKey(s), "cert", "k", "S", "m", "tokens", "unit", "exp").Result()
	if err != nil {
		return nil, err
	}
	f := make([]string, len(v))
	for i, x := range v {
		f[i], _ = x.(string)
	}
	k, err := a.master.open(s, f[1])
	if err != nil {
		return nil, err
	}
	n := func(s string) int64 { x, _ := strconv.ParseInt(s, 10, 64); return x }
	return &agentapi.Bundle{
		Serial: serial, Certificate: f[0], Secret: b64.EncodeToString(k[:]),
		Segments: int(n(f[2])), SegmentLen: int(n(f[3])), Tokens: int(n(f[4])),
		Cost: uint64(n(f[4]) * n(f[5])), Currency: a.cfg.Currency, ExpiresAt: n(f[6]),
	}, nil
}
