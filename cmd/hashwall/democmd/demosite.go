package democmd

import (
	"fmt"
	"html"
	"net/http"
	"strconv"
	"strings"
)

// demoIssue is the day whose whole issue the demo sells as one product.
const demoIssue = "2026-11-25"

// demoArticles are the built-in newspaper's stories: path → headline.
var demoArticles = []struct{ path, title, price string }{
	{"/articles/moon-landing", "Moon landing, live from the Sea of Tranquillity", "2 tokens"},
	{"/articles/city-council", "City council votes on the new tram line", "2 tokens"},
	{"/articles/premium/interview", "The long interview: a week with the mayor", "5 tokens"},
	{"/features/crossword", "Today's crossword", "3 tokens, priced by the site itself"},
	{"/issues/" + demoIssue + "/front", "Today's issue, front page", "20 tokens for the whole day's issue"},
	{"/issues/" + demoIssue + "/sport", "Today's issue, sport", "(covered by the day pass)"},
	{"/articles/archive/1", "From the archive: story 1 (and every other number)", "2 tokens each"},
}

// newspaper is the site behind the paywall: it knows nothing of payments
// except the Paywall-Price header it sets on the pages it prices itself.
func newspaper() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" && r.URL.Path != "/index.html" {
			http.NotFound(w, r)
			return
		}
		var b strings.Builder
		b.WriteString(`<!doctype html><title>The Daily Planet</title><h1>The Daily Planet</h1><p>Front page, free to read.</p><ul>`)
		for _, a := range demoArticles {
			fmt.Fprintf(&b, `<li><a href="%s">%s</a> (%s)</li>`, a.path, html.EscapeString(a.title), a.price)
		}
		b.WriteString(`</ul>`)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, b.String())
	})
	article := func(w http.ResponseWriter, r *http.Request, title string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>%[1]s</title><h1>%[1]s</h1><p>Paid for by %[2]s. Thank you for reading!</p>\n",
			html.EscapeString(title), html.EscapeString(r.Header.Get("X-Paywall-User")))
	}
	page := func(w http.ResponseWriter, r *http.Request) {
		for _, a := range demoArticles {
			if a.path == r.URL.Path {
				article(w, r, a.title)
				return
			}
		}
		http.NotFound(w, r)
	}
	// The archive: a story for every number, at the article price.
	mux.HandleFunc("/articles/archive/{n}", func(w http.ResponseWriter, r *http.Request) {
		if _, err := strconv.ParseUint(r.PathValue("n"), 10, 20); err != nil {
			http.NotFound(w, r)
			return
		}
		article(w, r, "From the archive: story "+r.PathValue("n"))
	})
	mux.HandleFunc("/articles/", page)
	mux.HandleFunc("/issues/", page)
	mux.HandleFunc("/features/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Paywall-Price", "3")
		page(w, r)
	})
	return mux
}
