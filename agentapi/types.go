package agentapi

import (
	"slices"

	"github.com/hashwall/hashwall/payword"
)

// Header names beyond Authorization.
const (
	// SignatureHeader carries a payment provider's webhook signature:
	// "sha256=" and the hex HMAC-SHA256 of the body under the webhook secret.
	SignatureHeader = "Hashwall-Signature"
)

// The revocation list in the agent's Redis, which a gateway sharing that
// Redis reads directly (the paywall's `crl redis`): a sorted set of
// payword.CRLEntry JSON by seq, and the channel each new entry is
// published on.
const (
	CRLKey     = "hw:crl"
	CRLChannel = "hw:crl"
)

// Token prefixes: a user's session token and a vendor's API token.
const (
	SessionTokenPrefix = "hws_"
	VendorTokenPrefix  = "hwv_"
)

// Verdict is the agent's judgement of one reported claim.
type Verdict string

const (
	VerdictPaid               Verdict = "paid"
	VerdictDuplicate          Verdict = "duplicate"
	VerdictVendorFraud        Verdict = "vendor_fraud"
	VerdictInvalid            Verdict = "invalid"
	VerdictDoubleSpend        Verdict = "double_spend"
	VerdictUnknownCertificate Verdict = "unknown_certificate"
	// VerdictVoided answers a void: Amount tokens were taken back from the
	// vendor and credited to the reader.
	VerdictVoided Verdict = "voided"
)

// Verdicts are the verdicts of the contract.
var Verdicts = []Verdict{VerdictPaid, VerdictDuplicate, VerdictVendorFraud, VerdictInvalid,
	VerdictDoubleSpend, VerdictUnknownCertificate, VerdictVoided}

// Known tells a verdict of the contract from anything else: a vendor may
// delete a claim from its queue only on a known verdict.
func (v Verdict) Known() bool { return slices.Contains(Verdicts, v) }

// Vendor kinds.
const (
	KindGeneric  = "generic"
	KindSpecific = "specific"
)

// RegisterUser is the body of POST /v1/users.
type RegisterUser struct {
	Username string            `json:"username"`
	Password string            `json:"password"`
	Info     map[string]string `json:"info,omitempty"` // identification data, opaque to the agent
}

// User is the 201 of POST /v1/users.
type User struct {
	User     string `json:"user"` // opaque id, written into certificates
	Username string `json:"username"`
}

// Login is the body of POST /v1/sessions.
type Login struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Session is the 200 of POST /v1/sessions.
type Session struct {
	User      string `json:"user"`
	Token     string `json:"token"`      // hws_…
	ExpiresAt int64  `json:"expires_at"` // Unix seconds
}

// RegisterVendor is the body of POST /v1/vendors.
type RegisterVendor struct {
	Vendor  string   `json:"vendor"`
	Kind    string   `json:"kind,omitempty"`    // KindGeneric (default) or KindSpecific
	Origins []string `json:"origins,omitempty"` // of the vendor's sites; wallets pay only there
}

// Vendor is the 201 of POST /v1/vendors; Token is shown only then.
type Vendor struct {
	Vendor  string   `json:"vendor"`
	Token   string   `json:"token"` // hwv_…
	Kind    string   `json:"kind"`
	Origins []string `json:"origins"`
}

// RotateToken is the optional body of POST /v1/token: how long the token
// being replaced keeps working, so that gateways can be given the new one
// without a gap (0: it stops at once).
type RotateToken struct {
	GraceSeconds int64 `json:"grace_seconds,omitempty"` // at most MaxTokenGrace
}

// MaxTokenGrace bounds RotateToken.GraceSeconds: 7 days.
const MaxTokenGrace = 7 * 24 * 3600

// VendorToken is the 200 of POST /v1/token.
type VendorToken struct {
	Vendor string `json:"vendor"`
	Token  string `json:"token"`
	// OldValidUntil is when the replaced token stops working (Unix
	// seconds), with a grace period.
	OldValidUntil int64 `json:"old_valid_until,omitempty"`
}

// Origins is the body of PUT /v1/vendors/{vendor}/origins.
type Origins struct {
	Origins []string `json:"origins"`
}

