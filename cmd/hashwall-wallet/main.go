// Command hashwall-wallet is the reader's wallet: it registers with an
// agent, buys token certificates, and fetches paywalled pages, paying the
// PayWord challenges within the limits you set.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
	"github.com/hashwall/hashwall/wallet"
)

const usage = `hashwall-wallet: pay for articles with Hashwall tokens.

Usage:
  hashwall-wallet register --agent URL USERNAME   create an account and a wallet
  hashwall-wallet buy N [--vendor V]              buy a certificate of N tokens
  hashwall-wallet balance                         tokens per certificate: free, bound, spent, pending
  hashwall-wallet get URL [--max-price P] [-o F]  fetch a page, paying if it asks (and within limits)
  hashwall-wallet history                         what you paid, where and when
  hashwall-wallet limits [--per-request N] [--per-site-day N]
                                                  show or set the caps on automatic payments
  hashwall-wallet recover --agent URL USERNAME    lost your wallet: the agent reissues your unspent tokens
  hashwall-wallet export FILE                     copy the (encrypted) wallet to FILE
  hashwall-wallet import FILE                     use the encrypted wallet FILE from now on

The wallet lives in $HASHWALL_WALLET, or ~/.hashwall/wallet.hw; --wallet PATH
overrides both. The password is asked for at the prompt, or read from
$HASHWALL_PASSWORD, or from the file given by --password-file (for scripts).
The same password protects the wallet file and your account at the agent.

The wallet pays a site only for a vendor that registered that site (its
origin, scheme://host[:port]) at your agent; any other challenge is refused
before a token is chosen, and the refusal counts toward the site's daily cap.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if a := os.Args[1]; a == "-h" || a == "--help" || a == "help" {
		fmt.Print(usage)
		return
	}
	cmd, args := os.Args[1], os.Args[2:]
	commands := map[string]func([]string) error{
		"register": cmdRegister, "buy": cmdBuy, "balance": cmdBalance, "get": cmdGet,
		"history": cmdHistory, "limits": cmdLimits, "recover": cmdRecover, "export": cmdExport, "import": cmdImport,
	}
	run, ok := commands[cmd]
	if !ok {
		fmt.Fprintf(os.Stderr, "hashwall-wallet: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err := run(args); errors.Is(err, errHelp) {
		return
	} else if err != nil {
		fmt.Fprintln(os.Stderr, "hashwall-wallet:", explain(err))
		os.Exit(1)
	}
}

// explain turns errors into advice a reader can act on.
func explain(err error) string {
	ae, _ := errors.AsType[*agentapi.Error](err)
	var oe *wallet.OriginError
	switch {
	case errors.As(err, &oe):
		return err.Error() + "\n  (a wallet pays a newspaper only on the sites it registered at your bank; if " + oe.Origin +
			" really is " + oe.Vendor + "'s site, its publisher must add it: PUT /v1/vendors/" + oe.Vendor + "/origins)"
	case errors.Is(err, os.ErrNotExist):
		return "no wallet here yet: create one with `hashwall-wallet register --agent URL USERNAME` (" + err.Error() + ")"
	case ae != nil && ae.Code == agentapi.CodeInsufficientFunds:
		return "your balance at the agent does not cover this purchase: fund your account, then buy again"
	case ae != nil && ae.Code == agentapi.CodeInvalidCredentials:
		return "the agent does not know this username with this password"
	}
	return err.Error()
}

// common flags of every command.
type common struct {
	fs           *flag.FlagSet
	walletPath   string
	passwordFile string
}

func newFlags(name string) *common {
	c := &common{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	def := os.Getenv("HASHWALL_WALLET")
	if def == "" {
		home, _ := os.UserHomeDir()
		def = filepath.Join(home, ".hashwall", "wallet.hw")
	}
	c.fs.SetOutput(io.Discard) // parse reports errors and help itself
	c.fs.StringVar(&c.walletPath, "wallet", def, "wallet file")
	c.fs.StringVar(&c.passwordFile, "password-file", "", "read the password from this file")
	return c
}

// parse accepts flags before and after positional arguments.
func (c *common) parse(args []string, positional int) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			c.usage(os.Stdout)
			return nil, errHelp
		} else if err != nil {
			c.usage(os.Stderr)
			return nil, fmt.Errorf("%v; see `hashwall-wallet %s --help`", err, c.fs.Name())
		}
		if c.fs.NArg() == 0 {
			break
		}
		pos = append(pos, c.fs.Arg(0))
		args = c.fs.Args()[1:]
	}
	if len(pos) != positional {
		return nil, fmt.Errorf("%s takes %d argument(s), got %d; see `hashwall-wallet help`", c.fs.Name(), positional, len(pos))
	}
	return pos, nil
}

// errHelp: the command's help was asked for, and printed.
var errHelp = errors.New("help shown")

// usage prints the command's line of the overall usage and its flags,
// spelt as that usage spells them (--name).
func (c *common) usage(w io.Writer) {
	for _, line := range strings.Split(usage, "\n") {
		if strings.HasPrefix(line, "  hashwall-wallet "+c.fs.Name()+" ") {
			fmt.Fprintln(w, "Usage:\n"+line)
		}
	}
	fmt.Fprintln(w, "\nFlags:")
	c.fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = " (default " + f.DefValue + ")"
		}
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-" // as the usage spells -o and -v
		}
		fmt.Fprintf(w, "  %s%s%s\n    \t%s%s\n", dash, f.Name, name, help, def)
	})
}

func (c *common) password(confirm bool) ([]byte, error) {
	if c.passwordFile != "" {
		b, err := os.ReadFile(c.passwordFile)
		return []byte(strings.TrimRight(string(b), "\r\n")), err
	}
	if p := os.Getenv("HASHWALL_PASSWORD"); p != "" {
		return []byte(p), nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return nil, errors.New("no password: set HASHWALL_PASSWORD or use --password-file when not at a terminal")
	}
	fmt.Fprint(os.Stderr, "Password: ")
	p, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil || !confirm {
		return p, err
	}
	fmt.Fprint(os.Stderr, "Again: ")
	again, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err == nil && string(again) != string(p) {
		err = errors.New("the passwords differ")
	}
	return p, err
}

func (c *common) open() (*wallet.Wallet, []byte, error) {
	if _, err := os.Stat(c.walletPath); err != nil {
		return nil, nil, err
	}
	pw, err := c.password(false)
	if err != nil {
		return nil, nil, err
	}
	w, err := wallet.Open(c.walletPath, pw)
	return w, pw, err
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

func cmdRegister(args []string) error {
	c := newFlags("register")
	agent := c.fs.String("agent", "", "the agent's URL (required)")
	name := c.fs.String("name", "", "your name, as identification data for the agent")
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	if *agent == "" {
		return errors.New("register needs --agent URL")
	}
	if _, err := os.Stat(c.walletPath); err == nil {
		return fmt.Errorf("a wallet already exists at %s; use --wallet for another", c.walletPath)
	}
	pw, err := c.password(true)
	if err != nil {
		return err
	}
	cx, cancel := ctx()
	defer cancel()
	var info map[string]string
	if *name != "" {
		info = map[string]string{"name": *name}
	}
	q := agentapi.RegisterUser{Username: pos[0], Password: string(pw), Info: info}
	if _, err := agentapi.NewClient(*agent, nil).RegisterUser(cx, q); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.walletPath), 0o700); err != nil {
		return err
	}
	w, err := wallet.Create(c.walletPath, pw, *agent, pos[0])
	if err != nil {
		return err
	}
	defer w.Close()
	pinKeys(cx, w)
	fmt.Printf("registered %s at %s; wallet at %s\nnext: fund your account, then `hashwall-wallet buy 500`\n", pos[0], *agent, c.walletPath)
	return nil
}

// pinKeys pins the bank's keys in a new wallet: they verify the origins
// documents that say which sites may be paid. Should it fail, the wallet
// pins them at its first payment instead.
func pinKeys(cx context.Context, w *wallet.Wallet) {
	if err := w.PinBankKeys(cx, w.Bank(nil)); err != nil {
		fmt.Fprintln(os.Stderr, "hashwall-wallet: the bank's keys could not be fetched now; they will be at the first payment:", err)
	}
}

func cmdBuy(args []string) error {
	c := newFlags("buy")
	vendor := c.fs.String("vendor", "", "buy a certificate for this vendor only")
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	var n int
	if _, err := fmt.Sscan(pos[0], &n); err != nil || n < 1 {
		return fmt.Errorf("buy takes a number of tokens, like `buy 500`, not %q", pos[0])
	}
	w, pw, err := c.open()
	if err != nil {
		return err
	}
	defer w.Close()
	cx, cancel := ctx()
	defer cancel()
	b, err := w.Buy(cx, w.Bank(nil).WithPassword(w.User(), string(pw)), n, *vendor)
	if err != nil {
		return err
	}
	fmt.Printf("bought %d tokens (certificate %s) for %s, valid until %s\n",
		b.Tokens, b.Serial, money(b.Cost, b.Currency), time.Unix(b.ExpiresAt, 0).Format(time.DateOnly))
	return nil
}

func money(minor uint64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", minor/100, minor%100, currency)
}

func cmdBalance(args []string) error {
	c := newFlags("balance")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	w, _, err := c.open()
	if err != nil {
		return err
	}
	defer w.Close()
	bal := w.Balance()
	if len(bal) == 0 {
		fmt.Println("no certificates yet: `hashwall-wallet buy 500`")
	}
	total := 0
	for _, b := range bal {
		state := "valid until " + b.Expires.Format(time.DateOnly)
		if b.Revoked {
			state = "revoked"
		}
		scope := "any vendor"
		if b.Scope != "*" {
			scope = "only " + b.Scope
		}
		fmt.Printf("certificate %s (%s, %s): %d tokens\n  free %d, spent %d, pending %d\n",
			b.Serial[:12], scope, state, b.Total, b.Free, b.Spent, b.Pending)
		for v, n := range b.Bound {
			fmt.Printf("  left at %s: %d\n", v, n)
		}
		total += b.Spendable()
	}
	fmt.Printf("spendable: %d tokens\n", total)
	if p := w.PendingPayments(); len(p) > 0 {
		fmt.Printf("%d payment(s) await confirmation; they are retried first on the next `get`\n", len(p))
	}
	return nil
}

func cmdGet(args []string) error {
	c := newFlags("get")
	maxPrice := c.fs.Uint("max-price", 0, "pay at most this many tokens for this page (default: the wallet's limit)")
	out := c.fs.String("o", "", "save the page to this file instead of printing it")
	verbose := c.fs.Bool("v", false, "tell how long the payment took")
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	w, _, err := c.open()
	if err != nil {
		return err
	}
	defer w.Close()
	paid := false
	tr := &wallet.Transport{Wallet: w, MaxPrice: uint32(*maxPrice), Paid: func(vendor, product string, price uint32, took time.Duration) {
		paid = true
		fmt.Fprintf(os.Stderr, "paid %d token(s) to %s for %s\n", price, vendor, product)
		if *verbose {
			fmt.Fprintf(os.Stderr, "the payment took %v (journal, payment, the vendor's answer)\n", took.Round(time.Microsecond))
		}
	}}
	cx, cancel := ctx()
	defer cancel()
	req, err := newGet(cx, pos[0])
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if *verbose {
		fmt.Fprintf(os.Stderr, "request took %v (paid: %v)\n", time.Since(start).Round(time.Microsecond), paid)
	}
	if resp.StatusCode >= 300 {
		if code := resp.Header.Get(payword.ErrorHeader); code != "" { // the site's words: quoted
			return fmt.Errorf("%s answered %s, the payment refused: %q", pos[0], resp.Status, code)
		}
		return fmt.Errorf("%s answered %s", pos[0], resp.Status)
	}
	dst := io.Writer(os.Stdout)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		dst = f
	}
	_, err = io.Copy(dst, resp.Body)
	return err
}

func cmdHistory(args []string) error {
	c := newFlags("history")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	w, _, err := c.open()
	if err != nil {
		return err
	}
	defer w.Close()
	for _, e := range w.History() {
		fmt.Printf("%s  %-20s %4d  %s %s %s\n", e.Time.Format(time.DateTime), e.Kind, e.Amount, e.Vendor, e.URL, e.Note)
	}
	return nil
}

func cmdLimits(args []string) error {
	c := newFlags("limits")
	perRequest := c.fs.Int("per-request", -1, "tokens one page may cost without --max-price")
	perSite := c.fs.Int("per-site-day", -1, "tokens one site may take in 24 hours (0: no cap)")
	if _, err := c.parse(args, 0); err != nil {
		return err
	}
	w, _, err := c.open()
	if err != nil {
		return err
	}
	defer w.Close()
	l := w.Limits()
	if *perRequest >= 0 || *perSite >= 0 {
		if *perRequest >= 0 {
			l.PerRequest = uint32(*perRequest)
		}
		if *perSite >= 0 {
			l.PerSiteDay = uint32(*perSite)
		}
		if err := w.SetLimits(l); err != nil {
			return err
		}
	}
	fmt.Printf("per request: %d tokens; per site and day: %d tokens\n", l.PerRequest, l.PerSiteDay)
	return nil
}

func cmdRecover(args []string) error {
	c := newFlags("recover")
	agent := c.fs.String("agent", "", "the agent's URL (needed when the wallet is lost)")
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	var w *wallet.Wallet
	var pw []byte
	created := false
	if _, err := os.Stat(c.walletPath); err == nil {
		if w, pw, err = c.open(); err != nil {
			return err
		}
	} else {
		if *agent == "" {
			return errors.New("recover needs --agent URL to make a new wallet")
		}
		if pw, err = c.password(false); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(c.walletPath), 0o700); err != nil {
			return err
		}
		if w, err = wallet.Create(c.walletPath, pw, *agent, pos[0]); err != nil {
			return err
		}
		created = true
	}
	defer w.Close()
	cx, cancel := ctx()
	defer cancel()
	if created {
		pinKeys(cx, w)
	}
	rec, err := w.Recover(cx, w.Bank(nil).WithPassword(pos[0], string(pw)))
	if err != nil {
		return err
	}
	fmt.Println("recovered: your old certificates are revoked")
	if rec.PendingCredit > 0 {
		fmt.Printf("%d (minor units) go back to your balance at %s, less what vendors claim until then\n",
			rec.PendingCredit, time.Unix(rec.CreditAt, 0).Local().Format(time.DateTime))
	}
	if rec.Bundle == nil {
		if rec.RecoveredValue > 0 {
			fmt.Printf("%d (minor units) went back to your balance\n", rec.RecoveredValue)
		}
		return nil
	}
	fmt.Printf("new certificate %s of %d tokens\n", rec.Bundle.Serial, rec.Bundle.Tokens)
	return nil
}

func cmdExport(args []string) error {
	c := newFlags("export")
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	w, _, err := c.open()
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Export(pos[0])
}

func cmdImport(args []string) error {
	c := newFlags("import")
	pos, err := c.parse(args, 1)
	if err != nil {
		return err
	}
	if _, err := os.Stat(c.walletPath); err == nil {
		return fmt.Errorf("a wallet already exists at %s; move it away first or use --wallet", c.walletPath)
	}
	pw, err := c.password(false)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.walletPath), 0o700); err != nil {
		return err
	}
	return wallet.Import(pos[0], c.walletPath, pw)
}

func newGet(ctx context.Context, raw string) (*http.Request, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", raw)
	}
	return http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
}
