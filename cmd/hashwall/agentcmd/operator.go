package agentcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

// The operator's commands call a running agent through agentapi.Client, so
// an operator never needs curl. The admin token comes from the environment
// (a flag would show it in the process list) and goes only over https or
// to this machine.

const (
	envAdminToken   = "HASHWALL_ADMIN_TOKEN"
	envAgent        = "HASHWALL_AGENT"
	defaultAgentURL = "http://127.0.0.1:8480"
	// callTimeout bounds one call; a settlement run over many certificates
	// may take a while.
	callTimeout = 2 * time.Minute
)

const operatorHelp = `
The agent is --agent, else $HASHWALL_AGENT, else http://127.0.0.1:8480.
Admin commands read the admin token from $HASHWALL_ADMIN_TOKEN and send it
only over https or plain http to this machine (127.0.0.0/8, ::1, localhost).
--json prints the agent's answer as JSON. Exit status: 0 done, 1 failed or
refused, 2 wrong usage.`

// op is one operator command as its run function sees it.
type op struct {
	client *agentapi.Client
	json   bool
	out    io.Writer
}

// opSpec describes an operator command.
type opSpec struct {
	use, short string
	nargs      int                      // positional arguments
	admin      bool                     // sends the admin token
	flags      func(cmd *cobra.Command) // adds the command's own flags
	run        func(ctx context.Context, o *op, args []string) error
}

// usageError is wrong usage: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// addOperatorCommands adds the operator's commands under `hashwall agent`.
func addOperatorCommands(agent *cobra.Command) {
	vendor := group("vendor", "Registers vendors and shows their origins")
	vendor.AddCommand(newOp(registerVendorSpec()), newOp(originsSpec()))
	ledger := group("ledger", "Checks the bank's ledger")
	ledger.AddCommand(newOp(ledgerCheckSpec()))
	agent.AddCommand(vendor, ledger,
		newOp(creditSpec()), newOp(revokeSpec()), newOp(disputesSpec()), newOp(revocationsSpec()),
		newOp(statementSpec()), newOp(settleSpec()))
}

// group is a command that only holds others: naming none is wrong usage.
func group(name, short string) *cobra.Command {
	g := &cobra.Command{Use: name + " <command>", Short: short}
	g.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return finish(cmd, usagef("name a command; see `%s --help`", cmd.CommandPath()))
		}
		return finish(cmd, usagef("unknown command %q; see `%s --help`", args[0], cmd.CommandPath()))
	}
	g.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return finish(cmd, usageError{err.Error()}) })
	return g
}

func newOp(s opSpec) *cobra.Command {
	cmd := &cobra.Command{Use: s.use, Short: s.short, Long: s.short + ".\n" + operatorHelp}
	def := os.Getenv(envAgent)
	if def == "" {
		def = defaultAgentURL
	}
	base := cmd.Flags().String("agent", def, "the agent's base `URL`")
	asJSON := cmd.Flags().Bool("json", false, "print JSON")
	if s.flags != nil {
		s.flags(cmd)
	}
	cmd.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return finish(cmd, usageError{err.Error()}) })
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != s.nargs {
			return finish(cmd, usagef("takes %d argument(s), got %d", s.nargs, len(args)))
		}
		c, err := client(*base, s.admin)
		if err != nil {
			return finish(cmd, err)
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return finish(cmd, s.run(ctx, &op{client: c, json: *asJSON, out: cmd.OutOrStdout()}, args))
	}
	return cmd
}

