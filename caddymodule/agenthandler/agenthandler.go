// Package agenthandler is the `paywall_agent` Caddy HTTP handler: the
// Hashwall agent (the bank) served by Caddy, with its TLS and logging.
package agenthandler

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agent"
	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves the agent's API under /v1/ and passes other requests on.
// Secret fields accept placeholders such as {env.HASHWALL_MASTER_KEY}.
type Handler struct {
	Redis         string   `json:"redis,omitempty"`
	SigningKeys   []string `json:"signing_keys,omitempty"` // key files; the first signs
	MasterKey     string   `json:"master_key,omitempty"`   // base64 of 32 bytes
	OldMasterKeys []string `json:"old_master_keys,omitempty"`
	AdminToken    string   `json:"admin_token,omitempty"`
	WebhookSecret string   `json:"webhook_secret,omitempty"`
	// Pages serves the readers' web pages (docs/web.md) for every request
	// outside the API, instead of passing it on.
	Pages bool `json:"pages,omitempty"`
	// The tunables, shared with `hashwall agent` (its flags), inline:
	// segment_len, cert_ttl, report_window, … (docs/agent-api.md).
	agent.Settings

	agent    *agent.Agent
	log      *zap.Logger
	redisURL string             // of the pooled client held, released by Cleanup
	stop     context.CancelFunc // of the agent's Run
	ran      chan struct{}      // closed when Run has returned
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.paywall_agent",
		New: func() caddy.Module { return new(Handler) },
	}
}

// redisPool shares one client per Redis URL between handler instances and
// across config reloads.
var redisPool = caddy.NewUsagePool()

type pooledClient struct{ redis.UniversalClient }

func (c pooledClient) Destruct() error { return c.Close() }

// Provision validates the configuration, loads the keys, connects Redis
// and builds the agent; nothing is shared or started before the checks.
func (h *Handler) Provision(ctx caddy.Context) error {
	if err := h.Validate(); err != nil {
		return err
	}
	h.log = ctx.Logger()
	repl := caddy.NewReplacer()
	master, err := agent.ParseMasterKey(repl.ReplaceKnown(h.MasterKey, ""))
	if err != nil {
		return err
	}
	var oldKeys []string
	for _, k := range h.OldMasterKeys {
		oldKeys = append(oldKeys, repl.ReplaceKnown(k, ""))
	}
	old, err := agent.ParseMasterKeys(oldKeys)
	if err != nil {
		return err
	}
	var keys []payword.SigningKey
	for _, f := range h.SigningKeys {
		k, err := agent.LoadKeyFile(repl.ReplaceKnown(f, ""))
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	url := repl.ReplaceKnown(h.Redis, "")
	val, _, err := redisPool.LoadOrNew(url, func() (caddy.Destructor, error) {
		c, err := redisurl.New(url)
		return pooledClient{c}, err
	})
	if err != nil {
		return err
	}
	h.redisURL = url // Cleanup releases it, also when the rest fails
	h.agent, err = agent.New(ctx, agent.Config{
		Settings: h.Settings, Redis: val.(pooledClient).UniversalClient, SigningKeys: keys, MasterKey: master,
		OldMasterKeys: old, AdminToken: repl.ReplaceKnown(h.AdminToken, ""),
		WebhookSecret: []byte(repl.ReplaceKnown(h.WebhookSecret, "")), Logger: h.log,
		Metrics: ctx.GetMetricsRegistry(), ClientIP: clientIP,
	})
	if err != nil {
		return err
	}
	run, stop := context.WithCancel(ctx)
	h.stop, h.ran = stop, make(chan struct{})
	go func() { defer close(h.ran); h.agent.Run(run) }()
	return nil
}

// Cleanup stops the agent's Run and releases the pooled Redis client; the
// last user of a client closes it.
func (h *Handler) Cleanup() error {
	if h.stop != nil {
		h.stop()
		<-h.ran
		h.stop = nil
	}
	if h.redisURL == "" {
		return nil
	}
	url := h.redisURL
	h.redisURL = ""
	_, err := redisPool.Delete(url)
	return err
}

// clientIP is the login throttle's client address: Caddy's, which honours
// the server's trusted_proxies.
func clientIP(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// Validate checks the configuration, without side effects (Provision calls
// it first).
func (h *Handler) Validate() error {
	switch {
	case h.Redis == "":
		return errors.New("paywall_agent: redis is required")
	case len(h.SigningKeys) == 0:
		return errors.New("paywall_agent: at least one signing key file is required")
	case h.MasterKey == "":
		return errors.New("paywall_agent: master_key is required")
	}
	if err := h.Settings.Validate(); err != nil {
		return fmt.Errorf("paywall_agent: %w", err)
	}
	return nil
}

// ServeHTTP serves /v1/, /healthz and /readyz, and everything else with
// the web pages (pages) or by passing it to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !strings.HasPrefix(r.URL.Path, "/v1/") && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
		if h.Pages {
			h.agent.Pages().ServeHTTP(w, r)
			return nil
		}
		return next.ServeHTTP(w, r)
	}
	h.agent.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
