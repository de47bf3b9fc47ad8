package web

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Bounds of a form an attacker controls.
const (
	MaxFormBytes  = 16 << 10
	MaxFormFields = 32
	MaxFieldBytes = 2048
)

// Form is a submitted form: its values (the first of each name) and the
// per-field error messages of its validation.
type Form struct {
	Values map[string]string
	Errors map[string]string
}

// NewForm is an empty form, for a page shown before any submission.
func NewForm() *Form { return &Form{Values: map[string]string{}, Errors: map[string]string{}} }

// ErrBadForm is a body that is not a bounded URL-encoded form.
var ErrBadForm = errors.New("web: not a form of the expected size")

// ParseForm reads an application/x-www-form-urlencoded body of at most
// MaxFormBytes, MaxFormFields fields of MaxFieldBytes of valid UTF-8.
func ParseForm(w http.ResponseWriter, r *http.Request) (*Form, error) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/x-www-form-urlencoded" {
		return nil, ErrBadForm
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFormBytes))
	if err != nil {
		return nil, ErrBadForm
	}
	return ParseFormBody(string(body))
}

// ParseFormBody parses an URL-encoded body under ParseForm's bounds.
func ParseFormBody(body string) (*Form, error) {
	if len(body) > MaxFormBytes || strings.Count(body, "&") >= MaxFormFields {
		return nil, ErrBadForm
	}
	vals, err := url.ParseQuery(body)
	if err != nil {
		return nil, ErrBadForm
	}
	f := NewForm()
	for k, v := range vals {
		if len(k) > 64 || len(v[0]) > MaxFieldBytes || !utf8.ValidString(k) || !utf8.ValidString(v[0]) {
			return nil, ErrBadForm
		}
		f.Values[k] = v[0]
	}
	return f, nil
}

// Get is a field's value, "" if absent.
func (f *Form) Get(name string) string { return f.Values[name] }

// Trimmed is a field's value without surrounding white space.
func (f *Form) Trimmed(name string) string { return strings.TrimSpace(f.Values[name]) }

// Fail records a field's error (the first one stays).
func (f *Form) Fail(name, msg string) {
	if _, ok := f.Errors[name]; !ok {
		f.Errors[name] = msg
	}
}

// OK reports whether no field failed.
func (f *Form) OK() bool { return len(f.Errors) == 0 }
