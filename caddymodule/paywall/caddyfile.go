package paywall

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/internal/redisurl"
	"github.com/hashwall/hashwall/payword"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("paywall", parseCaddyfile)
	// Before every directive that can answer a request (redir, handle,
	// route, respond, file_server, reverse_proxy, …), and before rewrite,
	// uri and try_files, so that it prices the path the reader asked for:
	// a Caddyfile needs no `order` line, and an unpaid priced path never
	// reaches a handler that could serve it.
	httpcaddyfile.RegisterDirectiveOrder("paywall", httpcaddyfile.Before, "redir")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	if err := m.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	// What Validate would refuse is refused at adapt time, with the line of
	// the setting (the block's own for a missing one).
	for _, c := range m.checks() {
		if c.err != nil {
			at, ok := m.lines[c.opt]
			if !ok {
				at = m.lines[""]
			}
			return nil, fmt.Errorf("%w, at %s:%d", c.err, at.File, at.Line)
		}
	}
	return m, nil
}

// UnmarshalCaddyfile fills the handler from Caddyfile tokens. Syntax:
//
//	paywall [<matcher>] {
//	    vendor         <id>
//	    api_token      <token>
//	    agent          <url>                          # https, or http to loopback
//	    insecure_agent                                # allow plain http to another host
//	    key            <kid> <base64url public key>   # repeatable; none: learnt at start over https or loopback
//	    redis          <url>
//	    grant_key      <secret> [<old secret>...]     # the first signs, all verify
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
//	    token_value    <minor units> <currency>       # a token's worth, to show prices in money on the 402 page
//	    crl            agent|redis [<interval>]
//	    crl_max_age    <duration>                     # refuse payments on an older CRL
//	    batch_interval <duration>                     # at most 5m
//	    ephemeral                                     # allow a Redis that may lose payments
//	    offline_segments <n>                          # new segments per certificate taken without the agent (default 1, -1 none)
//	    replicas       <n> [<timeout>]                # replicas that must hold a payment before it is answered (default 1 on Sentinel, else none; -1 none)
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	block := caddyfile.Token{File: d.File(), Line: d.Line()}
	lines := map[string]caddyfile.Token{} // of each setting, as checks names it
	for d.NextBlock(0) {
		opt := d.Val()
		if err := once(d, seen, opt, "key", "price", "free"); err != nil {
			return err
		}
		switch line := (caddyfile.Token{File: d.File(), Line: d.Line()}); opt {
		case "price":
			lines["price#"+strconv.Itoa(len(h.Rules))] = line
		case "free":
			for i := range d.CountRemainingArgs() {
				lines["free#"+strconv.Itoa(len(h.Free)+i)] = line
			}
		case "key":
			if d.NextArg() {
				lines["key:"+d.Val()] = line
				d.Prev()
			}
		default:
			lines[opt] = line
		}
		var err error
		switch opt {
		case "vendor":
			err = oneArg(d, &h.Vendor)
		case "api_token":
			err = oneArg(d, &h.APIToken)
		case "agent":
			err = oneArg(d, &h.Agent)
		case "insecure_agent":
			err = setFlag(d, &h.InsecureAgent)
		case "key":
			err = parseKey(d, h)
		case "redis":
			err = oneArg(d, &h.Redis)
		case "grant_key":
			// grant_key <signing key> [<old key>...]: the first signs.
			keys := d.RemainingArgs()
			if len(keys) == 0 {
				return d.ArgErr()
			}
			h.GrantKey, h.OldGrantKeys = keys[0], keys[1:]
		case "ttl":
			err = duration(d, &h.TTL)
		case "mode":
			err = oneArg(d, &h.Mode)
		case "realm":
			err = oneArg(d, &h.Realm)
		case "price":
			var r Rule
			if r, err = parseRule(d); err == nil {
				h.Rules = append(h.Rules, r)
			}
		case "free":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.ArgErr()
			}
			h.Free = append(h.Free, args...)
		case "upstream_price":
			err = setFlag(d, &h.UpstreamPrice)
		case "template":
			err = oneArg(d, &h.Template)
		case "token_value":
			err = parseTokenValue(d, h)
		case "crl":
			err = parseCRL(d, h)
		case "crl_max_age":
			err = duration(d, &h.CRLMaxAge)
		case "batch_interval":
			err = duration(d, &h.BatchInterval)
		case "ephemeral":
			err = setFlag(d, &h.Ephemeral)
		case "offline_segments":
			err = parseOfflineSegments(d, h)
		case "replicas":
			err = parseReplicas(d, h)
		default:
			return d.Errf("unrecognized paywall option %q", opt)
		}
		if err != nil {
			return err
		}
	}
	h.lines = lines
	h.lines[""] = block
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
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if err := once(d, seen, opt); err != nil {
			return r, err
		}
		switch opt {
		case "scope":
			err = oneArg(d, &r.Scope)
		case "ttl":
			err = duration(d, &r.TTL)
		case "mode":
			if err = oneArg(d, &r.Mode); err == nil && !validMode(r.Mode) {
				err = d.Errf("unknown mode %q", r.Mode)
			}
		default:
			err = d.Errf("unrecognized price option %q", opt)
		}
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// parseKey reads `key <kid> <base64url public key>`; a key id may appear once.
func parseKey(d *caddyfile.Dispenser, h *Handler) error {
	var kid, pub string
	if !d.AllArgs(&kid, &pub) {
		return d.ArgErr()
	}
	if _, dup := h.Keys[kid]; dup {
		return d.Errf("key %q given twice", kid)
	}
	if h.Keys == nil {
		h.Keys = map[string]string{}
	}
	h.Keys[kid] = pub
	return nil
}

