// Package paywall is the Hashwall gateway: the `paywall` Caddy HTTP handler.
// It answers 402 on priced paths, verifies PayWord payments locally, records
// each accepted payment and its claim in the vendor's Redis in one Lua
// script, grants access with a short-lived JWT, and reports claims to the
// agent in the background.
package paywall

import (
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler is the `http.handlers.paywall` module. The JSON fields are the
// source of truth; the Caddyfile only fills them.
type Handler struct {
	// Vendor is this site's vendor id at the agent.
	Vendor string `json:"vendor"`
	// APIToken authenticates reports and bindings at the agent
	// (placeholders such as {env.HASHWALL_API_TOKEN} are replaced).
	APIToken string `json:"api_token,omitempty"`
	// Agent is the agent's base URL, advertised in challenges: https, or
	// plain http to a loopback address.
	Agent string `json:"agent"`
	// InsecureAgent allows a plain-http Agent on another host, where
	// anyone on the path could forge its keys, revocations and answers.
	InsecureAgent bool `json:"insecure_agent,omitempty"`
	// Keys pins the trusted agent keys: key id → base64url Ed25519 public
	// key. When empty, the keys are learnt at start from the agent's
	// /v1/keys, only over https or loopback, and pinned in the vendor's
	// Redis. Later keys are taken only when announced under the signature
	// of a key already trusted; a key id, once pinned, never changes.
	Keys map[string]string `json:"keys,omitempty"`
	// Redis is the vendor's store: redis://, rediss:// or unix:// for one
	// server, redis-sentinel://…?master_name= for Sentinel, redis-cluster://
	// for Cluster (more nodes with &addr=); see internal/redisurl.
	Redis string `json:"redis"`
	// GrantKey signs grants (HS256); at least 32 bytes, shared by the
	// vendor's gateways. Use a placeholder such as {env.HASHWALL_GRANT_KEY}.
	GrantKey string `json:"grant_key"`
	// OldGrantKeys still verify the grants they signed: rotate by making
	// the new key GrantKey and the old one an OldGrantKey until the
	// longest grant it signed (ttl) has expired; no reader pays again.
	OldGrantKeys []string `json:"old_grant_keys,omitempty"`
	// TTL is the default grant lifetime (default 24h).
	TTL caddy.Duration `json:"ttl,omitempty"`
	// Mode is the default reporting mode: almost_online (default), batch
	// or online.
	Mode string `json:"mode,omitempty"`
	// Realm is the challenge's realm (default: the vendor id).
	Realm string `json:"realm,omitempty"`
	// Rules price paths; the first matching rule wins.
	Rules []Rule `json:"rules,omitempty"`
	// Free lists path patterns never priced, checked before Rules.
	Free []string `json:"free,omitempty"`
	// UpstreamPrice lets the upstream price paths no rule matches with a
	// `Paywall-Price: <tokens>` response header, read before any body byte
	// reaches the client.
	UpstreamPrice bool `json:"upstream_price,omitempty"`
	// Template is a file holding the html/template of the 402 page.
	Template string `json:"template,omitempty"`
	// TokenValue, what a token is worth, lets the 402 page show prices in money.
	TokenValue *TokenValue `json:"token_value,omitempty"`
	// CRL chooses how revocations arrive: "agent" (default) pulls the
	// agent's /v1/crl into memory and the vendor's Redis; "redis" reads and
	// subscribes to the agent's list when the vendor's Redis is the agent's.
	CRL string `json:"crl,omitempty"`
	// CRLInterval is the pull interval of the agent CRL (default 1s).
	CRLInterval caddy.Duration `json:"crl_interval,omitempty"`
	// CRLMaxAge is how long payments are accepted without a successful CRL
	// sync (default 10m): past it they get 503, since a certificate revoked
	// meanwhile could not be refused. Grants are still served.
	CRLMaxAge caddy.Duration `json:"crl_max_age,omitempty"`
	// BatchInterval is how often batch-mode claims are shipped (default 1m,
	// at most maxBatchInterval).
	BatchInterval caddy.Duration `json:"batch_interval,omitempty"`
	// Ephemeral lets the gateway run on a Redis that may lose acknowledged
	// writes (no append-only file, or appendfsync other than always), for
	// demos and tests: a crash of that Redis loses the claims of accepted
	// payments (the vendor's money) and lets spent tokens be spent again.
	// Without it, Provision refuses such a store.
	Ephemeral bool `json:"ephemeral,omitempty"`
	// OfflineSegments is how many new segments of one certificate the
	// vendor takes in almost_online or batch mode on the reader's binding
	// alone (default 1; -1: none); each further segment is registered with
	// the agent before its first payment, as in online mode. It bounds what
	// a reader can double-spend at this vendor to OfflineSegments × m
	// tokens per certificate (see exposure.go).
	OfflineSegments int `json:"offline_segments,omitempty"`
	// Replicas is how many replicas of the vendor's Redis must hold a
	// payment (its authorization record and claim) or a void before the
	// gateway answers it (WAIT after the script): past ReplicaTimeout
	// (default 500ms, at most 1s) with fewer, the payment gets 503
	// unavailable, and the wallet's repeat of it is answered once it is
	// on them. A failover then never loses an accepted payment. Default 1
	// with a redis-sentinel:// URL, else none; -1: none.
	Replicas       int            `json:"replicas,omitempty"`
	ReplicaTimeout caddy.Duration `json:"replica_timeout,omitempty"`

	lines     map[string]caddyfile.Token // where the Caddyfile set each setting (see checks)
	logger    *zap.Logger
	be        *backend
	poolKey   backendConfig
	grants    *granter
	metrics   *metrics
	page      *template.Template
	rules     []Rule // patterns and scopes lower-cased
	free      []string
	ttl       time.Duration
	crlMaxAge time.Duration
	mode      string
	realm     string

	offlineSegments int // OfflineSegments filled in; -1: none
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.paywall",
		New: func() caddy.Module { return new(Handler) },
	}
}