// finish prints err for a person and turns it into the exit status.
func finish(cmd *cobra.Command, err error) error {
	cmd.SilenceErrors, cmd.SilenceUsage = true, true // printed here, once
	if err == nil {
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", cmd.CommandPath(), explain(err))
	if _, ok := errors.AsType[usageError](err); ok {
		fmt.Fprintf(cmd.ErrOrStderr(), "usage: %s\n", cmd.UseLine())
		// caddycmd.Main exits with a status above 1 only through the
		// error this wrapper makes.
		return caddycmd.WrapCommandFuncForCobra(func(caddycmd.Flags) (int, error) { return 2, nil })(cmd, nil)
	}
	return err // caddycmd.Main: status 1
}

// hints tell the operator what to do about a refusal.
var hints = map[agentapi.Code]string{
	agentapi.CodeUnauthorized:     "set " + envAdminToken + " to the agent's admin token (the agent's own " + envAdminToken + " or admin_token)",
	agentapi.CodeUnknownUser:      "no user has this username (usernames are case-sensitive)",
	agentapi.CodeUnknownAccount:   "no user or vendor has this id",
	agentapi.CodeUnknownVendor:    "no active vendor has this id",
	agentapi.CodeVendorTaken:      "a vendor has this id already: choose another",
	agentapi.CodeInvalidOrigins:   "an origin is scheme://host[:port], e.g. https://news.example.com",
	agentapi.CodeStoreUnavailable: "the agent cannot reach its Redis: fix the store, then run this again",
	agentapi.CodeNoRoute:          "--agent must be the agent's base URL, e.g. https://bank.example.com",
	agentapi.CodeLedgerMismatch:   "some balance is not the sum of its ledger entries: stop crediting and investigate before settling",
}

func explain(err error) string {
	ae, ok := errors.AsType[*agentapi.Error](err)
	if _, down := errors.AsType[net.Error](err); down && !ok {
		return err.Error() + "\n  is the agent running there? name it with --agent or " + envAgent
	}
	if !ok {
		return err.Error()
	}
	msg := fmt.Sprintf("the agent refused: %s (code %s, HTTP %d)", ae.Message, ae.Code, ae.Status)
	hint := hints[ae.Code]
	switch {
	case ae.Code == "" && ae.Status >= 300 && ae.Status < 400:
		msg = fmt.Sprintf("the agent answered with a redirect (%s), which is not followed", ae.Message)
		hint = "give --agent the URL the agent is served at"
	case ae.Code == "":
		msg = fmt.Sprintf("the agent answered %s, not an error of the agent's API", ae.Message)
		hint = "is --agent the agent's base URL?"
	case ae.RetryAfter > 0:
		hint = "retry in " + ae.RetryAfter.String()
	}
	if hint != "" {
		msg += "\n  " + hint
	}
	return msg
}

// client checks the agent's URL and makes the client, with the admin token
// when the command needs it.
func client(base string, admin bool) (*agentapi.Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return nil, usagef("--agent %q is not an agent URL: want http(s)://host[:port][/prefix]", base)
	}
	hc := &http.Client{Timeout: callTimeout,
		// The API never redirects; following one could carry the token elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	c := agentapi.NewClient(base, hc)
	if !admin {
		return c, nil
	}
	token := os.Getenv(envAdminToken)
	if token == "" {
		return nil, errors.New("no admin token: set " + envAdminToken + " to the agent's admin token")
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("refusing to send the admin token over plain http to %s: use https, or run this on the agent's host with --agent http://127.0.0.1:<port>", u.Host)
	}
	return c.WithToken(token), nil
}

// loopback reports whether host is this machine, so plain http crosses no network.
func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// print writes v as JSON, or as a person reads it.
func (o *op) print(v any, human func(w *tabwriter.Writer)) error {
	if o.json {
		enc := json.NewEncoder(o.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(o.out, 0, 4, 2, ' ', 0)
	human(w)
	return w.Flush()
}

func unix(t int64) string {
	if t == 0 {
		return "-"
	}
	return time.Unix(t, 0).UTC().Format(time.RFC3339)
}

// --- vendors ----------------------------------------------------------------

func registerVendorSpec() opSpec {
	var kind string
	var origins []string
	return opSpec{
		use:   "register <vendor> [--kind generic|specific] [--origin <origin>]...",
		short: "Registers a vendor and prints its API token (shown only once)",
		nargs: 1, admin: true,
		flags: func(cmd *cobra.Command) {
			f := cmd.Flags()
			f.StringVar(&kind, "kind", agentapi.KindGeneric, "generic (any certificate pays) or specific (its own certificates only)")
			f.StringArrayVar(&origins, "origin", nil, "an `origin` of the vendor's sites, e.g. https://news.example.com (repeatable)")
		},
		run: func(ctx context.Context, o *op, args []string) error {
			if kind != agentapi.KindGeneric && kind != agentapi.KindSpecific {
				return usagef("--kind is generic or specific, not %q", kind)
			}
			v, err := o.client.RegisterVendor(ctx, agentapi.RegisterVendor{Vendor: args[0], Kind: kind, Origins: origins})
			if err != nil {
				return err
			}
			return o.print(v, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "vendor\t%s\nkind\t%s\norigins\t%s\ntoken\t%s\n", v.Vendor, v.Kind, strings.Join(v.Origins, " "), v.Token)
				fmt.Fprintf(w, "\nThe token is shown only this once: give it to the vendor's gateways (their api_token).\n")
				if len(v.Origins) == 0 {
					fmt.Fprintf(w, "With no origins, no wallet pays this vendor until it sets them (PUT /v1/vendors/%s/origins).\n", v.Vendor)
				}
			})
		},
	}
}

func originsSpec() opSpec {
	return opSpec{
		use:   "origins <vendor>",
		short: "Shows the origins the agent signs for a vendor (where wallets pay it)",
		nargs: 1,
		run: func(ctx context.Context, o *op, args []string) error {
			keys, err := agentKeys(ctx, o.client)
			if err != nil {
				return err
			}
			raw, _, err := o.client.VendorOrigins(ctx, args[0])
			if err != nil {
				return err
			}
			d, err := payword.OpenVendorOrigins(raw, keys)
			if err != nil {
				return fmt.Errorf("the agent's origins document of %s does not open with its keys: %w", args[0], err)
			}
			return o.print(d, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "vendor\t%s\nsigned\t%s\nexpires\t%s\n", d.Vendor, unix(d.Time), unix(d.Expires))
				if len(d.Origins) == 0 {
					fmt.Fprintf(w, "origins\tnone: no wallet pays this vendor\n")
				}
				for _, s := range d.Origins {
					fmt.Fprintf(w, "origin\t%s\n", s)
				}
			})
		},
	}
}

