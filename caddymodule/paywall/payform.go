package paywall

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/hashwall/hashwall/payword"
)

// A bank's hosted wallet pays by sending the reader's browser back to the
// site with a form posted to payPath (docs/protocol.md §7, "Paying with a
// form"). The gateway turns the form into the GET of the article it pays
// for, with the payment in its Authorization header, and runs that through
// its own payment path: the form spends and grants exactly what the header
// would. The article's body is discarded; the reader gets a 303 to it, with
// the grant cookie, or a page saying why not.
const payPath = "/.well-known/hashwall/pay"

// Bounds of the form: the whole body, and the return path and query.
const (
	maxPayForm     = 16 << 10
	maxReturnPath  = 2048
	maxReturnQuery = 2048
	// maxPaymentField is the payment without "PayWord ": its header's bound.
	maxPaymentField = payword.MaxPaymentHeader - len(payword.Scheme) - 1
)

// payForm is a posted form, checked.
type payForm struct {
	payment string // base64url, as it follows "PayWord " in a header
	ret     string // the article's path and query on this site
}

// formError refuses a form before any payment is looked at: nothing was
// spent. msg is one sentence for the reader.
type formError struct {
	status int
	code   payword.ErrorCode // empty: no Payment-Error
	msg    string
}

func (e *formError) Error() string { return e.msg }

func badForm(msg string) *formError {
	return &formError{status: http.StatusBadRequest, code: payword.CodeMalformed, msg: msg}
}

// readPayForm reads and checks the form of POST r: an urlencoded body of
// at most maxPayForm bytes.
func readPayForm(w http.ResponseWriter, r *http.Request) (payForm, *formError) {
	ct := r.Header.Values("Content-Type")
	if len(ct) != 1 || !formType(ct[0]) {
		return payForm{}, &formError{status: http.StatusUnsupportedMediaType, code: payword.CodeMalformed,
			msg: "The payment must come as a form (application/x-www-form-urlencoded)."}
	}
	if r.Body == nil {
		return parsePayForm("")
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, maxPayForm), r.ContentLength)
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return payForm{}, &formError{status: http.StatusRequestEntityTooLarge, code: payword.CodeTooLarge,
			msg: fmt.Sprintf("The form is larger than %d bytes.", maxPayForm)}
	} else if err != nil {
		return payForm{}, badForm("The form could not be read.")
	}
	return parsePayForm(string(body))
}

// readBody reads a body of at most maxPayForm bytes (rd enforces it),
// into one buffer when the length is given: io.ReadAll would grow it from
// 512 bytes, copying a payment's kilobytes several times.
func readBody(rd io.Reader, length int64) ([]byte, error) {
	b := make([]byte, 0, min(max(length, 0), maxPayForm)+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// formType reports whether a Content-Type value is the urlencoded form,
// with at most a UTF-8 charset.
func formType(v string) bool {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// parsePayForm parses an urlencoded body: `payment` and `return` exactly
// once each; other fields are ignored (a bank may name its submit button).
func parsePayForm(body string) (payForm, *formError) {
	var f payForm
	var seen [2]bool
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return payForm{}, badForm("The form is not valid form encoding.")
		}
		var i int
		switch name {
		case "payment":
			i = 0
		case "return":
			i = 1
		default:
			continue
		}
		if seen[i] {
			return payForm{}, badForm("The form gives the field " + name + " twice.")
		}
		seen[i] = true
		val, err := url.QueryUnescape(v)
		if err != nil {
			return payForm{}, badForm("The form is not valid form encoding.")
		}
		if i == 0 {
			f.payment = val
		} else {
			f.ret = val
		}
	}
	if !seen[0] || f.payment == "" {
		return payForm{}, badForm("The form carries no payment.")
	}
	if !seen[1] || f.ret == "" {
		return payForm{}, badForm("The form does not say which page to return to.")
	}
	if err := checkPaymentField(f.payment); err != nil {
		return payForm{}, err
	}
	if msg := checkReturn(f.ret); msg != "" {
		return payForm{}, badForm(msg)
	}
	return f, nil
}

// checkPaymentField admits base64url only: nothing else may follow
// "PayWord " in the header built from it.
func checkPaymentField(p string) *formError {
	if len(p) > maxPaymentField {
		return &formError{status: http.StatusRequestEntityTooLarge, code: payword.CodeTooLarge,
			msg: "The payment is too large to read."}
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return badForm("The payment is not base64url.")
		}
	}
	return nil
}