// VendorOrigins is the 200 of PUT /v1/vendors/{vendor}/origins.
type VendorOrigins struct {
	Vendor  string   `json:"vendor"`
	Origins []string `json:"origins"` // canonical
}

// Purchase is the body of POST /v1/certificates.
type Purchase struct {
	Tokens    int64  `json:"tokens"`     // rounded up to whole segments
	PublicKey string `json:"public_key"` // the wallet's Ed25519 key, base64url
	Scope     string `json:"scope,omitempty"`
	RequestID string `json:"request_id,omitempty"` // a retry with it returns the first bundle
}

// Bundle is a certificate sold: the signed certificate and its secret K.
type Bundle struct {
	Serial      string `json:"serial"`
	Certificate string `json:"certificate"` // base64url of the signed encoding
	Secret      string `json:"secret"`      // K, base64url
	Segments    int    `json:"segments"`
	SegmentLen  int    `json:"segment_len"`
	Tokens      int    `json:"tokens"`
	Cost        uint64 `json:"cost"` // charged, in minor units of Currency
	Currency    string `json:"currency"`
	ExpiresAt   int64  `json:"expires_at"`
}

// Recover is the body of POST /v1/certificates/recover.
type Recover struct {
	PublicKey string `json:"public_key"`
}

// Recovery is the 200 of POST /v1/certificates/recover: the certificates
// are revoked at once, RecoveredValue is credited at once (and Bundle bought
// from it when it covers a segment), PendingCredit at CreditAt, less the
// claims that arrive until then.
type Recovery struct {
	RecoveredValue int64   `json:"recovered_value"`
	PendingCredit  int64   `json:"pending_credit"`
	CreditAt       int64   `json:"credit_at,omitempty"`
	Bundle         *Bundle `json:"bundle,omitempty"`
}

// Account is the 200 of GET /v1/me.
type Account struct {
	User          string   `json:"user"`
	Balance       int64    `json:"balance"`
	Currency      string   `json:"currency"`
	Certificates  []string `json:"certificates"` // serials of the active certificates
	PendingCredit int64    `json:"pending_credit"`
	PendingUntil  int64    `json:"pending_until,omitempty"`
}

// ReportResult is the 200 of POST /v1/reports (whose body is a
// payword.Report): a result per claim, in claim order.
type ReportResult struct {
	Batch   string        `json:"batch"`
	Results []ClaimResult `json:"results"`
}

// ClaimResult is the verdict on one claim; Amount is the tokens credited.
type ClaimResult struct {
	Auth    string  `json:"auth"`
	Verdict Verdict `json:"verdict"`
	Amount  uint64  `json:"amount"`
}

// Bind is the body of POST /v1/bindings.
type Bind struct {
	Bind payword.Bytes `json:"bind"` // a signed binding (protocol.md §5)
}

// Binding is the 200 of POST /v1/bindings.
type Binding struct {
	Owner string `json:"owner"`
}

// Keys is the 200 of GET /v1/keys.
type Keys struct {
	Keys   []Key            `json:"keys"`
	Signed []payword.Signed `json:"signed"` // the key announcement, signed by each key
}

// Key is one of the agent's public keys.
type Key struct {
	KeyID  string        `json:"kid"`
	Public payword.Bytes `json:"public"`
}

// Statement is a vendor's ledger over [From, To).
type Statement struct {
	Vendor   string        `json:"vendor"`
	From     int64         `json:"from"`
	To       int64         `json:"to"`
	Currency string        `json:"currency"`
	Opening  int64         `json:"opening_balance"`
	Closing  int64         `json:"closing_balance"`
	Credited int64         `json:"credited"`
	Entries  []LedgerEntry `json:"entries"`
}

// LedgerEntry is one line of an account's append-only ledger.
type LedgerEntry struct {
	Seq     int64  `json:"seq"`
	Time    int64  `json:"t"`
	Amount  int64  `json:"amt"` // minor units, signed
	Kind    string `json:"kind"`
	Ref     string `json:"ref"`
	Balance int64  `json:"bal"` // after this entry
}

// PaymentEvent is the body of POST /v1/webhooks/payment.
type PaymentEvent struct {
	User   string `json:"user"` // username
	Amount int64  `json:"amount"`
	Event  string `json:"event"` // the provider's event id: credited once
}

