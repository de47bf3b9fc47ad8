// Command stubagent stands in for the bank in bench/run.sh: it takes the
// gateway's claim reports (POST /v1/reports, with the vendor's API token)
// and answers every claim "paid", so that the gateway's report path (read
// the streams, ship, acknowledge and delete) runs as in production while
// the benchmark measures the gateway. It checks nothing else: it is no
// agent. Loopback only.
package main

import (
	"crypto/subtle"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/hashwall/hashwall/agentapi"
	"github.com/hashwall/hashwall/payword"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address, loopback")
	token := flag.String("token", "", "the vendor's API token")
	flag.Parse()
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		log.Fatalf("stubagent: -addr %q: a loopback address only", *addr)
	}
	srv := &http.Server{Addr: *addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := []byte(r.Header.Get("Authorization"))
		if r.Method != http.MethodPost || r.URL.Path != "/v1/reports" ||
			subtle.ConstantTimeCompare(auth, []byte("Bearer "+*token)) != 1 {
			http.NotFound(w, r)
			return
		}
		raw, _ := io.ReadAll(io.LimitReader(r.Body, payword.MaxReportSize+1))
		rep, err := payword.ParseReport(raw)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := agentapi.ReportResult{Batch: rep.Batch, Results: make([]agentapi.ClaimResult, 0, len(rep.Claims))}
		for _, c := range rep.Claims {
			v := agentapi.VerdictPaid
			if c.Void {
				v = agentapi.VerdictVoided
			}
			out.Results = append(out.Results, agentapi.ClaimResult{Auth: c.Auth, Verdict: v, Amount: uint64(c.Amount)})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}), ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
