package wallet

import "testing"

// A grant for a page the vendor prices by query opens that query only
// (issue 9, item 6: a 1-token grant for /read?id=1 must not be offered to
// /read?id=2, which the upstream prices at 50); path and prefix grants
// open what a cookie of that path would.
func TestGrantOpens(t *testing.T) {
	for _, c := range []struct {
		product, path, query string
		want                 bool
	}{
		{"/read?id=1", "/read", "id=1", true},
		{"/read?id=1", "/read", "id=2", false},
		{"/read?id=1", "/read", "", false},
		{"/read?id=1", "/read/x", "id=1", false},
		{"/read?a=1&b=2", "/read", "b=2&a=1", true}, // the vendor's canonical order
		{"/read?a=1&b=2", "/read", "a=1&b=2&c=3", false},
		{"/read?id=1", "/read", "id=1;x", false}, // refused by url.ParseQuery
		{"/articles/a", "/articles/a", "", true},
		{"/articles/a", "/articles/a", "utm=x", true},
		{"/issues/d/", "/issues/d/p1", "", true},
		{"/issues/d", "/issues/d/p1", "", true},
		{"/issues/d", "/issues/dd", "", false},
	} {
		if got := grantOpens(c.product, c.path, c.query); got != c.want {
			t.Errorf("grantOpens(%q, %q, %q) = %v, want %v", c.product, c.path, c.query, got, c.want)
		}
	}
}