// PaymentReceived is the 200 of POST /v1/webhooks/payment.
type PaymentReceived struct {
	Event     string `json:"event"`
	Duplicate bool   `json:"duplicate"` // a redelivery, which changed nothing
}

// Credit is the body of POST /v1/admin/credit.
type Credit struct {
	User   string `json:"user"` // username
	Amount int64  `json:"amount"`
	Ref    string `json:"ref,omitempty"`
	Event  string `json:"event,omitempty"` // optional idempotency id
}

// Credited is the 200 of POST /v1/admin/credit.
type Credited struct {
	Credited int64 `json:"credited"`
}

// Revoke is the body of POST /v1/admin/revoke: exactly one field.
type Revoke struct {
	Serial *payword.Serial `json:"serial,omitempty"`
	User   string          `json:"user,omitempty"` // username
	Vendor string          `json:"vendor,omitempty"`
}

// Revoked is the 200 of POST /v1/admin/revoke; Certificates counts the
// certificates an account revocation put on the CRL.
type Revoked struct {
	Revoked      bool `json:"revoked"`
	Certificates int  `json:"certificates,omitempty"`
}

// FraudCases is the 200 of GET /v1/admin/fraud.
type FraudCases struct {
	Cases []FraudCase `json:"cases"`
}

// FraudCase is one fraud case; Kind is a Verdict or "double_bind". Owner
// is, for a double-spend or a double binding, the vendor that owned the
// segment before Vendor's claim or binding proved it spent twice.
type FraudCase struct {
	Time   int64  `json:"t"`
	Kind   string `json:"kind"`
	Vendor string `json:"vendor"`
	Serial string `json:"serial"`
	Seg    uint32 `json:"seg"`
	User   string `json:"user"`
	Owner  string `json:"owner,omitempty"`
}

// Disputes is the 200 of GET /v1/disputes: the fraud cases that concern
// the vendor, newest first. Next is the offset of the next page, 0 at
// the end.
type Disputes struct {
	Cases []FraudCase `json:"cases"`
	Next  int         `json:"next,omitempty"`
}

// Claims is the 200 of GET /v1/claims: the vendor's claims with their
// verdicts, newest first. Next is the `before` of the next page, "" at
// the end.
type Claims struct {
	Claims []ClaimRecord `json:"claims"`
	Next   string        `json:"next,omitempty"`
}

// ClaimRecord is one claim (or void) the bank recorded for a vendor.
// Tokens is what it was paid (a void: taken back), Value the same in
// minor units (negative for a void). A claim refused for its signatures
// or its certificate is recorded with 0.
type ClaimRecord struct {
	ID      string  `json:"id"` // the claims stream's id: time order
	Time    int64   `json:"t"`
	Serial  string  `json:"serial"`
	Segment uint32  `json:"seg"`
	Index   uint32  `json:"index"`
	Product string  `json:"product"`
	Verdict Verdict `json:"verdict"` // or "voided"
	Tokens  int64   `json:"tokens"`
	Value   int64   `json:"value"`
}

// Revenue is the 200 of GET /v1/revenue: the vendor's takings per UTC day
// of a period, days without any included, and their totals.
type Revenue struct {
	Vendor   string       `json:"vendor"`
	Currency string       `json:"currency"`
	From     string       `json:"from"` // YYYY-MM-DD, inclusive
	To       string       `json:"to"`   // YYYY-MM-DD, inclusive
	Days     []RevenueDay `json:"days"`
	Claims   int64        `json:"claims"`
	Credited int64        `json:"credited"`
	Voided   int64        `json:"voided"`
}

// RevenueDay is one day of Revenue: the claims paid, the value credited
// for them and the value voids took back (minor units); Net is what the
// day added to the vendor's balance, as the ledger's claims and void
// entries of that day.
type RevenueDay struct {
	Day      string `json:"day"`
	Claims   int64  `json:"claims"`
	Credited int64  `json:"credited"`
	Voided   int64  `json:"voided"`
	Net      int64  `json:"net"`
}

// Users is the 200 of GET /v1/admin/users: readers by username, in
// byte order, from the first after `after` that starts with `q`. Next is
// the `after` of the next page, "" at the end.
type Users struct {
	Users []UserSummary `json:"users"`
	Next  string        `json:"next,omitempty"`
}

