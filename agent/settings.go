package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
)

// Settings are the agent's tunables, the same for `hashwall agent` (a flag
// each) and the paywall_agent Caddy handler (a JSON key and Caddyfile
// option each): Table lists them once for both. A zero value takes the
// default.
type Settings struct {
	SegmentLen       int      `json:"segment_len,omitempty"`       // m, default payword.DefaultSegmentLen
	MaxTokens        int      `json:"max_tokens,omitempty"`        // largest certificate sold, default 1,000,000
	UnitValue        uint64   `json:"unit_value,omitempty"`        // minor currency units per token, default 1
	Currency         string   `json:"currency,omitempty"`          // default "EUR"
	CertTTL          Duration `json:"cert_ttl,omitempty"`          // default 30 days
	SettlementWindow Duration `json:"settlement_window,omitempty"` // reports accepted after expiry, default 7 days
	SettleInterval   Duration `json:"settle_interval,omitempty"`   // of Run's refunds, default 1 hour
	// Recovery (see recovery.go): the unclaimed value of recovered
	// certificates is credited ReportWindow after the recovery, less the
	// claims that arrived meanwhile; RecoverAdvance (minor units) of it at
	// once; an account recovers at most once per RecoverEvery.
	ReportWindow   Duration `json:"report_window,omitempty"`
	RecoverAdvance int64    `json:"recover_advance,omitempty"`
	RecoverEvery   Duration `json:"recover_every,omitempty"`
	OpenVendors    bool     `json:"open_vendors,omitempty"` // anyone may register a vendor, not only the admin
	// SignupsPerHour bounds the accounts one client address opens in an
	// hour, on the pages and the API (the admin's are not counted): each
	// costs an argon2 hash and a stored account. Default 20.
	SignupsPerHour int  `json:"signups_per_hour,omitempty"`
	Ephemeral      bool `json:"ephemeral,omitempty"` // allow a Redis that may lose acknowledged writes
	// TestTopups offers the pages' built-in "test" checkout, which credits
	// any top-up at once for nothing: for tests and the demo only.
	TestTopups bool `json:"test_topups,omitempty"`
	// BehindTLS: readers reach the bank over https through a proxy that
	// terminates TLS, so its pages' cookies are Secure (and __Host-) even
	// though requests arrive over plain HTTP.
	BehindTLS bool `json:"behind_tls,omitempty"`
	// Replicas of the agent's Redis that must hold a write before the agent
	// acknowledges it (0: 1 with a redis-sentinel:// URL, else none; -1:
	// none); ReplicaTimeout (default 500ms, at most 1s) bounds the wait.
	Replicas       int      `json:"replicas,omitempty"`
	ReplicaTimeout Duration `json:"replica_timeout,omitempty"`
}

// Defaults of Settings.
const (
	DefaultMaxTokens        = 1_000_000
	DefaultCurrency         = "EUR"
	DefaultCertTTL          = 30 * 24 * time.Hour
	DefaultSettlementWindow = 7 * 24 * time.Hour
	DefaultSettleInterval   = time.Hour
	DefaultSignupsPerHour   = 20
)

// WithDefaults returns s with every zero setting set to its default.
func (s Settings) WithDefaults() Settings {
	set := func(v *Duration, d time.Duration) {
		if *v == 0 {
			*v = Duration(d)
		}
	}
	if s.SegmentLen == 0 {
		s.SegmentLen = payword.DefaultSegmentLen
	}
	if s.SignupsPerHour == 0 {
		s.SignupsPerHour = DefaultSignupsPerHour
	}
	if s.MaxTokens == 0 {
		s.MaxTokens = DefaultMaxTokens
	}
	if s.UnitValue == 0 {
		s.UnitValue = 1
	}
	if s.Currency == "" {
		s.Currency = DefaultCurrency
	}
	set(&s.CertTTL, DefaultCertTTL)
	set(&s.SettlementWindow, DefaultSettlementWindow)
	set(&s.SettleInterval, DefaultSettleInterval)
	set(&s.ReportWindow, DefaultReportWindow)
	set(&s.RecoverEvery, DefaultRecoverEvery)
	return s
}