// checkReturn says what is wrong with a return path, or "". It must be a
// path of this site and nothing a browser could read as another site or
// another part of the URL: one leading slash (not `//` or `/\`, even
// percent-encoded), visible ASCII without backslash or fragment, valid
// percent-encoding in the path, at most maxReturnPath bytes of path and
// maxReturnQuery of query. The query is the handler's to judge.
func checkReturn(ret string) string {
	if ret[0] != '/' {
		return "The page to return to is not a path of this site."
	}
	for i := 0; i < len(ret); i++ {
		if c := ret[i]; c <= ' ' || c >= 0x7f || c == '\\' || c == '#' {
			return "The page to return to holds a character a path cannot."
		}
	}
	p, q, _ := strings.Cut(ret, "?")
	if len(p) > maxReturnPath || len(q) > maxReturnQuery {
		return "The page to return to is too long."
	}
	dec, err := url.PathUnescape(p)
	if err != nil {
		return "The page to return to is not a valid path."
	}
	if len(dec) > 1 && (dec[1] == '/' || dec[1] == '\\') {
		return "The page to return to is not a path of this site."
	}
	return ""
}

// servePayForm answers the form endpoint. Only POST is taken.
func (h *Handler) servePayForm(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.payPage(w, r, payOutcome{status: http.StatusMethodNotAllowed,
			msg: "This address takes only a payment that a bank posts as a form."})
		return nil
	}
	f, ferr := readPayForm(w, r)
	if ferr != nil {
		h.payPage(w, r, payOutcome{status: ferr.status, code: ferr.code, msg: ferr.msg})
		return nil
	}
	view, ok := returnView(r, f.ret)
	if !ok {
		h.payPage(w, r, payOutcome{status: http.StatusBadRequest, code: payword.CodeMalformed,
			msg: "The page to return to is not one this gateway serves."})
		return nil
	}
	ir, msg := payRequest(r, f, view)
	if ir == nil {
		h.payPage(w, r, payOutcome{status: http.StatusBadRequest, code: payword.CodeMalformed, msg: msg})
		return nil
	}
	cw := &payCapture{hdr: make(http.Header)}
	err := h.serveCaptured(cw, ir, next)
	h.answerPayForm(w, r, cw, err, f.ret)
	return nil
}

// returnView maps ret, a path as the browser asks for it, to the path the
// handler sees. A route that stripped a prefix before the paywall (as
// handle_path does) took it off the form's path too: it is taken off ret,
// which must lie under it. Otherwise ret is the view itself.
func returnView(r *http.Request, ret string) (string, bool) {
	orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request)
	if !ok || orig.URL == nil {
		return ret, true
	}
	prefix, ok := strings.CutSuffix(orig.URL.EscapedPath(), r.URL.EscapedPath())
	if !ok || prefix == "" || prefix[0] != '/' {
		return ret, true // as cookiePath reads it: no prefix
	}
	prefix = strings.TrimSuffix(prefix, "/")
	if len(ret) <= len(prefix) || ret[len(prefix)] != '/' || !equalASCIIFold(ret[:len(prefix)], prefix) {
		return "", false
	}
	view := ret[len(prefix):]
	return view, checkReturn(view) == ""
}

