// Package web is the agent's page layer: one layout, embedded templates,
// form helpers, session cookies, CSRF tokens and the security headers of
// every page. It knows nothing of accounts: the agent's pages
// (agent/web_*.go) render through it, and later pages (vendors', the
// operator's) reuse it.
package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed templates/*.html static/*
var files embed.FS

// Site renders pages: each page template is parsed with the layout and the
// form helpers (templates/layout.html, templates/forms.html).
type Site struct {
	Name  string // the bank's name in every page's header
	pages map[string]*template.Template
}

// Page is what every page template gets.
type Page struct {
	Title string
	User  string // the logged-in username, "" if none
	CSRF  string // the token of the page's forms
	Flash string // a one-line notice above the content
	Form  *Form  // the page's form, with the reader's input and its errors
	Data  any    // the page's own data
	Area  *Area  // a logged-in area other than the reader's; nil on the reader's pages
}

// Area is a part of the site with its own log-in (the vendors' pages): the
// header shows its name, its links and its log-out form instead of the
// reader's.
type Area struct {
	Name   string // shown beside the bank's name
	Home   string // where the bank's name links to
	Who    string // who is logged in, on the log-out button; "" if nobody
	Logout string // the log-out form's action
	Links  []Link
}

// Link is one link of an area's header.
type Link struct {
	Href, Name string
	Current    bool // the page shown
}

// New parses every page of templates/ (all but the layout and helpers).
func New(name string) (*Site, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/forms.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s := &Site{Name: name, pages: map[string]*template.Template{}}
	for _, n := range names {
		if n == "templates/layout.html" || n == "templates/forms.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, err
		}
		s.pages[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	return s, nil
}

// Render writes page with status. It renders into a buffer first, so that
// a template error becomes a 500 rather than half a page.
func (s *Site) Render(w http.ResponseWriter, status int, page string, p Page) {
	t, ok := s.pages[page]
	if !ok {
		panic("web: no page " + page)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", struct {
		Page
		Site string
	}{p, s.Name}); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Static serves the embedded static files (the style sheet) under /static/.
func Static() http.Handler {
	sub, _ := fs.Sub(files, "static")
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

var funcs = template.FuncMap{
	"axisY": func(h int) int { return h - chartBottom },
	// rankBarX and rankValueX place a ranking's bars and values.
	"rankBarX":   func() int { return rankNameW },
	"rankValueX": func(w int) int { return rankNameW + w + 6 },
	// field is a form field of f for the "field" helper.
	"field": func(f *Form, name, label, typ string, attrs ...string) Field {
		fd := Field{Name: name, Label: label, Type: typ}
		if f != nil {
			fd.Error = f.Errors[name]
			if typ != "password" { // a password is never sent back
				fd.Value = f.Get(name)
			}
		}
		for i := 0; i+1 < len(attrs); i += 2 {
			switch attrs[i] {
			case "autocomplete":
				fd.Autocomplete = attrs[i+1]
			case "hint":
				fd.Hint = attrs[i+1]
			case "inputmode":
				fd.InputMode = attrs[i+1]
			default:
				panic(fmt.Sprintf("web: field attribute %q", attrs[i]))
			}
		}
		return fd
	},
}

// Field is one labelled input of a form, as the "field" helper draws it.
type Field struct {
	Name, Label, Type, Value, Error string
	Autocomplete, Hint, InputMode   string
}