// ErrShortReportWindow is Validate's last complaint: a report window no
// longer than MaxBatchInterval could credit a recovery before its claims
// arrive. paywall_agent refuses it; `hashwall agent` and New only warn or
// accept it, for tests and demos that need a short one.
var ErrShortReportWindow = fmt.Errorf("not longer than the gateways' longest batch_interval (%v)", MaxBatchInterval)

// Validate checks the settings (their defaults filled): both commands call
// it before they touch anything. An error other than ErrShortReportWindow
// is fatal to every caller.
func (s Settings) Validate() error {
	s = s.WithDefaults()
	if err := redisurl.CheckReplication(s.Replicas, time.Duration(s.ReplicaTimeout)); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	switch {
	case s.SegmentLen < 1 || s.SegmentLen > payword.MaxSegmentLen:
		return fmt.Errorf("agent: segment_len %d out of 1..%d", s.SegmentLen, payword.MaxSegmentLen)
	case s.MaxTokens < s.SegmentLen || s.MaxTokens/s.SegmentLen > payword.MaxSegments:
		return fmt.Errorf("agent: max_tokens %d out of %d..%d", s.MaxTokens, s.SegmentLen, payword.MaxSegments*s.SegmentLen)
	case !validCurrency(s.Currency):
		return fmt.Errorf("agent: currency %q must be 1-8 characters of A-Z 0-9", s.Currency)
	case s.CertTTL < 0 || s.SettlementWindow < 0 || s.SettleInterval < 0 || s.RecoverEvery < 0:
		return errors.New("agent: cert_ttl, settlement_window, settle_interval and recover_every must not be negative")
	case s.RecoverAdvance < 0:
		return errors.New("agent: recover_advance must not be negative")
	case s.SignupsPerHour < 0:
		return errors.New("agent: signups_per_hour must not be negative")
	case s.ReportWindow < Duration(time.Second):
		return fmt.Errorf("agent: report_window %v must be at least 1s", s.ReportWindow)
	case time.Duration(s.ReportWindow) <= MaxBatchInterval:
		return fmt.Errorf("agent: report_window %v: %w", s.ReportWindow, ErrShortReportWindow)
	}
	return nil
}

// Setting is one tunable of Settings: Key is its JSON key and Caddyfile
// option, and with hyphens its flag of `hashwall agent`.
type Setting struct {
	Key   string
	Usage string
	Value Value
}

// Value is a setting as text: flag.Value and pflag.Value. Set refuses what
// the Caddyfile refuses (a zero or negative number or duration, but a zero
// recover_advance); a bool's Value has IsBoolFlag.
type Value interface {
	String() string
	Set(string) error
	Type() string
}

// Flag is the setting's flag name.
func (s Setting) Flag() string { return strings.ReplaceAll(s.Key, "_", "-") }

// Table lists every setting of s, bound to its field; a flag's default is
// the field's value when it is registered (see WithDefaults).
func (s *Settings) Table() []Setting {
	return []Setting{
		{"segment_len", "tokens per segment", positive[int]{&s.SegmentLen}},
		{"max_tokens", "largest certificate sold, in tokens", positive[int]{&s.MaxTokens}},
		{"unit_value", "minor currency units per token", positive[uint64]{&s.UnitValue}},
		{"currency", "currency code, 1-8 of A-Z 0-9", stringValue{&s.Currency}},
		{"cert_ttl", "lifetime of a certificate", positiveDuration{&s.CertTTL}},
		{"settlement_window", "how long after expiry claims are still accepted", positiveDuration{&s.SettlementWindow}},
		{"settle_interval", "interval of the refund of expired certificates", positiveDuration{&s.SettleInterval}},
		{"report_window", "how long after a recovery its credit waits for claims; over 5m", positiveDuration{&s.ReportWindow}},
		{"recover_advance", "minor units of a recovery credited at once", nonNegative{&s.RecoverAdvance}},
		{"recover_every", "least time between two recoveries of an account", positiveDuration{&s.RecoverEvery}},
		{"open_vendors", "let anyone register a vendor, not only the admin", boolValue{&s.OpenVendors}},
		{"signups_per_hour", "accounts one client address may open per hour (the admin's are not counted)", positive[int]{&s.SignupsPerHour}},
		{"ephemeral", "allow a Redis that may lose acknowledged writes", boolValue{&s.Ephemeral}},
		{"test_topups", "offer the pages' test checkout, which credits top-ups for free (tests and demos only)", boolValue{&s.TestTopups}},
		{"behind_tls", "readers reach the bank over https through a TLS-terminating proxy: page cookies are Secure", boolValue{&s.BehindTLS}},
		{"replicas", "replicas that must hold a write before it is acknowledged; -1 none (default 1 with redis-sentinel://, else none)", replicasValue{&s.Replicas}},
		{"replica_timeout", "how long to wait for them, at most 1s (default 500ms)", positiveDuration{&s.ReplicaTimeout}},
	}
}

