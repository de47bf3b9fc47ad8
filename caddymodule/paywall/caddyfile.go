package paywall

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/payword"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("paywall", parseCaddyfile)
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return m, nil
}

// UnmarshalCaddyfile fills the handler from Caddyfile tokens. Syntax:
//
//	paywall [<matcher>] {
//	    vendor         <id>
//	    api_token      <token>
//	    agent          <url>
//	    key            <kid> <base64url public key>   # repeatable; none: learnt at start over https or loopback
//	    redis          <url>
//	    grant_key      <secret>
//	    ttl            <duration>
//	    mode           almost_online|batch|online
//	    realm          <text>
//	    price          <pattern> <tokens> [{
//	        scope <prefix pattern ending in />
//	        ttl   <duration>
//	        mode  almost_online|batch|online
//	    }]
//	    free           <pattern...>
//	    upstream_price
//	    template       <file>
//	    crl            agent|redis [<interval>]
//	    crl_max_age    <duration>                     # refuse payments on an older CRL
//	    batch_interval <duration>                     # at most 5m
//	    ephemeral                                     # allow a Redis that may lose payments
//	    offline_segments <n>                          # new segments per certificate taken without the agent (default 1, -1 none)
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "vendor", "api_token", "agent", "redis", "grant_key", "realm", "template", "mode":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			if err := setOnce(d, opt, map[string]*string{
				"vendor": &h.Vendor, "api_token": &h.APIToken, "agent": &h.Agent, "redis": &h.Redis,
				"grant_key": &h.GrantKey, "realm": &h.Realm, "template": &h.Template, "mode": &h.Mode,
			}[opt], v); err != nil {
				return err
			}
		case "ttl", "batch_interval", "crl_max_age":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("%s: invalid duration %q", opt, v)
			}
			*map[string]*caddy.Duration{"ttl": &h.TTL, "batch_interval": &h.BatchInterval, "crl_max_age": &h.CRLMaxAge}[opt] = caddy.Duration(dur)
		case "offline_segments":
			var v string
			if !d.AllArgs(&v) {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < -1 || n == 0 || n > payword.MaxSegments {
				return d.Errf("offline_segments: %q must be -1 or 1..%d", v, payword.MaxSegments)
			}
			h.OfflineSegments = n
		case "key":
			var kid, pub string
			if !d.AllArgs(&kid, &pub) {
				return d.ArgErr()
			}
			if h.Keys == nil {
				h.Keys = map[string]string{}
			}
			if _, dup := h.Keys[kid]; dup {
				return d.Errf("key %q given twice", kid)
			}
			h.Keys[kid] = pub
		case "price":
			r, err := parseRule(d)
			if err != nil {
				return err
			}
			h.Rules = append(h.Rules, r)
		case "free":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.Free = append(h.Free, args...)
		case "upstream_price", "ephemeral":
			if d.NextArg() {
				return d.ArgErr()
			}
			*map[string]*bool{"upstream_price": &h.UpstreamPrice, "ephemeral": &h.Ephemeral}[opt] = true
		case "crl":
			args := d.RemainingArgs()
			if len(args) < 1 || len(args) > 2 {
				return d.ArgErr()
			}
			h.CRL = args[0]
			if len(args) == 2 {
				dur, err := caddy.ParseDuration(args[1])
				if err != nil || dur <= 0 {
					return d.Errf("crl: invalid interval %q", args[1])
				}
				h.CRLInterval = caddy.Duration(dur)
			}
		default:
			return d.Errf("unrecognized paywall option %q", opt)
		}
	}
	return nil
}

// parseRule reads `price <pattern> <tokens> [{ scope …; ttl …; mode … }]`.
func parseRule(d *caddyfile.Dispenser) (Rule, error) {
	var r Rule
	var tokens string
	if !d.Args(&r.Pattern, &tokens) {
		return r, d.ArgErr()
	}
	if d.NextArg() {
		return r, d.ArgErr()
	}
	n, err := strconv.ParseUint(tokens, 10, 32)
	if err != nil || n < 1 || n > MaxPrice {
		return r, d.Errf("price %q: must be 1..%d tokens", tokens, MaxPrice)
	}
	r.Price = uint32(n)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var v string
		opt := d.Val()
		if !d.AllArgs(&v) {
			return r, d.ArgErr()
		}
		switch opt {
		case "scope":
			r.Scope = v
		case "ttl":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return r, d.Errf("ttl: invalid duration %q", v)
			}
			r.TTL = caddy.Duration(dur)
		case "mode":
			if !validMode(v) {
				return r, d.Errf("unknown mode %q", v)
			}
			r.Mode = v
		default:
			return r, d.Errf("unrecognized price option %q", opt)
		}
	}
	return r, nil
}

func setOnce(d *caddyfile.Dispenser, opt string, dst *string, v string) error {
	if *dst != "" {
		return d.Errf("%s given twice", opt)
	}
	*dst = v
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