const (
	defaultTTL           = 24 * time.Hour
	defaultCRLInterval   = time.Second
	defaultCRLMaxAge     = 10 * time.Minute
	defaultBatchInterval = time.Minute
	minGrantKey          = 32
)

// maxBatchInterval is the gateway's promise to the agent (agent.MaxBatchInterval):
// a claim is shipped within it, so a recovery credited after the agent's
// report window (10m by default) has seen the claims of the certificates it revokes.
const maxBatchInterval = 5 * time.Minute

// Provision wires the handler: secrets from placeholders, compiled rules, the
// 402 page, and the shared backend (Redis, CRL, reporting workers).
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	repl := caddy.NewReplacer()
	apiToken := repl.ReplaceKnown(h.APIToken, "")
	grantKey := repl.ReplaceKnown(h.GrantKey, "")
	redisURL := repl.ReplaceKnown(h.Redis, "")

	h.ttl = time.Duration(h.TTL)
	if h.ttl == 0 {
		h.ttl = defaultTTL
	}
	h.crlMaxAge = time.Duration(h.CRLMaxAge)
	if h.crlMaxAge == 0 {
		h.crlMaxAge = defaultCRLMaxAge
	}
	h.offlineSegments = h.OfflineSegments
	switch {
	case h.offlineSegments == 0:
		h.offlineSegments = defaultOfflineSegments
	case h.offlineSegments < 0:
		h.offlineSegments = -1
	}
	h.mode = h.Mode
	if h.mode == "" {
		h.mode = ModeAlmostOnline
	}
	h.realm = h.Realm
	if h.realm == "" {
		h.realm = h.Vendor
	}
	h.rules = make([]Rule, len(h.Rules))
	for i, r := range h.Rules {
		r.Pattern, r.Scope = asciiLower(r.Pattern), asciiLower(r.Scope)
		if r.TTL == 0 {
			r.TTL = caddy.Duration(h.ttl)
		}
		if r.Mode == "" {
			r.Mode = h.mode
		}
		if r.Price > payword.DefaultSegmentLen {
			h.logger.Warn("price exceeds the default segment length; wallets with shorter segments cannot pay it",
				zap.String("pattern", r.Pattern), zap.Uint32("price", r.Price))
		}
		h.rules[i] = r
	}
	go asciiFolding() // the Unicode table of canonicalPath, built once per process (~0.1 s)
	h.free = make([]string, len(h.Free))
	for i, f := range h.Free {
		h.free[i] = asciiLower(f)
	}

	var err error
	if h.page, err = loadPage(h.Template); err != nil {
		return err
	}
	keys := [][]byte{[]byte(grantKey)}
	for _, k := range h.OldGrantKeys {
		keys = append(keys, []byte(repl.ReplaceKnown(k, "")))
	}
	for _, k := range keys {
		if len(k) < minGrantKey {
			return fmt.Errorf("grant keys must be at least %d bytes (is the placeholder set?)", minGrantKey)
		}
	}
	h.grants = newGranter(keys, h.Vendor)
	if h.metrics, err = newMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	h.metrics.crlMaxAge = h.crlMaxAge

	pinned, err := parseKeys(h.Keys)
	if err != nil {
		return err
	}
	crlInterval, batchInterval := time.Duration(h.CRLInterval), time.Duration(h.BatchInterval)
	if crlInterval <= 0 {
		crlInterval = defaultCRLInterval
	}
	if batchInterval <= 0 {
		batchInterval = defaultBatchInterval
	}
	h.poolKey = backendConfig{
		Vendor: h.Vendor, Redis: redisURL, Agent: strings.TrimRight(h.Agent, "/"), APIToken: apiToken,
		CRL: h.CRL, Keys: keysFingerprint(pinned), CRLInterval: crlInterval, BatchInterval: batchInterval,
		Ephemeral: h.Ephemeral, Replicas: h.Replicas, ReplicaTimeout: time.Duration(h.ReplicaTimeout),
	}
	if err := h.validate(); err != nil {
		return err
	}
	val, loaded, err := backends.LoadOrNew(h.poolKey, func() (caddy.Destructor, error) {
		return newBackend(h.poolKey, pinned, h.logger, h.metrics)
	})
	if err != nil {
		return err
	}
	h.be = val.(*backend)
	if loaded {
		h.be.metrics.add(h.metrics)
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error { return h.validate() }

func (h *Handler) validate() error {
	for _, c := range h.checks() {
		if c.err != nil {
			return c.err
		}
	}
	return nil
}

// check is the verdict on one setting, named as the Caddyfile names it
// ("price#2" for the third rule, "key:<kid>"), so that the parser can
// report it with its line.
type check struct {
	opt string
	err error
}

// checks checks every setting, in the order of the errors' importance.
func (h *Handler) checks() []check {
	cs := []check{
		{"vendor", checkVendor(h.Vendor)},
		{"agent", checkAgent(h.Agent, h.InsecureAgent)},
		{"redis", required("redis", h.Redis)},
		{"grant_key", checkGrantKey(h.GrantKey)},
		{"grant_key", checkOldGrantKeys(h.OldGrantKeys)},
		{"ttl", positive("ttl", h.TTL)},
		{"crl_max_age", positive("crl_max_age", h.CRLMaxAge)},
		{"batch_interval", checkBatchInterval(h.BatchInterval)},
		{"mode", checkMode(h.Mode)},
		{"crl", checkCRL(h.CRL)},
		{"token_value", checkTokenValue(h.TokenValue)},
		{"replicas", redisurl.CheckReplication(h.Replicas, time.Duration(h.ReplicaTimeout))},
	}
	if len(h.Rules) > maxRules || len(h.Free) > maxRules {
		cs = append(cs, check{"price", fmt.Errorf("at most %d rules and %d free patterns", maxRules, maxRules)})
	}
	for i, r := range h.Rules {
		err := checkRule(r)
		if err == nil {
			err = checkCollision(h.Rules[:i], r)
		}
		cs = append(cs, check{"price#" + strconv.Itoa(i), err})
	}
	for i, f := range h.Free {
		cs = append(cs, check{"free#" + strconv.Itoa(i), checkPattern(f)})
	}
	for kid, pub := range h.Keys {
		_, err := parseKeys(map[string]string{kid: pub})
		cs = append(cs, check{"key:" + kid, err})
	}
	return cs
}

// The checks of single settings, shared by validate and the Caddyfile
// parser, which reports them with their line.

func checkVendor(v string) error {
	if !payword.ValidID(v) {
		return fmt.Errorf("vendor %q is not a valid id (1-64 of A-Z a-z 0-9 . _ - : @)", v)
	}
	return nil
}

// checkAgent wants an https URL: the agent's keys, revocation list and
// answers to reports decide what the gateway accepts. Plain http is for
// loopback, or with insecure_agent.
func checkAgent(agent string, insecure bool) error {
	u, err := url.Parse(agent)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fmt.Errorf("agent %q must be an https URL", agent)
	}
	if !insecure && !authenticatedAgent(agent) {
		return fmt.Errorf("agent %q: plain http only to a loopback address (or set insecure_agent)", agent)
	}
	return nil
}