// positive is a positive integer of at most 31 bits, as the Caddyfile
// always took.
type positive[T int | uint64] struct{ p *T }

func (v positive[T]) String() string { return strconv.FormatUint(uint64(*v.p), 10) }
func (v positive[T]) Type() string   { return "int" }
func (v positive[T]) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil || n == 0 {
		return errors.New("must be a positive integer")
	}
	*v.p = T(n)
	return nil
}

type nonNegative struct{ p *int64 }

func (v nonNegative) String() string { return strconv.FormatInt(*v.p, 10) }
func (v nonNegative) Type() string   { return "int" }
func (v nonNegative) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 63)
	if err != nil || n < 0 {
		return errors.New("must be a whole number of minor units")
	}
	*v.p = n
	return nil
}

// replicasValue is -1 or 1..redisurl.MaxReplicas; 0, the default, is
// what leaving it out gives.
type replicasValue struct{ p *int }

func (v replicasValue) String() string { return strconv.Itoa(*v.p) }
func (v replicasValue) Type() string   { return "int" }
func (v replicasValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n == 0 || n < -1 || n > redisurl.MaxReplicas {
		return fmt.Errorf("must be -1 or 1..%d", redisurl.MaxReplicas)
	}
	*v.p = n
	return nil
}

type stringValue struct{ p *string }

func (v stringValue) String() string     { return *v.p }
func (v stringValue) Type() string       { return "string" }
func (v stringValue) Set(s string) error { *v.p = s; return nil }

type positiveDuration struct{ p *Duration }

func (v positiveDuration) String() string { return time.Duration(*v.p).String() }
func (v positiveDuration) Type() string   { return "duration" }
func (v positiveDuration) Set(s string) error {
	d, err := ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("invalid duration %q", s)
	}
	*v.p = Duration(d)
	return nil
}

type boolValue struct{ p *bool }

func (v boolValue) String() string   { return strconv.FormatBool(*v.p) }
func (v boolValue) Type() string     { return "bool" }
func (v boolValue) IsBoolFlag() bool { return true }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*v.p = b
	return nil
}

// Duration is a time.Duration that reads from JSON as caddy.Duration does:
// a string such as "10m" or "7d", or integer nanoseconds.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalJSON reads a duration string or integer nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var dur time.Duration
	var err error
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err = json.Unmarshal(b, &s); err == nil {
			dur, err = ParseDuration(s)
		}
	} else {
		err = json.Unmarshal(b, &dur)
	}
	if err != nil {
		return fmt.Errorf("duration %s: %w", b, err)
	}
	*d = Duration(dur)
	return nil
}

// ParseDuration is time.ParseDuration with the unit d, 24 hours, as
// caddy.ParseDuration has it.
func ParseDuration(s string) (time.Duration, error) {
	if len(s) > 1024 {
		return 0, errors.New("duration too long")
	}
	var b strings.Builder
	start := 0 // of the current number
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == 'd' {
			days, err := strconv.ParseFloat(s[start:i], 64)
			if err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			b.WriteString(strconv.FormatFloat(days*24, 'f', -1, 64) + "h")
			start = i + 1
			continue
		}
		if !('0' <= c && c <= '9' || c == '.' || c == '-' || c == '+') {
			b.WriteString(s[start : i+1])
			start = i + 1
		}
	}
	b.WriteString(s[start:])
	return time.ParseDuration(b.String())
}
