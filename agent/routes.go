package agent

import "net/http"

func (a *Agent) routes() *http.ServeMux {
	m := http.NewServeMux()
	h := func(pattern string, f handler) { m.Handle(pattern, a.wrap(pattern, f)) }
	// Public.
	h("GET /v1/keys", a.handleKeys)
	h("GET /v1/crl", a.handleCRL)
	h("POST /v1/users", a.handleRegisterUser)
	h("POST /v1/sessions", a.handleLogin)
	h("DELETE /v1/sessions", a.handleLogout)
	h("POST /v1/vendors", a.handleRegisterVendor)
	h("GET /v1/vendors/{vendor}/origins", a.handleOrigins)
	// Users (session token or Basic auth).
	h("GET /v1/me", a.handleMe)
	h("POST /v1/certificates", a.handlePurchase)
	h("POST /v1/certificates/recover", a.handleRecover)
	// Vendors (API token).
	h("POST /v1/reports", a.handleReports)
	h("POST /v1/bindings", a.handleBind)
	h("GET /v1/statement", a.handleVendorStatement)
	h("POST /v1/token", a.handleRotateToken)
	h("PUT /v1/vendors/{vendor}/origins", a.handleSetOrigins)
	// Payment provider (HMAC-signed body).
	h("POST /v1/webhooks/payment", a.handleWebhook)
	// Admin (admin token).
	h("POST /v1/admin/credit", a.handleAdminCredit)
	h("POST /v1/admin/revoke", a.handleAdminRevoke)
	h("GET /v1/admin/fraud", a.handleFraud)
	h("GET /v1/admin/vendors/{vendor}/statement", a.handleAdminStatement)
	h("POST /v1/admin/settle", a.handleSettle)
	h("GET /v1/admin/ledger/check", a.handleLedgerCheck)
	return m
}
