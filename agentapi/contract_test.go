package agentapi

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// clientMethods names the Client method of every route of the agent.
var clientMethods = map[string][]string{
	"GET /healthz":                             {"Healthy"},
	"GET /readyz":                              {"Ready"},
	"GET /v1/keys":                             {"Keys"},
	"GET /v1/crl":                              {"CRL"},
	"POST /v1/users":                           {"RegisterUser"},
	"POST /v1/sessions":                        {"Login"},
	"DELETE /v1/sessions":                      {"Logout"},
	"POST /v1/vendors":                         {"RegisterVendor"},
	"GET /v1/vendors/{vendor}/origins":         {"VendorOrigins"},
	"GET /v1/me":                               {"Me"},
	"POST /v1/certificates":                    {"Buy"},
	"POST /v1/certificates/recover":            {"Recover"},
	"POST /v1/reports":                         {"Report"},
	"POST /v1/bindings":                        {"Bind"},
	"GET /v1/statement":                        {"Statement", "StatementCSV"},
	"GET /v1/revenue":                          {"Revenue"},
	"GET /v1/revenue/products":                 {"Products"},
	"GET /v1/claims":                           {"Claims"},
	"GET /v1/disputes":                         {"Disputes"},
	"POST /v1/token":                           {"RotateToken"},
	"PUT /v1/vendors/{vendor}/origins":         {"SetOrigins"},
	"POST /v1/webhooks/payment":                {"PaymentWebhook"},
	"POST /v1/admin/credit":                    {"Credit"},
	"POST /v1/admin/revoke":                    {"Revoke"},
	"GET /v1/admin/fraud":                      {"Fraud"},
	"GET /v1/admin/users":                      {"Users"},
	"GET /v1/admin/vendors":                    {"VendorList"},
	"GET /v1/admin/stats":                      {"Stats"},
	"GET /v1/admin/vendors/{vendor}/statement": {"VendorStatement", "VendorStatementCSV"},
	"POST /v1/admin/settle":                    {"Settle"},
	"GET /v1/admin/ledger/check":               {"CheckLedger"},
}

// Routes is every route of the agent, as its mux registers them; the agent's
// tests hold its mux to this list.
func TestRoutes(t *testing.T) {
	if len(Routes) != len(clientMethods) {
		t.Fatalf("Routes has %d routes, clientMethods %d", len(Routes), len(clientMethods))
	}
	for _, r := range Routes {
		if _, ok := clientMethods[r]; !ok {
			t.Errorf("route %s has no client method", r)
		}
	}
}

// TestDocumentedRoutesHaveClientMethods reads every route of
// docs/agent-api.md and checks that Client has its method, and that the
// document lists every route.
func TestDocumentedRoutesHaveClientMethods(t *testing.T) {
	doc := readDoc(t)
	re := regexp.MustCompile("(?m)^(?:### |\\| )`(GET|POST|PUT|DELETE) (/[^` ?]*)")
	documented := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(doc, -1) {
		documented[m[1]+" "+m[2]] = true
	}
	ct := reflect.TypeOf(&Client{})
	for route, methods := range clientMethods {
		if !documented[route] {
			t.Errorf("docs/agent-api.md does not document %s", route)
		}
		for _, m := range methods {
			if _, ok := ct.MethodByName(m); !ok {
				t.Errorf("%s: Client has no method %s", route, m)
			}
		}
	}
	for route := range documented {
		if _, ok := clientMethods[route]; !ok {
			t.Errorf("docs/agent-api.md documents %s, which has no client method", route)
		}
	}
}

// TestCodesDocumented checks that docs/agent-api.md names every code the
// agent can send.
func TestCodesDocumented(t *testing.T) {
	doc := readDoc(t)
	seen := map[Code]bool{}
	for _, c := range Codes {
		if seen[c] {
			t.Errorf("code %s listed twice", c)
		}
		seen[c] = true
		if !strings.Contains(doc, "`"+string(c)+"`") {
			t.Errorf("docs/agent-api.md does not list the error code %s", c)
		}
	}
}

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/agent-api.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
