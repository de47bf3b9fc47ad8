package agent

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hashwall/hashwall/agent/web"
	"github.com/hashwall/hashwall/payword"
)

// FuzzSignupForm: any body either is refused as a form or validates to a
// registration POST /v1/users accepts, or to field errors; never a panic.
func FuzzSignupForm(f *testing.F) {
	for _, s := range []string{
		"username=alice&password=correct+horse&password2=correct+horse",
		"username=%3Cscript%3E&password=x&password2=y", "username=&password=", "a=1&a=2&username=b",
		"username=" + strings.Repeat("a", 65) + "&password=12345678&password2=12345678", "%zz", "username=%00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := web.ParseFormBody(body)
		if err != nil {
			return
		}
		if len(form.Values) > web.MaxFormFields {
			t.Fatalf("%d fields", len(form.Values))
		}
		q := checkSignup(form)
		if form.OK() {
			if checkUser(&q) != nil || !payword.ValidID(q.Username) || len(q.Password) < minPassword || q.Password != form.Get("password2") {
				t.Fatalf("accepted %q", body)
			}
			return
		}
		for field, msg := range form.Errors {
			if msg == "" || !utf8.ValidString(msg) || strings.ContainsAny(msg, "<>") {
				t.Fatalf("error of %s: %q", field, msg)
			}
		}
	})
}

// FuzzLimitForm: the limit form validates to a canonical origin, a vendor
// id and tokens in 1..most, or to field errors.
func FuzzLimitForm(f *testing.F) {
	for _, s := range []string{
		"origin=https%3A%2F%2Fnews.example&vendor=planet&tokens=5", "tokens=-1", "tokens=99999999999999999999999",
		"origin=javascript:alert(1)&vendor=a&tokens=1", "tokens=%2B5", "tokens=1e3", "tokens=%EF%BC%95",
	} {
		f.Add(s)
	}
	const most = 1_000_000
	f.Fuzz(func(t *testing.T, body string) {
		form, err := web.ParseFormBody(body)
		if err != nil {
			return
		}
		l := checkLimitForm(form, most)
		if !form.OK() {
			return
		}
		if c, err := payword.ParseOrigin(l.Origin); err != nil || c != l.Origin {
			t.Fatalf("origin %q accepted", l.Origin)
		}
		if !payword.ValidID(l.Vendor) || l.Tokens < 1 || l.Tokens > most {
			t.Fatalf("accepted %+v from %q", l, body)
		}
	})
}
