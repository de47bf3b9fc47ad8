package paywall

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashwall/hashwall/payword"
)

// TestPaymentCodesMatchProtocol holds paymentCodes to the Payment-Error table
// of docs/protocol.md: every code there is in the table with the same
// status, and every code of the table is there.
func TestPaymentCodesMatchProtocol(t *testing.T) {
	raw, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := map[payword.ErrorCode]int{}
	in := false
	code := regexp.MustCompile("`([a-z_]+)`")
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line == "| code | status | meaning |" {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		status, err := strconv.Atoi(strings.TrimSpace(cells[2]))
		if err != nil {
			t.Fatalf("status of %q: %v", line, err)
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			doc[payword.ErrorCode(m[1])] = status
		}
	}
	if len(doc) == 0 {
		t.Fatal("no Payment-Error table in docs/protocol.md")
	}
	ours := map[payword.ErrorCode]int{}
	for _, c := range paymentCodes {
		if s, ok := ours[c.code]; ok && s != c.status {
			t.Errorf("%s has two statuses: %d and %d", c.code, s, c.status)
		}
		ours[c.code] = c.status
	}
	for c, s := range doc {
		if got, ok := ours[c]; !ok {
			t.Errorf("%s (%d) is in docs/protocol.md, not in paymentCodes", c, s)
		} else if got != s {
			t.Errorf("%s: %d in paymentCodes, %d in docs/protocol.md", c, got, s)
		}
	}
	for c, s := range ours {
		if _, ok := doc[c]; !ok {
			t.Errorf("%s (%d) is in paymentCodes, not in docs/protocol.md", c, s)
		}
	}
	if s, c := classify(errGrant); s != doc[payword.CodeMalformed] || c != payword.CodeMalformed {
		t.Errorf("an unknown error: %d %s, want malformed", s, c)
	}
}