// agentKeys are the keys the agent announces, signed by themselves: enough
// to check what it signs is whole, not to trust an agent reached over a
// network one does not trust.
func agentKeys(ctx context.Context, c *agentapi.Client) (payword.KeySet, error) {
	k, err := c.Keys(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := payword.OpenKeys(k.Signed, nil)
	if err == nil && len(keys) == 0 {
		err = errors.New("no key signs its own announcement")
	}
	if err != nil {
		return nil, fmt.Errorf("the agent's keys: %w", err)
	}
	return keys, nil
}

// --- readers ----------------------------------------------------------------

func creditSpec() opSpec {
	var ref, event string
	return opSpec{
		use:   "credit <username> <amount> [--ref <ref>] [--event <id>]",
		short: "Credits a reader's balance with amount minor units of the agent's currency",
		nargs: 2, admin: true,
		flags: func(cmd *cobra.Command) {
			f := cmd.Flags()
			f.StringVar(&ref, "ref", "", "a `ref`erence for the ledger entry, e.g. an invoice number")
			f.StringVar(&event, "event", "", "an `id` that makes the credit happen once however often it is run")
		},
		run: func(ctx context.Context, o *op, args []string) error {
			amount, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || amount <= 0 {
				return usagef("amount %q must be a whole number of minor units above 0 (500 is 5.00 EUR)", args[1])
			}
			c, err := o.client.Credit(ctx, agentapi.Credit{User: args[0], Amount: amount, Ref: ref, Event: event})
			if err != nil {
				return err
			}
			return o.print(c, func(w *tabwriter.Writer) { fmt.Fprintf(w, "credited %d to %s\n", c.Credited, args[0]) })
		},
	}
}

func revokeSpec() opSpec {
	var serial, user, vendor string
	return opSpec{
		use:   "revoke (--serial <serial> | --user <username> | --vendor <vendor>)",
		short: "Revokes a certificate, or a reader or vendor account (its certificates go on the revocation list)",
		admin: true,
		flags: func(cmd *cobra.Command) {
			f := cmd.Flags()
			f.StringVar(&serial, "serial", "", "a certificate's `serial` (32 hex digits)")
			f.StringVar(&user, "user", "", "a reader's `username`: no more logins or purchases")
			f.StringVar(&vendor, "vendor", "", "a `vendor`: no more reports")
		},
		run: func(ctx context.Context, o *op, _ []string) error {
			q := agentapi.Revoke{User: user, Vendor: vendor}
			what, n := "", 0
			for _, s := range []string{serial, user, vendor} {
				if s != "" {
					what, n = s, n+1
				}
			}
			if n != 1 {
				return usagef("give exactly one of --serial, --user, --vendor")
			}
			if serial != "" {
				s, err := payword.ParseSerial(serial)
				if err != nil {
					return usagef("--serial %q is not a serial (32 hex digits)", serial)
				}
				q.Serial = &s
			}
			r, err := o.client.Revoke(ctx, q)
			if err != nil {
				return err
			}
			return o.print(r, func(w *tabwriter.Writer) {
				switch {
				case serial != "" && !r.Revoked:
					fmt.Fprintf(w, "certificate %s was not active: nothing changed\n", what)
				case serial != "":
					fmt.Fprintf(w, "revoked certificate %s\n", what)
				default:
					fmt.Fprintf(w, "revoked %s and its %d active certificate(s)\n", what, r.Certificates)
				}
			})
		},
	}
}

// --- disputes and revocations ----------------------------------------------

func disputesSpec() opSpec {
	var limit int
	return opSpec{
		use:   "disputes [--limit <n>]",
		short: "Lists the latest fraud cases: vendor fraud, invalid claims, double spends and double bindings",
		admin: true,
		flags: func(cmd *cobra.Command) {
			cmd.Flags().IntVar(&limit, "limit", 100, "how many of the latest cases, 1 to 1000")
		},
		run: func(ctx context.Context, o *op, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usagef("--limit is 1 to 1000, not %d", limit)
			}
			fc, err := o.client.Fraud(ctx, limit)
			if err != nil {
				return err
			}
			return o.print(fc, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "TIME\tKIND\tVENDOR\tSERIAL\tSEGMENT\tUSER")
				for _, c := range fc.Cases {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", unix(c.Time), c.Kind, c.Vendor, c.Serial, c.Seg, c.User)
				}
				if len(fc.Cases) == 0 {
					fmt.Fprintln(w, "(no cases)")
				}
			})
		},
	}
}

