// Package agentcmd adds `hashwall agent` (the bank, standalone),
// `hashwall agent keygen` and the operator's commands (operator.go) to the
// caddy command line. The root package
// imports it, so a plug-in build by xcaddy.sh has them too.
package agentcmd

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/agent"
)

// settings are the tunables of `hashwall agent`, a flag each (agent.Settings'
// Table, which paywall_agent's Caddyfile options read too).
var settings = agent.Settings{}.WithDefaults()

// `hashwall agent` serves the bank standalone; `hashwall agent keygen`
// writes a signing key. Secrets come from the environment, never from
// flags, which other users can read in the process list.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "agent",
		Usage: "--redis <url> --key <file> [--listen <addr>] [--metrics-listen <addr>] [--<setting> <value>...]",
		Short: "Runs the Hashwall agent (the bank) standalone",
		Long: `
Serves the agent's HTTP API (/v1/...), and Prometheus metrics (/metrics)
on --metrics-listen only (off by default: the API listener is public).

Environment:
  HASHWALL_MASTER_KEY      base64 of 32 bytes; encrypts certificate secrets (required)
  HASHWALL_OLD_MASTER_KEYS comma-separated previous master keys, after a rotation
  HASHWALL_ADMIN_TOKEN     Bearer token of the admin endpoints
  HASHWALL_WEBHOOK_SECRET  HMAC key of the payment-provider webhook
Each may instead be read from a file: HASHWALL_MASTER_KEY_FILE=<path> and so
on (systemd's LoadCredential=), which keeps the secret out of the environment.

--key may be repeated for key rotation: the first key signs, all are published.
Every other flag is a setting of the paywall_agent directive of the same name
(with _ for -); durations take Caddy's forms (90s, 10m, 7d).
The agent refuses a Redis without the append-only file and appendfsync always
(on every master) unless --ephemeral.

Recovery revokes a user's certificates at once and credits their unclaimed
value --report-window later, less the claims that arrived meanwhile
(gateways ship batch claims at most every 5m); --recover-advance of it is
credited at once (the bank's risk per recovery); an account recovers at
most once per --recover-every.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("listen", "127.0.0.1:8480", "address to listen on")
			cmd.Flags().String("redis", "redis://127.0.0.1:6379/0", "Redis URL: redis://, redis-sentinel://, redis-cluster://")
			cmd.Flags().StringArray("key", nil, "signing key file (repeatable; the first signs)")
			cmd.Flags().String("metrics-listen", "", "address of /metrics, e.g. 127.0.0.1:9480 (empty: off)")
			for _, s := range settings.Table() {
				f := cmd.Flags().VarPF(s.Value, s.Flag(), "", s.Usage)
				if _, ok := s.Value.(interface{ IsBoolFlag() bool }); ok {
					f.NoOptDefVal = "true"
				}
			}
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(runAgent)

			keygen := &cobra.Command{
				Use:   "keygen --out <file> --kid <key id>",
				Short: "Writes a new agent signing key (mode 0600)",
				RunE:  caddycmd.WrapCommandFuncForCobra(runKeygen),
			}
			keygen.Flags().String("out", "", "key file to create (never overwritten)")
			keygen.Flags().String("kid", "", "key id published in certificates, e.g. agent-2026")
			cmd.AddCommand(keygen)
			addOperatorCommands(cmd)
			cmd.Args = cobra.NoArgs // a mistyped command must not start a bank
		},
	})
}

func runAgent(fl caddycmd.Flags) (int, error) {
	keys, err := fl.GetStringArray("key")
	if err != nil || len(keys) == 0 {
		return 1, fmt.Errorf("at least one --key is required (create one with: hashwall agent keygen)")
	}
	log, err := zap.NewProduction()
	if err != nil {
		return 1, err
	}
	defer log.Sync()
	sec := map[string]string{}
	for _, name := range []string{"HASHWALL_MASTER_KEY", "HASHWALL_OLD_MASTER_KEYS", "HASHWALL_ADMIN_TOKEN", "HASHWALL_WEBHOOK_SECRET"} {
		if sec[name], err = secret(name); err != nil {
			return 1, err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = agent.RunServer(ctx, agent.ServerConfig{
		Listen: fl.String("listen"), RedisURL: fl.String("redis"), KeyFiles: keys,
		MasterKey: sec["HASHWALL_MASTER_KEY"],
		// Commas or line breaks: a file may hold one key a line.
		OldMasterKeys: strings.FieldsFunc(sec["HASHWALL_OLD_MASTER_KEYS"], func(r rune) bool { return r == ',' || unicode.IsSpace(r) }),
		AdminToken:    sec["HASHWALL_ADMIN_TOKEN"],
		WebhookSecret: sec["HASHWALL_WEBHOOK_SECRET"],
		Settings:      settings, Logger: log,
		MetricsListen: fl.String("metrics-listen"),
	})
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// maxSecretFile bounds a *_FILE secret: the longest is a list of old master
// keys, 45 bytes each.
const maxSecretFile = 64 << 10

// secret is the environment variable name, or the content of the file that
// name_FILE names, less a final line break. Setting both is an error rather
// than a silent choice between two secrets.
func secret(name string) (string, error) {
	path := os.Getenv(name + "_FILE")
	if path == "" {
		return os.Getenv(name), nil
	}
	if os.Getenv(name) != "" {
		return "", fmt.Errorf("both %s and %s_FILE are set; keep one", name, name)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s_FILE: %s is over %d bytes", name, path, maxSecretFile)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

func runKeygen(fl caddycmd.Flags) (int, error) {
	out, kid := fl.String("out"), fl.String("kid")
	if out == "" || kid == "" {
		return 2, fmt.Errorf("--out and --kid are required")
	}
	k, err := agent.Keygen(out, kid)
	if err != nil {
		return 1, err
	}
	fmt.Printf("wrote %s (kid %s); gateways trust it with this line in their paywall block:\n\tkey %s %s\n",
		out, k.ID, k.ID, base64.RawURLEncoding.EncodeToString(k.Public()))
	return 0, nil
}