// UserSummary is one reader as the operator sees it.
type UserSummary struct {
	Username     string `json:"username"`
	ID           string `json:"id"`
	Balance      int64  `json:"balance"`
	Status       string `json:"status"`
	Certificates int64  `json:"certificates"` // active ones
	Created      int64  `json:"created"`
}

// Vendors is the 200 of GET /v1/admin/vendors, paged as Users.
type Vendors struct {
	Vendors []VendorSummary `json:"vendors"`
	Next    string          `json:"next,omitempty"`
}

// VendorSummary is one vendor as the operator sees it. LastReport is when
// its last report was ingested (0: never) and Lag how late (seconds) the
// oldest claim of that report came after its payment: a gateway whose
// reports lag or stop has a backlog.
type VendorSummary struct {
	Vendor     string `json:"vendor"`
	Balance    int64  `json:"balance"`
	Status     string `json:"status"`
	Fraud      int64  `json:"fraud"`
	LastReport int64  `json:"last_report"`
	Lag        int64  `json:"lag"`
}

// Stats is the 200 of GET /v1/admin/stats: the claims of each of the last
// minutes (oldest first, every minute included) and the sizes an operator
// watches.
type Stats struct {
	Minutes    []MinuteStats `json:"minutes"`
	CRLEntries int64         `json:"crl_entries"`
	FraudCases int64         `json:"fraud_cases"`
	Users      int64         `json:"users"`
	Vendors    int64         `json:"vendors"`
}

// MinuteStats is one minute of Stats: claims recorded, claims paid
// (payments), their net value (minor units), and the delivery delay of
// its claims, mean and largest, in seconds.
type MinuteStats struct {
	Minute  int64   `json:"t"` // Unix seconds of its start
	Claims  int64   `json:"claims"`
	Paid    int64   `json:"paid"`
	Value   int64   `json:"value"`
	LagMean float64 `json:"lag_mean"`
	LagMax  int64   `json:"lag_max"`
}

// Products is the 200 of GET /v1/revenue/products: what each product
// earned since the vendor's first claim (net of voids, minor units),
// highest first. Next is the offset of the next page, 0 at the end.
type Products struct {
	Currency string         `json:"currency"`
	Products []ProductValue `json:"products"`
	Next     int            `json:"next,omitempty"`
}

// ProductValue is one product of Products.
type ProductValue struct {
	Product string `json:"product"`
	Value   int64  `json:"value"`
}

// Settled is the 200 of POST /v1/admin/settle.
type Settled struct {
	Settled  int   `json:"settled"`
	Refunded int64 `json:"refunded"`
}

// Health is the 200 of GET /healthz and GET /readyz, with what each check
// found.
type Health struct {
	OK     bool              `json:"ok"`
	Checks map[string]string `json:"checks,omitempty"`
}

// LedgerCheck is the 200 of GET /v1/admin/ledger/check.
type LedgerCheck struct {
	OK bool `json:"ok"`
}

// Routes is every route of the agent's API, as "METHOD /path" patterns of
// net/http's ServeMux. The agent registers exactly these.
var Routes = []string{
	"GET /healthz",
	"GET /readyz",
	"GET /v1/keys",
	"GET /v1/crl",
	"POST /v1/users",
	"POST /v1/sessions",
	"DELETE /v1/sessions",
	"POST /v1/vendors",
	"GET /v1/vendors/{vendor}/origins",
	"GET /v1/me",
	"POST /v1/certificates",
	"POST /v1/certificates/recover",
	"POST /v1/reports",
	"POST /v1/bindings",
	"GET /v1/statement",
	"GET /v1/revenue",
	"GET /v1/revenue/products",
	"GET /v1/claims",
	"GET /v1/disputes",
	"POST /v1/token",
	"PUT /v1/vendors/{vendor}/origins",
	"POST /v1/webhooks/payment",
	"POST /v1/admin/credit",
	"POST /v1/admin/revoke",
	"GET /v1/admin/fraud",
	"GET /v1/admin/users",
	"GET /v1/admin/vendors",
	"GET /v1/admin/stats",
	"GET /v1/admin/vendors/{vendor}/statement",
	"POST /v1/admin/settle",
	"GET /v1/admin/ledger/check",
}
