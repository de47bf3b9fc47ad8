package paywall

import (
	"errors"
	"net/http"

	"github.com/hashwall/hashwall/payword"
)

// The gateway's own reasons to refuse a payment, beside payword's.
var (
	errRevoked       = errors.New("certificate revoked")
	errUnavailable   = errors.New("payment store unavailable")
	errBoundElse     = errors.New("segment is bound to another vendor")
	errBadPrice      = errors.New("upstream sent an invalid Paywall-Price")
	errUnknownCert   = errors.New("the agent does not know the certificate")
	errCRLStale      = errors.New("the revocation list is out of date")
	errUpgradeUnpaid = errors.New("protocol upgrade of a page that may be priced, without a grant or payment")
	errVoided        = errors.New("this payment was voided: its answer was not a success, and its value goes back to the reader's account")
)

// codeBadUpstreamPrice answers a page whose upstream set an invalid
// Paywall-Price: the operator's fault, not the wallet's.
const codeBadUpstreamPrice payword.ErrorCode = "bad_upstream_price"

// paymentCodes maps each refusal to its HTTP status and Payment-Error code,
// as docs/protocol.md §7 lists them (TestPaymentCodesMatchProtocol holds the
// two together). The first entry whose error matches wins; anything else is
// malformed.
var paymentCodes = []struct {
	err    error
	status int
	code   payword.ErrorCode
}{
	{errUnavailable, http.StatusServiceUnavailable, payword.CodeUnavailable},
	{errCRLStale, http.StatusServiceUnavailable, payword.CodeCRLStale},
	{errRevoked, http.StatusForbidden, payword.CodeRevoked},
	{errUnknownCert, http.StatusForbidden, payword.CodeUnknownCertificate},
	{errBoundElse, http.StatusConflict, payword.CodeDoubleSpend},
	{payword.ErrTooLarge, http.StatusRequestHeaderFieldsTooLarge, payword.CodeTooLarge},
	{payword.ErrReplay, http.StatusConflict, payword.CodeReplay},
	{errVoided, http.StatusConflict, payword.CodeVoided},
	{payword.ErrBadToken, http.StatusForbidden, payword.CodeBadToken},
	{payword.ErrBadSignature, http.StatusForbidden, payword.CodeBadSignature},
	{payword.ErrUnknownKey, http.StatusForbidden, payword.CodeBadSignature},
	{payword.ErrBadBinding, http.StatusForbidden, payword.CodeBadBinding},
	{payword.ErrBadProof, http.StatusForbidden, payword.CodeBadProof},
	{payword.ErrExpired, http.StatusPaymentRequired, payword.CodeCertificateExpired},
	{payword.ErrNotYetValid, http.StatusPaymentRequired, payword.CodeCertificateExpired},
	{payword.ErrWrongVendor, http.StatusPaymentRequired, payword.CodeWrongVendor},
	{payword.ErrWrongProduct, http.StatusPaymentRequired, payword.CodeWrongProduct},
	{payword.ErrUnderpaid, http.StatusPaymentRequired, payword.CodeUnderpaid},
	{payword.ErrBadIndex, http.StatusBadRequest, payword.CodeBadIndex},
	{payword.ErrBadAmount, http.StatusBadRequest, payword.CodeBadIndex},
	{payword.ErrMalformed, http.StatusBadRequest, payword.CodeMalformed},
	{errUpgradeUnpaid, http.StatusForbidden, payword.CodeUpgradeUnpaid},
	{errBadPrice, http.StatusBadGateway, codeBadUpstreamPrice},
}

// classify maps a refusal to its HTTP status and a bounded code.
func classify(err error) (int, payword.ErrorCode) {
	for _, c := range paymentCodes {
		if errors.Is(err, c.err) {
			return c.status, c.code
		}
	}
	return http.StatusBadRequest, payword.CodeMalformed
}
