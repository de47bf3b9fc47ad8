// Package agenthandler is the `paywall_agent` Caddy HTTP handler: the
// Hashwall agent (the bank) served by Caddy, with its TLS and logging.
package agenthandler

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

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
	Redis            string         `json:"redis,omitempty"`
	SigningKeys      []string       `json:"signing_keys,omitempty"` // key files; the first signs
	MasterKey        string         `json:"master_key,omitempty"`   // base64 of 32 bytes
	OldMasterKeys    []string       `json:"old_master_keys,omitempty"`
	AdminToken       string         `json:"admin_token,omitempty"`
	WebhookSecret    string         `json:"webhook_secret,omitempty"`
	OpenVendors      bool           `json:"open_vendors,omitempty"`
	Ephemeral        bool           `json:"ephemeral,omitempty"`
	SegmentLen       int            `json:"segment_len,omitempty"`
	MaxTokens        int            `json:"max_tokens,omitempty"`
	UnitValue        uint64         `json:"unit_value,omitempty"`
	Currency         string         `json:"currency,omitempty"`
	CertTTL          caddy.Duration `json:"cert_ttl,omitempty"`
	SettlementWindow caddy.Duration `json:"settlement_window,omitempty"`
	SettleInterval   caddy.Duration `json:"settle_interval,omitempty"`
	// ReportWindow is how long a recovery's credit waits for the claims
	// gateways may still hold (default 10m; gateways ship batch claims at
	// most every 5m). RecoverAdvance (minor units, default 0) of it is
	// credited at once; an account recovers at most once per RecoverEvery
	// (default 1h).
	ReportWindow   caddy.Duration `json:"report_window,omitempty"`
	RecoverAdvance int64          `json:"recover_advance,omitempty"`
	RecoverEvery   caddy.Duration `json:"recover_every,omitempty"`

	agent *agent.Agent
	log   *zap.Logger
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

// Provision loads the keys, connects Redis and builds the agent.
func (h *Handler) Provision(ctx caddy.Context) error {
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
	ctx.OnCancel(func() { redisPool.Delete(url) })
	h.agent, err = agent.New(ctx, agent.Config{
		Redis: val.(pooledClient).UniversalClient, SigningKeys: keys, MasterKey: master, OldMasterKeys: old,
		AdminToken: repl.ReplaceKnown(h.AdminToken, ""), WebhookSecret: []byte(repl.ReplaceKnown(h.WebhookSecret, "")),
		OpenVendors: h.OpenVendors, Ephemeral: h.Ephemeral, SegmentLen: h.SegmentLen, MaxTokens: h.MaxTokens,
		UnitValue: h.UnitValue, Currency: h.Currency, CertTTL: time.Duration(h.CertTTL),
		SettlementWindow: time.Duration(h.SettlementWindow), Logger: h.log, Metrics: ctx.GetMetricsRegistry(),
		ReportWindow: time.Duration(h.ReportWindow), RecoverAdvance: h.RecoverAdvance, RecoverEvery: time.Duration(h.RecoverEvery),
		ClientIP: clientIP,
	})
	if err != nil {
		return err
	}
	go h.settleLoop(ctx)
	return nil
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

// settleLoop refunds expired certificates and credits recoveries whose
// report window ended, until the config is unloaded. Several instances may
// run it: both are idempotent.
func (h *Handler) settleLoop(ctx caddy.Context) {
	every := time.Duration(h.SettleInterval)
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	credit := time.NewTicker(h.agent.RecoverInterval())
	defer credit.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-credit.C:
			if _, _, err := h.agent.CreditRecovered(ctx); err != nil {
				h.log.Error("recovery credit run failed", zap.Error(err))
			}
		case <-t.C:
			if _, _, err := h.agent.SettleExpired(ctx); err != nil {
				h.log.Error("settlement run failed", zap.Error(err))
			}
		}
	}
}

// Validate checks the required settings.
func (h *Handler) Validate() error {
	switch {
	case h.Redis == "":
		return fmt.Errorf("paywall_agent: redis is required")
	case len(h.SigningKeys) == 0:
		return fmt.Errorf("paywall_agent: at least one signing key file is required")
	case h.MasterKey == "":
		return fmt.Errorf("paywall_agent: master_key is required")
	case h.RecoverAdvance < 0 || h.ReportWindow < 0 || h.RecoverEvery < 0:
		return fmt.Errorf("paywall_agent: report_window, recover_advance and recover_every must not be negative")
	case h.ReportWindow != 0 && time.Duration(h.ReportWindow) <= agent.MaxBatchInterval:
		return fmt.Errorf("paywall_agent: report_window must be longer than the gateways' longest batch_interval (%v)", agent.MaxBatchInterval)
	}
	return nil
}

// ServeHTTP serves /v1/ and passes everything else to next.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if !strings.HasPrefix(r.URL.Path, "/v1/") {
		return next.ServeHTTP(w, r)
	}
	h.agent.ServeHTTP(w, r)
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