// checkGrantKey checks a literal key; a placeholder is checked once
// replaced, in Provision.
func checkGrantKey(k string) error {
	if err := required("grant_key", k); err != nil {
		return err
	}
	if !strings.Contains(k, "{") && len(k) < minGrantKey {
		return fmt.Errorf("grant_key must be at least %d bytes", minGrantKey)
	}
	return nil
}

func required(opt, v string) error {
	if v == "" {
		return fmt.Errorf("%s required", opt)
	}
	return nil
}

func positive(opt string, d caddy.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s must be positive", opt)
	}
	return nil
}

func checkBatchInterval(d caddy.Duration) error {
	if time.Duration(d) > maxBatchInterval {
		return fmt.Errorf("batch_interval must be at most %v (the agent credits a recovery once that has passed)", maxBatchInterval)
	}
	return nil
}

func checkMode(m string) error {
	if !validMode(m) {
		return fmt.Errorf("unknown mode %q (almost_online, batch or online)", m)
	}
	return nil
}

func checkCRL(c string) error {
	if c != "" && c != crlFromAgent && c != crlFromRedis {
		return fmt.Errorf("crl must be %q or %q", crlFromAgent, crlFromRedis)
	}
	return nil
}

func checkOldGrantKeys(keys []string) error {
	for _, k := range keys {
		if err := checkGrantKey(k); err != nil {
			return fmt.Errorf("old %w", err)
		}
	}
	return nil
}