// parseCRL reads `crl agent|redis [<interval>]`.
func parseCRL(d *caddyfile.Dispenser, h *Handler) error {
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
	return nil
}

// parseOfflineSegments reads `offline_segments <n>`: -1, or 1 to a
// certificate's number of segments.
func parseOfflineSegments(d *caddyfile.Dispenser, h *Handler) error {
	var v string
	if !d.AllArgs(&v) {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < -1 || n == 0 || n > payword.MaxSegments {
		return d.Errf("offline_segments: %q must be -1 or 1..%d", v, payword.MaxSegments)
	}
	h.OfflineSegments = n
	return nil
}

// parseReplicas reads `replicas <n> [<timeout>]`.
func parseReplicas(d *caddyfile.Dispenser, h *Handler) error {
	args := d.RemainingArgs()
	if len(args) == 0 || len(args) > 2 {
		return d.ArgErr()
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n == 0 {
		return d.Errf("replicas: %q must be -1 or 1..%d", args[0], redisurl.MaxReplicas)
	}
	var t time.Duration
	if len(args) == 2 {
		if t, err = caddy.ParseDuration(args[1]); err != nil || t <= 0 {
			return d.Errf("replicas: timeout %q must be a positive duration", args[1])
		}
	}
	h.Replicas, h.ReplicaTimeout = n, caddy.Duration(t)
	return nil
}

// once refuses a second occurrence of a subdirective in one block, naming
// its line; those in repeatable may appear any number of times.
func once(d *caddyfile.Dispenser, seen map[string]bool, opt string, repeatable ...string) error {
	if slices.Contains(repeatable, opt) {
		return nil
	}
	if seen[opt] {
		return d.Errf("%s given twice", opt)
	}
	seen[opt] = true
	return nil
}

// oneArg reads the subdirective's single argument into dst.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	if !d.AllArgs(dst) {
		return d.ArgErr()
	}
	return nil
}

// duration reads the subdirective's single argument, a positive duration.
func duration(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	opt := d.Val()
	var v string
	if !d.AllArgs(&v) {
		return d.ArgErr()
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil || dur <= 0 {
		return d.Errf("%s: invalid duration %q", opt, v)
	}
	*dst = caddy.Duration(dur)
	return nil
}

// setFlag sets dst for a subdirective without arguments.
func setFlag(d *caddyfile.Dispenser, dst *bool) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	*dst = true
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
