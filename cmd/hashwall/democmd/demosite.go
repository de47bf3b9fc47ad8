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
		b.WriteString(`<!doctype html><meta name="viewport" content="width=device-width"><link rel="stylesheet" href="/planet.css"><title>The Daily Planet</title><h1>The Daily Planet</h1><p>Front page, free to read.</p><ul>`)
		for _, a := range demoArticles {
			fmt.Fprintf(&b, `<li><a href="%s">%s</a> (%s)</li>`, a.path, html.EscapeString(a.title), a.price)
		}
		b.WriteString(`</ul>`)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, b.String())
	})
	article := func(w http.ResponseWriter, r *http.Request, title string) {
		footer := `<p class="free">Free to read, from the newspaper's open archive. Thank you for reading!</p>`
		if user := r.Header.Get("X-Paywall-User"); user != "" {
			footer = `<p class="paid">Paid for by reader ` + html.EscapeString(user) + `. Thank you for reading!</p>`
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><meta name="viewport" content="width=device-width"><link rel="stylesheet" href="/planet.css"><title>%[1]s</title>
<header><a href="/">The Daily Planet</a></header>
<article><h1>%[1]s</h1>
<p class="lede">Our reporters were there, and this is what they saw.</p>
<p>The story the reader just paid for would run here, in full, without a subscription: the newspaper was paid a few cents for it, through the paywall in front of this site.</p>
%[2]s</article>
`, html.EscapeString(title), footer)
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
	mux.HandleFunc("/planet.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fmt.Fprint(w, planetCSS)
	})
	// The archive: a story for every number, at the article price; the
	// open archive has the same stories free to read (the paywall lets
	// /free/ through), for comparing a paid page with a free one.
	archive := func(w http.ResponseWriter, r *http.Request) {
		if _, err := strconv.ParseUint(r.PathValue("n"), 10, 20); err != nil {
			http.NotFound(w, r)
			return
		}
		article(w, r, "From the archive: story "+r.PathValue("n"))
	}
	mux.HandleFunc("/articles/archive/{n}", archive)
	mux.HandleFunc("/free/archive/{n}", archive)
	mux.HandleFunc("/articles/", page)
	mux.HandleFunc("/issues/", page)
	mux.HandleFunc("/features/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Paywall-Price", "3")
		page(w, r)
	})
	return mux
}

// planetCSS is the newspaper's own look, free like its front page.
const planetCSS = `body { margin: 0; background: #fbfaf7; color: #1d1d1f; font: 18px/1.6 Georgia, "DejaVu Serif", serif; }
header { border-bottom: 3px double #1d1d1f; padding: .75rem 1.25rem; text-align: center; }
header a { color: inherit; text-decoration: none; font: 700 1.6rem/1 "DejaVu Serif", Georgia, serif; letter-spacing: .04em; text-transform: uppercase; }
article, body > h1, body > p, body > ul { max-width: 40rem; margin-left: auto; margin-right: auto; padding: 0 1.25rem; }
h1 { font-size: 2.1rem; line-height: 1.2; margin: 1.5rem auto .75rem; }
.lede { font-size: 1.2rem; color: #444; }
.paid, .free { margin-top: 2rem; font: .85rem/1.4 "DejaVu Sans", sans-serif; color: #6b6b6b; border-top: 1px solid #ddd; padding-top: .75rem; }
`
