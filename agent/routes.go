package agent

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hashwall/hashwall/agentapi"
)

// handlers maps every route of agentapi.Routes to its handler.
func (a *Agent) handlers() map[string]handler {
	return map[string]handler{
		// Public.
		"GET /healthz":                     a.handleHealthz,
		"GET /readyz":                      a.handleReadyz,
		"GET /v1/keys":                     a.handleKeys,
		"GET /v1/crl":                      a.handleCRL,
		"POST /v1/users":                   a.handleRegisterUser,
		"POST /v1/sessions":                a.handleLogin,
		"DELETE /v1/sessions":              a.handleLogout,
		"POST /v1/vendors":                 a.handleRegisterVendor,
		"GET /v1/vendors/{vendor}/origins": a.handleOrigins,
		// Users (session token or Basic auth).
		"GET /v1/me":                    a.handleMe,
		"POST /v1/certificates":         a.handlePurchase,
		"POST /v1/certificates/recover": a.handleRecover,
		// Vendors (API token).
		"POST /v1/reports":                 a.handleReports,
		"POST /v1/bindings":                a.handleBind,
		"GET /v1/statement":                a.handleVendorStatement,
		"GET /v1/revenue":                  a.handleRevenue,
		"GET /v1/revenue/products":         a.handleProducts,
		"GET /v1/claims":                   a.handleClaims,
		"GET /v1/disputes":                 a.handleDisputes,
		"POST /v1/token":                   a.handleRotateToken,
		"PUT /v1/vendors/{vendor}/origins": a.handleSetOrigins,
		// Payment provider (HMAC-signed body).
		"POST /v1/webhooks/payment": a.handleWebhook,
		// Admin (admin token).
		"POST /v1/admin/credit":                    a.handleAdminCredit,
		"POST /v1/admin/revoke":                    a.handleAdminRevoke,
		"GET /v1/admin/fraud":                      a.handleFraud,
		"GET /v1/admin/users":                      a.handleUsers,
		"GET /v1/admin/vendors":                    a.handleVendorList,
		"GET /v1/admin/stats":                      a.handleStats,
		"GET /v1/admin/vendors/{vendor}/statement": a.handleAdminStatement,
		"POST /v1/admin/settle":                    a.handleSettle,
		"GET /v1/admin/ledger/check":               a.handleLedgerCheck,
	}
}

// routes registers exactly agentapi.Routes: a route of the contract without
// a handler is a bug caught at start (and by TestRoutesAreTheContract, as is
// a handler of no route).
func (a *Agent) routes() *http.ServeMux {
	m := http.NewServeMux()
	hs := a.handlers()
	for _, p := range agentapi.Routes {
		f, ok := hs[p]
		if !ok {
			panic("agent: no handler of " + p)
		}
		m.Handle(p, a.wrap(p, f))
	}
	return m
}

// handleHealthz: the process serves.
func (a *Agent) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, agentapi.Health{OK: true, Checks: map[string]string{"process": "ok"}})
	return nil
}

// handleReadyz: the agent can serve requests: its store answers within a
// second and holds the revocation list's sequence (a store that lost it
// would hand gateways a list that went back).
func (a *Agent) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := a.rdb.Ping(ctx).Err(); err != nil {
		return fail(http.StatusServiceUnavailable, agentapi.CodeStoreUnavailable, "not ready: the store does not answer")
	}
	seq, err := a.rdb.Get(ctx, a.prefix+"crlseq").Int64()
	if err != nil && err != redis.Nil {
		return fail(http.StatusServiceUnavailable, agentapi.CodeStoreUnavailable, "not ready: the revocation list cannot be read")
	}
	writeJSON(w, http.StatusOK, agentapi.Health{OK: true, Checks: map[string]string{
		"store": "ok", "revocations": strconv.FormatInt(seq, 10), "signing_key": a.signer.ID,
	}})
	return nil
}
