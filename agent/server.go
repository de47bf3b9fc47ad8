package agent

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
)

// ServerConfig configures the standalone agent (`hashwall agent`).
type ServerConfig struct {
	Settings
	Listen        string       // e.g. "127.0.0.1:8480"; ignored if Listener is set
	Listener      net.Listener // optional, for tests
	RedisURL      string       // single, Sentinel or Cluster (see internal/redisurl)
	KeyFiles      []string     // the first one signs
	MasterKey     string       // base64 of 32 bytes
	OldMasterKeys []string     // previous master keys, kept until their certificates are settled
	AdminToken    string
	WebhookSecret string
	// MetricsListen is where /metrics is served, apart from the API (which
	// anyone may reach): e.g. "127.0.0.1:9480". Empty: no metrics.
	MetricsListen   string
	MetricsListener net.Listener // optional, for tests
	Logger          *zap.Logger
}

// ParseMasterKey decodes a base64 (standard or URL, padded or not) 32-byte key.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil && len(k) == 32 {
			return k, nil
		}
	}
	return nil, errors.New("agent: master key must be 32 bytes in base64 (openssl rand -base64 32)")
}

// ParseMasterKeys parses a list of old master keys; empty ones (an unset
// environment variable) are skipped.
func ParseMasterKeys(keys []string) ([][]byte, error) {
	var out [][]byte
	for _, s := range keys {
		if strings.TrimSpace(s) == "" {
			continue
		}
		k, err := ParseMasterKey(s)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// RunServer serves the agent API (and /metrics on its own listener) until
// ctx ends, with Run's settlement and recovery credits.
func RunServer(ctx context.Context, sc ServerConfig) error {
	log := sc.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if err := sc.Settings.Validate(); errors.Is(err, ErrShortReportWindow) {
		log.Warn("a recovery may be credited before its claims arrive", zap.Error(err))
	} else if err != nil {
		return err
	}
	var keys []payword.SigningKey
	for _, f := range sc.KeyFiles {
		k, err := LoadKeyFile(f)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	master, err := ParseMasterKey(sc.MasterKey)
	if err != nil {
		return err
	}
	old, err := ParseMasterKeys(sc.OldMasterKeys)
	if err != nil {
		return err
	}
	rdb, err := redisurl.New(sc.RedisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	a, err := New(ctx, Config{
		Settings: sc.Settings, Redis: rdb, SigningKeys: keys, MasterKey: master, OldMasterKeys: old,
		AdminToken: sc.AdminToken, WebhookSecret: []byte(sc.WebhookSecret), Logger: log, Metrics: reg,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", a)
	mux.Handle("GET /healthz", a)
	mux.Handle("GET /readyz", a)
	mux.Handle("/", a.Pages()) // the readers' web pages (docs/web.md)
	ln := sc.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", sc.Listen); err != nil {
			return err
		}
	}
	// Metrics get their own listener: they tell anyone who can read them
	// the sales, recoveries and disputes of the bank.
	mln := sc.MetricsListener
	if mln == nil && sc.MetricsListen != "" {
		if mln, err = net.Listen("tcp", sc.MetricsListen); err != nil {
			ln.Close()
			return err
		}
	}
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	}
	srv := newServer(mux)
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("agent listening", zap.String("addr", ln.Addr().String()), zap.String("redis", redisurl.Redact(sc.RedisURL)))
	if mln != nil {
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		msrv := newServer(mmux)
		go func() { errc <- msrv.Serve(mln) }()
		defer msrv.Close()
		log.Info("metrics listening", zap.String("addr", mln.Addr().String()))
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { defer close(ran); a.Run(runCtx) }()
	defer func() { stop(); <-ran }() // before Redis closes
	select {
	case err := <-errc:
		return fmt.Errorf("agent: serve: %w", err)
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shut)
	}
}