// payRequest is the GET of the article that the form pays for, as a
// wallet sends it: r's header and connection, the payment in
// Authorization, no body. Its original request (what the browser asked for,
// which names the grant cookie's path) is the article as the browser
// will ask for it: ret. Without a request, msg says why.
func payRequest(r *http.Request, f payForm, view string) (ir *http.Request, msg string) {
	u, err := url.ParseRequestURI(view)
	ou, oerr := url.ParseRequestURI(f.ret)
	if err != nil || oerr != nil || u.Scheme != "" || u.Host != "" || u.Opaque != "" || u.Path == "" || u.Path[0] != '/' {
		return nil, "The page to return to is not a valid path."
	}
	if u.Path == payPath {
		return nil, "The page to return to is this form's address."
	}
	orig := http.Request{Method: http.MethodGet, RemoteAddr: r.RemoteAddr, RequestURI: f.ret, URL: ou}
	ir = r.Clone(context.WithValue(r.Context(), caddyhttp.OriginalRequestCtxKey, orig))
	ir.Method = http.MethodGet
	ir.URL = u
	ir.RequestURI = u.RequestURI()
	ir.Body, ir.GetBody, ir.ContentLength = http.NoBody, nil, 0
	ir.TransferEncoding, ir.Trailer, ir.Close = nil, nil, false
	ir.Form, ir.PostForm, ir.MultipartForm = nil, nil, nil
	for _, k := range formDropped {
		ir.Header.Del(k)
	}
	ir.Header.Set("Authorization", payword.Scheme+" "+f.payment)
	return ir, ""
}

// formDropped are the POST's header fields the GET does without: its
// body's, an upgrade (the answer must be a page, not a connection), and
// conditionals and ranges (a paying request gets the whole page anyway).
var formDropped = []string{
	"Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Expect",
	"Connection", "Upgrade", "Http2-Settings", "Authorization",
	"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range",
}

// serveCaptured runs ir through the handler's payment path into cw. An
// upstream that aborts its stream (panic(http.ErrAbortHandler), as
// reverse_proxy does once its header is out) ends the capture, not the
// form's answer: what was captured decides.
func (h *Handler) serveCaptured(cw *payCapture, ir *http.Request, next caddyhttp.Handler) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			err = caddyhttp.Error(http.StatusBadGateway, errors.New("the upstream aborted its answer"))
		}
	}()
	return h.serve(cw, ir, next)
}

// payCapture is the response of the internal GET. It keeps the header and
// the first final status, and discards the body as it comes. It wraps no
// writer and unwraps to none: nothing the upstream writes, flushes or
// hijacks reaches the form's answer.
type payCapture struct {
	hdr    http.Header
	status int
}

func (c *payCapture) Header() http.Header { return c.hdr }

func (c *payCapture) WriteHeader(status int) {
	// Interim answers (103) are dropped; 101 is final (and no page).
	if c.status == 0 && (status < 100 || status > 199 || status == http.StatusSwitchingProtocols) {
		c.status = status
	}
}

func (c *payCapture) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (c *payCapture) ReadFrom(r io.Reader) (int64, error) {
	c.WriteHeader(http.StatusOK)
	return io.Copy(io.Discard, r)
}

func (c *payCapture) Flush() { c.WriteHeader(http.StatusOK) }

// FlushError is what http.ResponseController calls first.
func (c *payCapture) FlushError() error {
	c.Flush()
	return nil
}

// Hijack refuses: the internal request's answer must stay a page.
func (c *payCapture) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("paywall: the pay form's request cannot be hijacked")
}