// revocations is the list as the command prints it with --json.
type revocations struct {
	Last    uint64             `json:"last"`
	Time    int64              `json:"time"`
	Entries []payword.CRLEntry `json:"entries"`
}

func revocationsSpec() opSpec {
	var since uint64
	return opSpec{
		use:   "revocations [--since <seq>]",
		short: "Lists the revocation list: the certificates gateways refuse",
		flags: func(cmd *cobra.Command) {
			f := cmd.Flags()
			f.Uint64Var(&since, "since", 0, "only entries after this sequence `number`")
		},
		run: func(ctx context.Context, o *op, _ []string) error {
			keys, err := agentKeys(ctx, o.client)
			if err != nil {
				return err
			}
			list := revocations{Entries: []payword.CRLEntry{}}
			for {
				raw, err := o.client.CRL(ctx, since)
				if ae, ok := errors.AsType[*agentapi.Error](err); ok && ae.Code == agentapi.CodeRateLimited && ae.RetryAfter <= time.Minute {
					select { // a long list: the agent paces anonymous readers
					case <-time.After(max(ae.RetryAfter, time.Second)):
						continue
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				if err != nil {
					return err
				}
				page, err := payword.OpenCRL(raw, keys)
				if err != nil {
					return fmt.Errorf("the agent's revocation list does not open with its keys: %w", err)
				}
				list.Entries = append(list.Entries, page.Entries...)
				list.Last, list.Time = page.Last, page.Time
				if page.Complete() || page.Next <= since {
					break
				}
				since = page.Next
			}
			return o.print(list, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "SEQ\tSERIAL\tREVOKED\tEXPIRES\tREASON")
				for _, e := range list.Entries {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.Seq, e.Serial, unix(e.Time), unix(e.Exp), e.Reason)
				}
				fmt.Fprintf(w, "%d entries; the list's head is %d as of %s\n", len(list.Entries), list.Last, unix(list.Time))
			})
		},
	}
}

