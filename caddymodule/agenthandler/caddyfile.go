package agenthandler

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/hashwall/hashwall/agent"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("paywall_agent", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("paywall_agent", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile fills the handler from Caddyfile tokens. Syntax:
//
//	paywall_agent [<matcher>] {
//	    redis             <url>
//	    signing_keys      <file...>          # the first signs
//	    master_key        <base64 32 bytes>  # e.g. {env.HASHWALL_MASTER_KEY}
//	    old_master_keys   <key...>           # after a rotation
//	    admin_token       <token>
//	    webhook_secret    <secret>
//	    pages                                # serve the readers' web pages (docs/web.md)
//	    open_vendors
//	    signups_per_hour  <n>                # accounts one client address opens per hour (20)
//	    ephemeral
//	    segment_len       <m>
//	    max_tokens        <n>
//	    unit_value        <minor units per token>
//	    currency          <code>
//	    cert_ttl          <duration>
//	    settlement_window <duration>
//	    settle_interval   <duration>
//	    report_window     <duration>         # recovery credit waits this long (10m)
//	    recover_advance   <minor units>      # of it credited at once (0)
//	    recover_every     <duration>         # one recovery per account per (1h)
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	settings := map[string]agent.Value{}
	for _, s := range h.Settings.Table() {
		settings[s.Key] = s.Value
	}
	for d.NextBlock(0) {
		opt := d.Val()
		args := d.RemainingArgs()
		one := func() (string, error) {
			if len(args) != 1 {
				return "", d.ArgErr()
			}
			return args[0], nil
		}
		var err error
		switch opt {
		case "redis":
			h.Redis, err = one()
		case "master_key":
			h.MasterKey, err = one()
		case "admin_token":
			h.AdminToken, err = one()
		case "webhook_secret":
			h.WebhookSecret, err = one()
		case "pages":
			if len(args) != 0 {
				return d.ArgErr()
			}
			h.Pages = true
		case "signing_keys", "old_master_keys":
			if len(args) == 0 {
				return d.ArgErr()
			}
			if opt == "signing_keys" {
				h.SigningKeys = append(h.SigningKeys, args...)
			} else {
				h.OldMasterKeys = append(h.OldMasterKeys, args...)
			}
		default:
			v, ok := settings[opt]
			if !ok {
				return d.Errf("unknown paywall_agent option %q", opt)
			}
			if b, ok := v.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() { // a flag: no argument
				if len(args) != 0 {
					return d.ArgErr()
				}
				args = []string{"true"}
			}
			var s string
			if s, err = one(); err != nil {
				return err
			}
			if err := v.Set(s); err != nil {
				return d.Errf("%s: %v", opt, err)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