func checkRule(r Rule) error {
	if err := checkPattern(r.Pattern); err != nil {
		return err
	}
	if r.Price < 1 || r.Price > MaxPrice {
		return fmt.Errorf("price of %s must be 1..%d tokens (one segment)", r.Pattern, MaxPrice)
	}
	if r.Scope != "" {
		if err := checkPattern(r.Scope); err != nil {
			return err
		}
		if !strings.HasSuffix(r.Scope, "/") {
			return fmt.Errorf("scope %q must end with /", r.Scope)
		}
	}
	if r.TTL < 0 {
		return fmt.Errorf("ttl of %s must be positive", r.Pattern)
	}
	return checkMode(r.Mode)
}

// checkCollision refuses a rule whose products an earlier rule already
// prices (the same pattern): the first matching rule wins, so it would
// never apply. Rules of one scope at different prices are allowed: a
// grant opens only pages at most as dear as what it paid.
func checkCollision(earlier []Rule, r Rule) error {
	for _, e := range earlier {
		if e.Pattern == r.Pattern {
			return fmt.Errorf("price %s is given twice: the first rule always wins", r.Pattern)
		}
	}
	return nil
}

// Cleanup releases the shared backend; the last user stops its workers.
func (h *Handler) Cleanup() error {
	if h.be == nil {
		return nil
	}
	h.be.metrics.remove(h.metrics)
	h.be = nil
	_, err := backends.Delete(h.poolKey)
	return err
}

// ServeHTTP answers the pay form's path itself (never priced or passed
// on), and serves every other request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.URL.Path == payPath {
		return h.servePayForm(w, r, next)
	}
	return h.serve(w, r, next)
}

