// Package agent is Hashwall's bank (docs/protocol.md; its API is
// docs/agent-api.md, its wire types package agentapi): it registers users and
// vendors, sells certificates, ingests vendors' reports and settles their
// disputes, publishes the CRL and keeps an append-only ledger, all over Redis
// and behind one http.Handler.
package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
)

// Config is everything the agent needs. Redis, SigningKeys and MasterKey are
// required; the rest has defaults.
type Config struct {
	Settings // the tunables shared with `hashwall agent` and paywall_agent

	Redis         redis.UniversalClient
	SigningKeys   []payword.SigningKey // the first one signs; all are published
	MasterKey     []byte               // 32 bytes; encrypts certificate secrets at rest, never stored in Redis
	OldMasterKeys [][]byte             // previous master keys, to open secrets sealed before a rotation

	AdminToken    string // Bearer token of the admin endpoints; empty disables them
	WebhookSecret []byte // HMAC key of the payment-provider webhook; empty disables it

	SessionTTL time.Duration // default 24 hours
	Argon      ArgonParams   // password hashing cost, default DefaultArgon

	// ClientIP returns a request's client address for the login throttle
	// (default: the connection's remote address).
	ClientIP func(*http.Request) string
	// TLS tells whether a request came over TLS, for the pages' Secure
	// cookies (default: r.TLS != nil). Like ClientIP it trusts no
	// forwarded header: a server in front that terminates TLS says so here.
	TLS func(*http.Request) bool

	Now     func() time.Time      // default time.Now
	Logger  *zap.Logger           // default no-op
	Metrics prometheus.Registerer // default none
}

// Agent is the bank. It is an http.Handler.
type Agent struct {
	cfg     Config
	rdb     redis.UniversalClient
	rep     redisurl.Replication // what run waits for
	prefix  string               // of every agent key (keyPrefix)
	pkeys   []string             // the prefix as the scripts' KEYS
	keys    payword.KeySet
	signer  payword.SigningKey
	master  *sealer
	admin   [32]byte // SHA-256 of the admin token
	mux     *http.ServeMux
	certs   *certCache
	binds   *bindCache
	metrics *metrics
	log     *zap.Logger
	argon   chan struct{} // bounds concurrent argon2 computations (memory)
	dummy   string        // a password hash checked for unknown users
	crlRate crlLimits     // GET /v1/crl
	pages   http.Handler  // the web pages (web_pages.go)
	site    *web.Site
	hosted  hostedState // hosted wallets' keys and certificates in memory
}

// New checks the configuration and Redis (durability, scripts) and returns the agent.
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	a := &Agent{cfg: cfg, rdb: cfg.Redis, keys: payword.KeySet{}, signer: cfg.SigningKeys[0], log: cfg.Logger}
	a.prefix = keyPrefix(a.rdb)
	a.pkeys = []string{a.prefix}
	for _, k := range cfg.SigningKeys {
		if err := a.keys.Add(k.ID, k.Public()); err != nil {
			return nil, err
		}
	}
	var err error
	if a.master, err = newSealer(cfg.MasterKey, cfg.OldMasterKeys...); err != nil {
		return nil, err
	}
	if cfg.AdminToken != "" {
		a.admin = sha256.Sum256([]byte(cfg.AdminToken))
	}
	if err := checkDurable(ctx, a.rdb); err != nil {
		if !cfg.Ephemeral {
			return nil, fmt.Errorf("agent: refusing to start: %w (set Ephemeral / --ephemeral for a throwaway store)", err)
		}
		a.log.Warn("REDIS MAY LOSE ACKNOWLEDGED WRITES: running on an ephemeral store", zap.Error(err))
	}
	a.rep = redisurl.NewReplication(a.rdb, cfg.Replicas, time.Duration(cfg.ReplicaTimeout))
	if a.rep.Replicas > 0 {
		a.log.Info("writes are acknowledged once on replicas", zap.Int("replicas", a.rep.Replicas), zap.Duration("timeout", a.rep.Timeout))
	}
	if err := loadScripts(ctx, a.rdb); err != nil {
		return nil, fmt.Errorf("agent: loading Lua scripts: %w", err)
	}
	if err := a.indexNames(ctx); err != nil {
		return nil, fmt.Errorf("agent: indexing the accounts' names: %w", err)
	}
	if a.metrics, err = newMetrics(cfg.Metrics, a); err != nil {
		return nil, err
	}
	a.certs = newCertCache(a)
	a.binds = newBindCache()
	a.argon = make(chan struct{}, 4)
	a.dummy = cfg.Argon.hashPassword(randomHex(16))
	a.mux = a.routes()
	if a.pages, err = a.pageRoutes(); err != nil {
		return nil, err
	}
	return a, nil
}

func (c *Config) fill() error {
	switch {
	case c.Redis == nil:
		return errors.New("agent: no Redis client")
	case len(c.SigningKeys) == 0:
		return errors.New("agent: no signing key")
	case len(c.MasterKey) != 32:
		return errors.New("agent: master key must be 32 bytes")
	}
	if err := c.Settings.Validate(); err != nil && !errors.Is(err, ErrShortReportWindow) {
		return err
	}
	c.Settings = c.Settings.WithDefaults()
	if c.SessionTTL == 0 {
		c.SessionTTL = 24 * time.Hour
	}
	if c.Argon == (ArgonParams{}) {
		c.Argon = DefaultArgon
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

func loadScripts(ctx context.Context, rdb redis.UniversalClient) error {
	for _, s := range []*redis.Script{registerUser, registerVendor, rotateToken, credit, purchase,
		recoverCerts, applyRecovered, loginReserve, loginRelease, revokeCert, revokeAccount, bind, settle, ingest, crlPage, pruneCRL, ledgerCheck, hostedReserve, unlock} {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			return err
		}
	}
	return nil
}

// ServeHTTP serves the agent's API. Unknown paths and methods get the
// mux's status (404, 405 with Allow) with a JSON body like every error.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := a.mux.Handler(r)
	if pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	st := &statusOnly{header: w.Header()}
	h.ServeHTTP(st, r)
	writeJSON(w, st.code, fail(st.code, agentapi.CodeNoRoute, http.StatusText(st.code)))
}

// statusOnly keeps the status and headers of the mux's plain-text errors.
type statusOnly struct {
	header http.Header
	code   int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int)        { s.code = code }

// Keys returns the agent's public keys.
func (a *Agent) Keys() payword.KeySet { return a.keys }

func (a *Agent) now() time.Time { return a.cfg.Now() }

func validCurrency(s string) bool {
	if len(s) == 0 || len(s) > 8 {
		return false
	}
	for _, c := range s {
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
