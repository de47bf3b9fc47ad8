package agent

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// handleBind registers a segment binding (online mode): the first vendor to
// register a segment owns it; another vendor's registration proves that the
// user bound the segment twice.
func (a *Agent) handleBind(w http.ResponseWriter, r *http.Request) error {
	vendor, err := a.vendorAuth(r)
	if err != nil {
		return err
	}
	var q agentapi.Bind
	if err := decodeJSON(w, r, &q); err != nil {
		return err
	}
	b, err := payword.ParseBinding(q.Bind)
	if err != nil {
		return fail(http.StatusBadRequest, agentapi.CodeBadBinding, err.Error())
	}
	if b.Vendor != vendor {
		return fail(http.StatusForbidden, agentapi.CodeWrongVendor, "binding is for another vendor")
	}
	certs, err := a.certs.load(r.Context(), []payword.Serial{b.Serial})
	if err != nil {
		return err
	}
	ci := certs[b.Serial]
	if ci == nil {
		return fail(http.StatusNotFound, agentapi.CodeUnknownCertificate, "no such certificate")
	}
	if b.Segment >= ci.segments || !a.binds.verified(b, ci) {
		return fail(http.StatusBadRequest, agentapi.CodeBadBinding, "binding is not signed by the certificate's user or names no segment of it")
	}
	res, err := a.run(r.Context(), bind, b.Serial.String(), b.Segment, vendor, a.now().Unix()).Slice()
	if err != nil {
		return err
	}
	owner, _ := res[0].(string)
	revoked, _ := res[1].(int64)
	a.metrics.revocations.WithLabelValues("double-spend").Add(float64(revoked))
	if owner != vendor {
		a.metrics.disputes.Inc()
		a.log.Warn("segment bound twice", zap.String("serial", b.Serial.String()),
			zap.Uint32("segment", b.Segment), zap.String("vendor", vendor), zap.String("owner", owner))
		e := fail(http.StatusConflict, agentapi.CodeSegmentOwned, "segment is bound to another vendor")
		e.Owner = owner
		return e
	}
	writeJSON(w, http.StatusOK, agentapi.Binding{Owner: owner})
	return nil
}
