package agentapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashwall/hashwall/payword"
)

// Client calls the agent. Its zero credentials call the public endpoints;
// WithToken and WithPassword return a copy that authenticates. A Client is
// safe for concurrent use.
type Client struct {
	base     string
	hc       *http.Client
	token    string // Bearer: a session, a vendor's API token or the admin token
	user     string // Basic, when set
	password string
}

// DefaultTimeout bounds a call when NewClient is given no http.Client.
const DefaultTimeout = 30 * time.Second

// Response size limits: a signed document is bounded by the protocol; a
// statement of a busy vendor may be long.
const (
	maxResponse   = 16 << 20
	maxSignedBody = payword.MaxSignedSize
)

// NewClient calls the agent at base (scheme://host[:port][/prefix]) with hc;
// nil hc: a client with DefaultTimeout.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}
}

// BaseURL is the agent's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// WithToken returns a copy that sends Authorization: Bearer token.
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.token, d.user, d.password = token, "", ""
	return &d
}

// WithPassword returns a copy that sends the user's password with Basic
// auth (each call costs the agent an argon2 check: prefer a session).
func (c *Client) WithPassword(username, password string) *Client {
	d := *c
	d.token, d.user, d.password = "", username, password
	return &d
}

// call sends in (JSON, unless nil) and decodes a 2xx answer into out (a
// *[]byte takes the raw body). A non-2xx answer is an *Error.
func (c *Client) call(ctx context.Context, method, path string, in, out any, limit int64, hdr http.Header) error {
	var body io.Reader
	var raw []byte
	if in != nil {
		var err error
		if raw, err = json.Marshal(in); err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.user != "":
		req.SetBasicAuth(c.user, c.password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the agent at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("reading the agent's answer to %s %s: %w", method, path, err)
	}
	if int64(len(got)) > limit {
		return fmt.Errorf("the agent's answer to %s %s is over %d bytes", method, path, limit)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(got, e) != nil || e.Code == "" {
			e.Message, e.Code = resp.Status, ""
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	switch o := out.(type) {
	case nil:
	case *[]byte:
		*o = got
	case *cacheable:
		o.body, o.maxAge = got, maxAge(resp.Header.Get("Cache-Control"))
	default:
		if err := json.Unmarshal(got, out); err != nil {
			return fmt.Errorf("the agent's answer to %s %s is not the expected JSON: %w", method, path, err)
		}
	}
	return nil
}

func (c *Client) get(ctx context.Context, path string, out any) error {
	return c.call(ctx, http.MethodGet, path, nil, out, maxResponse, nil)
}

func (c *Client) post(ctx context.Context, path string, in, out any) error {
	return c.call(ctx, http.MethodPost, path, in, out, maxResponse, nil)
}

// --- Public -----------------------------------------------------------------

// Healthy asks whether the agent's process serves (GET /healthz).
func (c *Client) Healthy(ctx context.Context) (*Health, error) {
	return c.health(ctx, "/healthz")
}

// Ready asks whether the agent can serve requests now (GET /readyz): its
// store answers and holds its revocation list. Not ready is a 503 *Error
// (store_unavailable) saying what failed.
func (c *Client) Ready(ctx context.Context) (*Health, error) {
	return c.health(ctx, "/readyz")
}

func (c *Client) health(ctx context.Context, path string) (*Health, error) {
	var h Health
	if err := c.get(ctx, path, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Keys fetches the agent's public keys and their signed announcement.
func (c *Client) Keys(ctx context.Context) (*Keys, error) {
	var out Keys
	if err := c.call(ctx, http.MethodGet, "/v1/keys", nil, &out, maxSignedBody, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// CRL fetches the signed revocation-list page after since; open it with
// payword.OpenCRL and the keys the caller trusts. A vendor's token makes the
// page count against the vendor's rate limit.
func (c *Client) CRL(ctx context.Context, since uint64) ([]byte, error) {
	var raw []byte
	err := c.call(ctx, http.MethodGet, "/v1/crl?since="+strconv.FormatUint(since, 10), nil, &raw, maxSignedBody, nil)
	return raw, err
}

// RegisterUser creates a user account.
func (c *Client) RegisterUser(ctx context.Context, q RegisterUser) (*User, error) {
	var out User
	if err := c.post(ctx, "/v1/users", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Login opens a session; use it with WithToken(s.Token).
func (c *Client) Login(ctx context.Context, username, password string) (*Session, error) {
	var out Session
	if err := c.post(ctx, "/v1/sessions", Login{Username: username, Password: password}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout ends the session whose token the client carries.
func (c *Client) Logout(ctx context.Context) error {
	return c.call(ctx, http.MethodDelete, "/v1/sessions", nil, nil, maxResponse, nil)
}

// RegisterVendor registers a vendor (with the admin token, unless the agent
// lets anyone). The answer holds the vendor's API token, shown only once.
func (c *Client) RegisterVendor(ctx context.Context, q RegisterVendor) (*Vendor, error) {
	var out Vendor
	if err := c.post(ctx, "/v1/vendors", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// VendorOrigins fetches the signed document of a vendor's origins, and how
// long the agent lets it be cached (its Cache-Control max-age, -1 when it
// gives none); open it with payword.OpenVendorOrigins. A 404 is an *Error
// with code unknown_vendor.
func (c *Client) VendorOrigins(ctx context.Context, vendor string) ([]byte, time.Duration, error) {
	var out cacheable
	err := c.call(ctx, http.MethodGet, "/v1/vendors/"+url.PathEscape(vendor)+"/origins", nil, &out, payword.MaxOriginsDoc, nil)
	return out.body, out.maxAge, err
}

// cacheable is a raw answer and its Cache-Control max-age.
type cacheable struct {
	body   []byte
	maxAge time.Duration
}

// maxAge reads max-age from a Cache-Control value; -1 when there is none.
func maxAge(cc string) time.Duration {
	for _, d := range strings.Split(cc, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(strings.ToLower(d)), "max-age="); ok {
			if n, err := strconv.ParseUint(v, 10, 31); err == nil {
				return time.Duration(n) * time.Second
			}
		}
	}
	return -1
}

// --- Users (session token or password) ---------------------------------------

// Me returns the user's account.
func (c *Client) Me(ctx context.Context) (*Account, error) {
	var out Account
	if err := c.get(ctx, "/v1/me", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Buy buys a certificate of at least tokens tokens made out to pub; scope
// is "" (any vendor) or a specific vendor's id. A purchase whose answer is
// lost in transit is sent again, up to three times, with the same request
// id, so the agent charges it once.
func (c *Client) Buy(ctx context.Context, tokens int64, pub ed25519.PublicKey, scope string) (*Bundle, error) {
	id := make([]byte, 12)
	rand.Read(id)
	q := Purchase{Tokens: tokens, PublicKey: base64.RawURLEncoding.EncodeToString(pub), Scope: scope,
		RequestID: "buy-" + hex.EncodeToString(id)}
	var err error
	for range 3 {
		var out Bundle
		if err = c.post(ctx, "/v1/certificates", q, &out); err == nil {
			return &out, nil
		}
		if _, refused := errors.AsType[*Error](err); refused || ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// Recover revokes every certificate of the user and credits their
// unclaimed value to a certificate made out to pub (see Recovery).
func (c *Client) Recover(ctx context.Context, pub ed25519.PublicKey) (*Recovery, error) {
	var out Recovery
	if err := c.post(ctx, "/v1/certificates/recover", Recover{PublicKey: base64.RawURLEncoding.EncodeToString(pub)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// --- Vendors (API token) -----------------------------------------------------

// Report ships a batch of claims. The caller checks the answer against what
// it sent: the batch id, and a result with a known verdict for each claim.
func (c *Client) Report(ctx context.Context, r *payword.Report) (*ReportResult, error) {
	var out ReportResult
	if err := c.call(ctx, http.MethodPost, "/v1/reports", r, &out, maxResponse, nil); err != nil {
		return nil, err
	}
	return &out, nil
}

// Bind registers a signed segment binding. A segment another vendor owns is
// a 409 *Error with code segment_owned and Owner set.
func (c *Client) Bind(ctx context.Context, binding []byte) (*Binding, error) {
	var out Binding
	if err := c.post(ctx, "/v1/bindings", Bind{Bind: binding}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Statement is the authenticated vendor's statement over [from, to); zero
// times take the agent's defaults (the 30 days up to now).
func (c *Client) Statement(ctx context.Context, from, to time.Time) (*Statement, error) {
	var out Statement
	if err := c.get(ctx, "/v1/statement"+period(from, to, false), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// StatementCSV is Statement as CSV.
func (c *Client) StatementCSV(ctx context.Context, from, to time.Time) ([]byte, error) {
	var raw []byte
	err := c.get(ctx, "/v1/statement"+period(from, to, true), &raw)
	return raw, err
}

// Revenue is the vendor's takings per UTC day from the day of from to the
// day of to, both included (zero: the last 30 days).
func (c *Client) Revenue(ctx context.Context, from, to time.Time) (*Revenue, error) {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.DateOnly))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.DateOnly))
	}
	var out Revenue
	if err := c.get(ctx, withQuery("/v1/revenue", q), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Products is a page of what each of the vendor's products earned, highest
// first, from offset (limit 0: the agent's default).
func (c *Client) Products(ctx context.Context, offset, limit int) (*Products, error) {
	var out Products
	if err := c.get(ctx, withQuery("/v1/revenue/products", pageQuery("offset", offset, limit)), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Claims is a page of the vendor's claims, newest first, before the id
// before ("": from the newest).
func (c *Client) Claims(ctx context.Context, before string, limit int) (*Claims, error) {
	q := pageQuery("", 0, limit)
	if before != "" {
		q.Set("before", before)
	}
	var out Claims
	if err := c.get(ctx, withQuery("/v1/claims", q), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Disputes is a page of the fraud cases that concern the vendor, newest
// first, from offset.
func (c *Client) Disputes(ctx context.Context, offset, limit int) (*Disputes, error) {
	var out Disputes
	if err := c.get(ctx, withQuery("/v1/disputes", pageQuery("offset", offset, limit)), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateToken replaces the vendor's API token; the one in use keeps
// working for grace (0: it stops at once).
func (c *Client) RotateToken(ctx context.Context, grace time.Duration) (*VendorToken, error) {
	var out VendorToken
	var in any
	if grace > 0 {
		in = RotateToken{GraceSeconds: int64((grace + time.Second - 1) / time.Second)}
	}
	if err := c.post(ctx, "/v1/token", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetOrigins replaces the vendor's origins.
func (c *Client) SetOrigins(ctx context.Context, vendor string, origins []string) (*VendorOrigins, error) {
	var out VendorOrigins
	if origins == nil {
		origins = []string{} // nil is refused: say "none" explicitly
	}
	err := c.call(ctx, http.MethodPut, "/v1/vendors/"+url.PathEscape(vendor)+"/origins", Origins{Origins: origins}, &out, maxResponse, nil)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// --- Payment provider --------------------------------------------------------

// PaymentWebhook delivers a payment event signed with the webhook secret.
func (c *Client) PaymentWebhook(ctx context.Context, secret []byte, ev PaymentEvent) (*PaymentReceived, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	var out PaymentReceived
	err = c.call(ctx, http.MethodPost, "/v1/webhooks/payment", json.RawMessage(body), &out, maxResponse,
		http.Header{SignatureHeader: {"sha256=" + hex.EncodeToString(mac.Sum(nil))}})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// --- Admin (admin token) -----------------------------------------------------

// Credit credits a user's balance.
func (c *Client) Credit(ctx context.Context, q Credit) (*Credited, error) {
	var out Credited
	if err := c.post(ctx, "/v1/admin/credit", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Revoke revokes a certificate, a user or a vendor.
func (c *Client) Revoke(ctx context.Context, q Revoke) (*Revoked, error) {
	var out Revoked
	if err := c.post(ctx, "/v1/admin/revoke", q, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Fraud lists the latest limit fraud cases (0: the agent's default).
func (c *Client) Fraud(ctx context.Context, limit int) (*FraudCases, error) {
	path := "/v1/admin/fraud"
	if limit > 0 {
		path += "?limit=" + strconv.Itoa(limit)
	}
	var out FraudCases
	if err := c.get(ctx, path, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Users is a page of readers whose username starts with q, after the
// username after ("": from the first).
func (c *Client) Users(ctx context.Context, q, after string, limit int) (*Users, error) {
	var out Users
	if err := c.get(ctx, withQuery("/v1/admin/users", searchQuery(q, after, limit)), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// VendorList is a page of vendors whose id starts with q, after the id
// after.
func (c *Client) VendorList(ctx context.Context, q, after string, limit int) (*Vendors, error) {
	var out Vendors
	if err := c.get(ctx, withQuery("/v1/admin/vendors", searchQuery(q, after, limit)), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Stats is the bank's figures for the last minutes (0: the agent's default).
func (c *Client) Stats(ctx context.Context, minutes int) (*Stats, error) {
	q := url.Values{}
	if minutes != 0 {
		q.Set("minutes", strconv.Itoa(minutes))
	}
	var out Stats
	if err := c.get(ctx, withQuery("/v1/admin/stats", q), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func searchQuery(q, after string, limit int) url.Values {
	v := pageQuery("", 0, limit)
	if q != "" {
		v.Set("q", q)
	}
	if after != "" {
		v.Set("after", after)
	}
	return v
}

// VendorStatement is a vendor's statement over [from, to), for the admin.
func (c *Client) VendorStatement(ctx context.Context, vendor string, from, to time.Time) (*Statement, error) {
	var out Statement
	if err := c.get(ctx, "/v1/admin/vendors/"+url.PathEscape(vendor)+"/statement"+period(from, to, false), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// VendorStatementCSV is VendorStatement as CSV.
func (c *Client) VendorStatementCSV(ctx context.Context, vendor string, from, to time.Time) ([]byte, error) {
	var raw []byte
	err := c.get(ctx, "/v1/admin/vendors/"+url.PathEscape(vendor)+"/statement"+period(from, to, true), &raw)
	return raw, err
}

// Settle runs the settlement of expired certificates now.
func (c *Client) Settle(ctx context.Context) (*Settled, error) {
	var out Settled
	if err := c.post(ctx, "/v1/admin/settle", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CheckLedger checks that every balance is the sum of its ledger entries
// and that the books balance; a mismatch is a 500 *Error ledger_mismatch.
func (c *Client) CheckLedger(ctx context.Context) (*LedgerCheck, error) {
	var out LedgerCheck
	if err := c.get(ctx, "/v1/admin/ledger/check", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// period is the query of a statement.
// pageQuery is a page's query: offset under its name (if any and not 0)
// and limit (if not 0).
func pageQuery(name string, offset, limit int) url.Values {
	q := url.Values{}
	if name != "" && offset != 0 {
		q.Set(name, strconv.Itoa(offset))
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return q
}

// withQuery is path with q, if q has anything.
func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

func period(from, to time.Time, csv bool) string {
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", strconv.FormatInt(from.Unix(), 10))
	}
	if !to.IsZero() {
		q.Set("to", strconv.FormatInt(to.Unix(), 10))
	}
	if csv {
		q.Set("format", "csv")
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