// answerPayForm answers the form from the internal request's answer cw
// and error err. ret is the form's return, where the 303 goes.
func (h *Handler) answerPayForm(w http.ResponseWriter, r *http.Request, cw *payCapture, err error, ret string) {
	status := cw.status
	if status == 0 {
		// Nothing written: Caddy would answer the error's status.
		status = http.StatusOK
		if err != nil {
			status = http.StatusInternalServerError
			if he := (caddyhttp.HandlerError{}); errors.As(err, &he) && he.StatusCode != 0 {
				status = he.StatusCode
			}
		}
	}
	if err != nil {
		if status >= 500 {
			h.logger.Error("pay form: the article's request failed", zap.Int("status", status), zap.Error(err))
		} else {
			h.logger.Debug("pay form: the article's request", zap.Int("status", status), zap.Error(err))
		}
	}
	ch := cw.hdr
	code := payword.ErrorCode(ch.Get(payword.ErrorHeader))
	receipt := ch.Get(payword.ReceiptHeader)
	success := status >= 200 && status <= 299
	switch {
	case success && code == "" && receipt != "":
		// Accepted and kept (or sent again: the same grant).
		h.redirectPaid(w, ch, ret, "")
	case success && (code == payword.CodeNotCharged || code == ""):
		// The page opens without this payment (a grant the request
		// carried, or a page not priced): nothing was spent.
		h.redirectPaid(w, ch, ret, payword.CodeNotCharged)
	default:
		o := payOutcome{status: status, code: code, ret: ret}
		if success || status < 200 || status > 599 || status == http.StatusNotModified {
			// No page to show with that status: a gateway's failure.
			o.status = http.StatusBadGateway
		}
		if receipt != "" {
			// The answer failed but its payment stands (it could not be
			// voided): the reader keeps the grant paid for.
			o.kept = ch
		}
		h.payPage(w, r, o)
	}
}

// redirectPaid sends the reader to ret, with the captured grant.
func (h *Handler) redirectPaid(w http.ResponseWriter, ch http.Header, ret string, code payword.ErrorCode) {
	hdr := w.Header()
	keepGrant(hdr, ch)
	if code != "" {
		hdr.Set(payword.ErrorHeader, string(code))
	}
	hdr.Set("Location", ret)
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Length", "0")
	w.WriteHeader(http.StatusSeeOther)
}

// keepGrant copies the captured Set-Cookie fields and receipt to hdr.
func keepGrant(hdr, ch http.Header) {
	for _, c := range ch.Values("Set-Cookie") {
		hdr.Add("Set-Cookie", c)
	}
	if rc := ch.Get(payword.ReceiptHeader); rc != "" {
		hdr.Set(payword.ReceiptHeader, rc)
	}
}

// payOutcome is what the form's page says.
type payOutcome struct {
	status int
	code   payword.ErrorCode
	msg    string      // the form's own refusal; else by code and status
	ret    string      // the article, linked back to; empty if the form named none valid
	kept   http.Header // the captured header of a payment that stands
}

// The form's page: the 402 page's look, its own policy.
var (
	payPageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Title}}</title>