// --- settlement and the ledger ---------------------------------------------

func statementSpec() opSpec {
	var from, to string
	var csv bool
	return opSpec{
		use:   "statement <vendor> [--from <time>] [--to <time>] [--csv]",
		short: "Prints a vendor's settlement statement over [--from, --to) (default: the 30 days up to now)",
		nargs: 1, admin: true,
		flags: func(cmd *cobra.Command) {
			f := cmd.Flags()
			f.StringVar(&from, "from", "", "start `time`: 2026-01-31, RFC 3339 or Unix seconds")
			f.StringVar(&to, "to", "", "end `time` (excluded): 2026-01-31, RFC 3339 or Unix seconds")
			f.BoolVar(&csv, "csv", false, "print the agent's CSV")
		},
		run: func(ctx context.Context, o *op, args []string) error {
			f, err := parseTime("--from", from)
			if err != nil {
				return err
			}
			t, err := parseTime("--to", to)
			if err != nil {
				return err
			}
			if csv && o.json {
				return usagef("--csv or --json, not both")
			}
			if csv {
				raw, err := o.client.VendorStatementCSV(ctx, args[0], f, t)
				if err == nil {
					_, err = o.out.Write(raw)
				}
				return err
			}
			s, err := o.client.VendorStatement(ctx, args[0], f, t)
			if err != nil {
				return err
			}
			return o.print(s, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "vendor %s, %s to %s, %s\n\n", s.Vendor, unix(s.From), unix(s.To), s.Currency)
				fmt.Fprintln(w, "SEQ\tTIME\tKIND\tREF\tAMOUNT\tBALANCE")
				fmt.Fprintf(w, "\t%s\topening\t\t\t%d\n", unix(s.From), s.Opening)
				for _, e := range s.Entries {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%d\t%d\n", e.Seq, unix(e.Time), e.Kind, e.Ref, e.Amount, e.Balance)
				}
				fmt.Fprintf(w, "\t%s\tclosing\t\t%d\t%d\n", unix(s.To), s.Credited, s.Closing)
			})
		},
	}
}

// parseTime reads a day (UTC), RFC 3339 or Unix seconds; "" is the agent's default.
func parseTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0), nil
	}
	for _, layout := range []string{time.RFC3339, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil && t.Unix() > 0 {
			return t, nil
		}
	}
	return time.Time{}, usagef("%s %q is not a time: give 2026-01-31, 2026-01-31T12:00:00Z or Unix seconds", flag, s)
}

func settleSpec() opSpec {
	return opSpec{
		use:   "settle",
		short: "Runs the settlement now: refunds the unclaimed tokens of certificates past expiry and the settlement window",
		admin: true,
		run: func(ctx context.Context, o *op, _ []string) error {
			s, err := o.client.Settle(ctx)
			if err != nil {
				return err
			}
			return o.print(s, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "settled %d certificate(s), refunded %d to their readers\n", s.Settled, s.Refunded)
			})
		},
	}
}

func ledgerCheckSpec() opSpec {
	return opSpec{
		use:   "check",
		short: "Checks that every balance is the sum of its ledger entries (exit status 1 when not)",
		admin: true,
		run: func(ctx context.Context, o *op, _ []string) error {
			lc, err := o.client.CheckLedger(ctx)
			if ae, ok := errors.AsType[*agentapi.Error](err); ok && ae.Code == agentapi.CodeLedgerMismatch && o.json {
				// A monitor reads stdout: say so there too.
				o.print(map[string]any{"ok": false, "error": ae.Message}, nil)
			}
			if err != nil {
				return err
			}
			return o.print(lc, func(w *tabwriter.Writer) { fmt.Fprintln(w, "the ledger balances") })
		},
	}
}
