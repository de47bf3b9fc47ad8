package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"runtime"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// verdictOK is Go's verdict on a claim that passed its checks: the ingest
// script decides paid, double_spend or duplicate. It never reaches a vendor.
const verdictOK agentapi.Verdict = "ok"

// errBatchMismatch refuses a known batch id that comes with other claims:
// answering them with the stored results of the first would let the
// gateway drop claims the ledger never saw.
var errBatchMismatch = fail(http.StatusConflict, agentapi.CodeBatchMismatch,
	"this batch id was reported before with other claims; report these under a new id")

// claimsDigest is the hex SHA-256 of every field of every claim, in order,
// each length-prefixed: two reports share it only if they carry the same
// claims.
func claimsDigest(claims []payword.Claim) string {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	num := func(v uint64) {
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	for i := range claims {
		c := &claims[i]
		field(c.Serial[:])
		num(uint64(c.Segment))
		field(c.Binding)
		num(uint64(c.Index))
		field(c.Token[:])
		num(uint64(c.Amount))
		field([]byte(c.Product))
		field([]byte(c.Auth))
		num(uint64(c.Time))
		if c.Void {
			h.Write([]byte{1})
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ingestTimeout bounds the ingestion of one report, which outlives the
// request if the vendor hangs up.
const ingestTimeout = 30 * time.Second

// batchTTL is how long a batch's response is kept for redelivery; after it,
// per-claim idempotency still holds.
const batchTTL = 90 * 24 * time.Hour

func (a *Agent) handleReports(w http.ResponseWriter, r *http.Request) error {
	vendor, err := a.vendorAuth(r)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, payword.MaxReportSize)
	if err != nil {
		return err
	}
	rep, err := payword.ParseReport(body)
	if errors.Is(err, payword.ErrTooLarge) {
		return fail(http.StatusRequestEntityTooLarge, agentapi.CodeTooLarge, err.Error())
	}
	if err != nil {
		return fail(http.StatusBadRequest, agentapi.CodeMalformed, err.Error())
	}
	if rep.Vendor != vendor {
		return fail(http.StatusForbidden, agentapi.CodeWrongVendor, "report is for another vendor")
	}
	// Finished even if the vendor stops waiting (its attempt timed out): its
	// retry then finds the answer stored instead of redoing the work.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), ingestTimeout)
	defer cancel()
	out, err := a.Ingest(ctx, rep)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, err = w.Write(out)
	return err
}

// Ingest verifies a report's claims against the certificate secrets and the
// users' bindings, then applies the verdicts in one Lua script. It returns
// the response body, an agentapi.ReportResult (the script writes it). The
// caller has authenticated rep.Vendor.
func (a *Agent) Ingest(ctx context.Context, rep *payword.Report) ([]byte, error) {
	serials := make([]payword.Serial, len(rep.Claims))
	for i := range rep.Claims {
		serials[i] = rep.Claims[i].Serial
	}
	certs, err := a.certs.load(ctx, serials)
	if err != nil {
		return nil, err
	}
	pre := a.precheck(rep, certs)
	args := make([]any, 0, 9+8*len(rep.Claims))
	args = append(args, rep.Vendor, rep.Batch, a.now().Unix(), len(rep.Claims), int64(batchTTL/time.Second))
	for i := range rep.Claims {
		c := &rep.Claims[i]
		void := "0"
		if c.Void {
			void = "1"
		}
		args = append(args, c.Serial.String(), c.Segment, c.Index, string(pre[i]), c.Auth, void, c.Amount, c.Product)
	}
	args = append(args, claimsDigest(rep.Claims))
	args = append(args, deliveryDelays(rep.Claims, a.now().Unix())...)
	res, err := a.run(ctx, ingest, args...).Slice()
	if err != nil {
		return nil, err
	}
	if len(res) > 4 {
		return nil, errBatchMismatch
	}
	body, _ := res[0].(string)
	revoked, _ := res[1].(int64)
	credited, _ := res[2].(int64)
	voided, _ := res[3].(int64)
	a.metrics.revocations.WithLabelValues("double-spend").Add(float64(revoked))
	a.metrics.claimed.Add(float64(credited))
	a.metrics.voided.Add(float64(voided))
	a.countVerdicts(rep.Vendor, rep.Batch, []byte(body))
	return []byte(body), nil
}

// maxDelay caps a claim's delivery delay in the operator's figures: a
// gateway's clock may be anything.
const maxDelay = 30 * 24 * 3600

// deliveryDelays is the sum, count and largest of the claims' delays from
// their acceptance (Time, the gateway's clock) to now, in seconds, within
// [0, maxDelay]; voids are not deliveries of a payment.
func deliveryDelays(claims []payword.Claim, now int64) []any {
	var sum, n, most int64
	for i := range claims {
		if claims[i].Void {
			continue
		}
		d := min(max(now-claims[i].Time, 0), maxDelay)
		sum, n, most = sum+d, n+1, max(most, d)
	}
	return []any{sum, n, most}
}

// precheck gives each claim Go's verdict. Claims of one segment are checked
// by one worker, which derives the segment's chain once when it has several;
// binding signatures not seen before are then batch-verified together.
func (a *Agent) precheck(rep *payword.Report, certs map[payword.Serial]*certInfo) []agentapi.Verdict {
	type segKey struct {
		s payword.Serial
		g uint32
	}
	groups := map[segKey][]int{}
	var order []segKey
	for i := range rep.Claims {
		k := segKey{rep.Claims[i].Serial, rep.Claims[i].Segment}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	pre := make([]agentapi.Verdict, len(rep.Claims))
	unverified := make([]*payword.Binding, len(rep.Claims))
	workers := min(runtime.GOMAXPROCS(0), len(order))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := w; j < len(order); j += workers {
				k := order[j]
				ci := certs[k.s]
				var chain []payword.Token
				for _, i := range groups[k] {
					c := &rep.Claims[i]
					if ci != nil && len(groups[k]) > 1 && chain == nil && c.Segment < ci.segments {
						chain = payword.Segment(ci.k, c.Segment, int(ci.m))
					}
					pre[i], unverified[i] = a.checkClaim(rep.Vendor, c, ci, chain)
				}
			}
		})
	}
	wg.Wait()

	byRaw := map[string]*pendingBinding{}
	var pending []*pendingBinding
	for i, b := range unverified {
		if b != nil && byRaw[string(b.Raw())] == nil {
			p := &pendingBinding{b: b, user: certs[rep.Claims[i].Serial].userKey}
			byRaw[string(b.Raw())] = p
			pending = append(pending, p)
		}
	}
	a.binds.verifyAll(pending)
	for i, b := range unverified {
		if b != nil && !byRaw[string(b.Raw())].ok {
			pre[i] = agentapi.VerdictVendorFraud
		}
	}
	return pre
}

// checkClaim applies the secret-and-binding rows of the dispute table. A
// verdict of ok may come with a binding whose signature is still to check.
func (a *Agent) checkClaim(vendor string, c *payword.Claim, ci *certInfo, chain []payword.Token) (agentapi.Verdict, *payword.Binding) {
	if ci == nil {
		return agentapi.VerdictUnknownCertificate, nil
	}
	if c.Segment >= ci.segments || c.Index > ci.m {
		return agentapi.VerdictInvalid, nil
	}
	var want payword.Token
	if chain != nil {
		want = chain[c.Index]
	} else {
		want = payword.TokenAt(ci.k, c.Segment, int(c.Index), int(ci.m))
	}
	if want != c.Token {
		return agentapi.VerdictInvalid, nil
	}
	if ci.scope != payword.GenericScope {
		if ci.scope != vendor {
			return agentapi.VerdictVendorFraud, nil
		}
		return verdictOK, nil
	}
	b, err := payword.ParseBinding(c.Binding)
	if err != nil || b.Serial != c.Serial || b.Segment != c.Segment || b.Vendor != vendor {
		return agentapi.VerdictVendorFraud, nil
	}
	if a.binds.known(b.Raw()) {
		return verdictOK, nil
	}
	return verdictOK, b
}

// countVerdicts counts the script's verdicts in its output: cheaper than
// decoding a body the agent wrote itself.
func (a *Agent) countVerdicts(vendor, batch string, body []byte) {
	counts := map[agentapi.Verdict]int{}
	for _, v := range agentapi.Verdicts {
		if n := bytes.Count(body, []byte(`"verdict":"`+v+`"`)); n > 0 {
			counts[v] = n
			a.metrics.claims.WithLabelValues(string(v)).Add(float64(n))
		}
	}
	fraud, invalid, double := counts[agentapi.VerdictVendorFraud], counts[agentapi.VerdictInvalid], counts[agentapi.VerdictDoubleSpend]
	if n := fraud + invalid + double; n > 0 {
		a.metrics.disputes.Add(float64(n))
		a.log.Warn("disputed claims", zap.String("vendor", vendor), zap.String("batch", batch),
			zap.Int("vendor_fraud", fraud), zap.Int("invalid", invalid), zap.Int("double_spend", double))
	}
}