<style>/*CSS*/</style>
</head>
<body>
<main>
<p class="site">{{.Realm}}</p>
<h1>{{.Title}}</h1>
<p>{{.Message}}</p>
{{- with .Return}}
<p class="actions"><a class="button" href="{{.}}">Back to the article</a></p>
{{- end}}
<footer class="muted">HTTP {{.Status}}{{with .Code}} · Payment-Error: <code>{{.}}</code>{{end}}</footer>
</main>
</body></html>
`
	payPageTmpl = template.Must(template.New("pay").Parse(strings.Replace(payPageHTML, "/*CSS*/", page402CSS, 1)))
	payPageCSP  = "default-src 'none'; style-src 'sha256-" + cssHash(page402CSS) +
		"'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

// payPageData is what the form's page shows.
type payPageData struct {
	Realm, Title, Message, Code, Return string
	Status                              int
}

// codeSentences say in words what each Payment-Error means for a reader.
var codeSentences = map[payword.ErrorCode]string{
	payword.CodeMalformed:          "The payment could not be read, so nothing was spent.",
	payword.CodeBadIndex:           "The payment names tokens out of range, so nothing was spent.",
	payword.CodeTooLarge:           "The payment is too large to read, so nothing was spent.",
	payword.CodeUnderpaid:          "The page costs more than was paid (its price may have risen), so nothing was spent: the article shows the price now.",
	payword.CodeWrongVendor:        "The payment was made out to another site, so nothing was spent.",
	payword.CodeWrongProduct:       "The payment was for another page than this one, so nothing was spent.",
	payword.CodeCertificateExpired: "The tokens' certificate has expired or is not valid yet, so nothing was spent.",
	payword.CodeBadSignature:       "The payment's signature does not verify, so nothing was spent.",
	payword.CodeBadBinding:         "The payment's tokens are not bound to this site, so nothing was spent.",
	payword.CodeBadProof:           "The payment's tokens do not belong to its certificate, so nothing was spent.",
	payword.CodeBadToken:           "The payment's tokens do not verify, so nothing was spent.",
	payword.CodeRevoked:            "The bank has revoked the tokens' certificate, so nothing was spent.",
	payword.CodeUnknownCertificate: "The bank does not know the tokens' certificate, so nothing was spent.",
	payword.CodeUpgradeUnpaid:      "This page cannot be paid for with a form, so nothing was spent.",
	payword.CodeReplay:             "These tokens were spent at this site already, so the payment was refused.",
	payword.CodeDoubleSpend:        "These tokens are promised to another site, so the payment was refused.",
	payword.CodeUnavailable:        "The site could not record the payment just now and nothing was spent: try again in a moment.",
	payword.CodeCRLStale:           "The site could not check the bank's revocations lately and nothing was spent: try again later.",
	payword.CodeNotCharged:         "The page did not answer with the article, so the payment was not spent.",
	payword.CodeVoided:             "The page did not answer with the article, so the payment was voided: the bank credits its value back to your account.",
	codeBadUpstreamPrice:           "The site priced this page wrongly, so nothing was spent.",
}

// payPage answers the form with outcome o, as a small HTML page.
func (h *Handler) payPage(w http.ResponseWriter, r *http.Request, o payOutcome) {
	d := payPageData{Realm: h.realm, Status: o.status, Code: string(o.code), Return: o.ret, Message: o.msg}
	if d.Message == "" {
		d.Message = outcomeSentence(o)
	}
	switch {
	case o.kept != nil:
		d.Title = "The payment stands"
	case o.code == payword.CodeVoided:
		d.Title = "Payment voided"
	case o.code == payword.CodeNotCharged:
		d.Title = "Nothing was charged"
	case o.status == http.StatusServiceUnavailable:
		d.Title = "Payment not taken"
	case o.msg != "":
		d.Title = "The payment form was refused"
	case o.code == "":
		d.Title = "The page could not be served"
	default:
		d.Title = "Payment refused"
	}
	hdr := w.Header()
	if o.kept != nil {
		keepGrant(hdr, o.kept)
	}
	if o.code != "" {
		hdr.Set(payword.ErrorHeader, string(o.code))
	}
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	hdr.Set("Content-Security-Policy", payPageCSP)
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(o.status)
	if r.Method != http.MethodHead {
		if err := payPageTmpl.Execute(w, d); err != nil {
			h.logger.Error("pay form page", zap.Error(err))
		}
	}
}

// outcomeSentence is the page's sentence for a payment's outcome.
func outcomeSentence(o payOutcome) string {
	if o.kept != nil {
		return "The page answered with an error (" + statusText(o.status) + "), but the payment could not be voided: it stands, and you keep access to the page."
	}
	if s, ok := codeSentences[o.code]; ok {
		return s
	}
	if o.code != "" {
		return "The payment was refused (" + string(o.code) + ")."
	}
	return "The page answered with an error (" + statusText(o.status) + "), so nothing was spent."
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return strconv.Itoa(status) + " " + t
	}
	return strconv.Itoa(status)
}