// serve prices the request, then passes it on with a valid grant or an
// accepted payment, or answers 402.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	clean, lower, err := canonicalPath(r.URL)
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err)
	}
	// A trailing slash names the same resource (a directory): both forms
	// get one price and one product, and only the forwarded path keeps it.
	fwd := clean
	if p := r.URL.Path; clean != "/" && strings.HasSuffix(p, "/") {
		fwd = p // already clean and slashed: no copy
		if len(p) != len(clean)+1 || p[:len(clean)] != clean {
			fwd = clean + "/"
		}
	}
	for _, f := range h.free {
		if match(f, lower) {
			r.URL.Path, r.URL.RawPath = fwd, ""
			setPlaceholders(r, nil)
			return next.ServeHTTP(w, r)
		}
	}
	o, ok := h.price(clean, lower, fwd)
	if !ok && !h.UpstreamPrice {
		setPlaceholders(r, nil)
		return next.ServeHTTP(w, r)
	}
	// The upstream serves exactly the path that was priced.
	r.URL.Path, r.URL.RawPath = fwd, ""
	if isPreflight(r) {
		// Asking the upstream would hand out its header for a page not
		// paid for: the gateway answers the preflight itself.
		setPlaceholders(r, nil)
		preflight(w)
		return nil
	}
	if !ok {
		return h.serveUpstreamPriced(w, r, next, clean)
	}
	if o.Product == "" {
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("%w: path too long for a product id", errAmbiguousPath))
	}
	hdr, isPayment, err := paymentHeader(r)
	if g := h.grantFor(r, o.Product, o.Price); g != nil {
		if isPayment {
			h.notCharged(w) // the grant opens it; the payment stays unspent
		}
		setPlaceholders(r, g)
		return next.ServeHTTP(private(w), r)
	}
	if err != nil {
		return h.reject(w, o, err)
	}
	if isPayment {
		return h.servePaid(w, r, next, hdr, o)
	}
	return h.challenge(w, r, o)
}

// price returns the offer for a clean path. The path and its trailing-slash
// form name one resource, so both are matched and the dearer first match
// wins; a scope is matched against the trailing-slash form, so both forms
// get one product too. fwd is the path forwarded (clean, or clean and its
// slash), the product of a scope that is the path's own prefix.
func (h *Handler) price(clean, lower, fwd string) (offer, bool) {
	plain, slash := -1, -1
	hasSlash := clean != "/" // the path has a trailing-slash form
	for i, rule := range h.rules {
		if plain < 0 && match(rule.Pattern, lower) {
			plain = i
		}
		if slash < 0 && hasSlash && matchSlash(rule.Pattern, lower, true) {
			slash = i
		}
		if plain >= 0 && (slash >= 0 || !hasSlash) {
			break
		}
	}
	i := plain
	if i < 0 || slash >= 0 && h.rules[slash].Price > h.rules[plain].Price {
		i = slash
	}
	if i < 0 {
		return offer{}, false
	}
	rule := h.rules[i]
	o := offer{Price: rule.Price, TTL: time.Duration(rule.TTL), Mode: rule.Mode, Rule: h.Rules[i].Pattern}
	prod := clean
	if rule.Scope != "" {
		switch n := scopePrefix(rule.Scope, lower, hasSlash); {
		case n > len(clean) && len(fwd) == n:
			prod = fwd
		case n > len(clean):
			prod = clean + "/"
		case n > 0:
			prod = clean[:n]
		}
	}
	o.Product, _ = productID(prod)
	if !payword.ValidProduct(o.Product) {
		o.Product = ""
	}
	return o, true
}

// paymentHeader returns the request's PayWord authorization, if any. More
// than one Authorization header is ambiguous and refused.
func paymentHeader(r *http.Request) (string, bool, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) > 1 {
		return "", false, fmt.Errorf("%w: more than one Authorization header", payword.ErrMalformed)
	}
	if len(vals) == 0 {
		return "", false, nil
	}
	scheme, _, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, payword.Scheme) {
		return "", false, nil
	}
	// The payment is for us, not the upstream.
	r.Header.Del("Authorization")
	return vals[0], true, nil
}

// reject answers a refused payment with a precise status and a
// machine-readable Payment-Error code; nothing was spent.
func (h *Handler) reject(w http.ResponseWriter, o offer, err error) error {
	status, code := classify(err)
	h.metrics.payments.WithLabelValues(string(code)).Inc()
	w.Header().Set(payword.ErrorHeader, string(code))
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusPaymentRequired {
		w.Header().Set("WWW-Authenticate", h.challengeFor(o).String())
	}
	return caddyhttp.Error(status, err)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
