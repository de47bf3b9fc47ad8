package payword

// The HTTP names of the PayWord scheme (docs/protocol.md §7) that gateway and
// wallet share: a gateway accepts a payment in the Authorization header
// (Scheme), answers with a receipt, and refuses with a machine-readable code.
const (
	ReceiptHeader = "Payment-Receipt"
	ErrorHeader   = "Payment-Error"
)

// ErrorCode is the value of a Payment-Error header. A refused payment spent
// nothing (replay: the tokens were spent before); the codes and their statuses are listed in docs/protocol.md §7.
type ErrorCode string

const (
	CodeMalformed          ErrorCode = "malformed"
	CodeBadIndex           ErrorCode = "bad_index"
	CodeTooLarge           ErrorCode = "too_large"
	CodeUnderpaid          ErrorCode = "underpaid"
	CodeWrongVendor        ErrorCode = "wrong_vendor"
	CodeWrongProduct       ErrorCode = "wrong_product"
	CodeCertificateExpired ErrorCode = "certificate_expired"
	CodeBadSignature       ErrorCode = "bad_signature"
	CodeBadBinding         ErrorCode = "bad_binding"
	CodeBadProof           ErrorCode = "bad_proof"
	CodeBadToken           ErrorCode = "bad_token"
	CodeRevoked            ErrorCode = "revoked"
	CodeUnknownCertificate ErrorCode = "unknown_certificate"
	CodeUpgradeUnpaid      ErrorCode = "upgrade_unpaid"
	CodeReplay             ErrorCode = "replay"
	CodeDoubleSpend        ErrorCode = "double_spend"
	CodeUnavailable        ErrorCode = "unavailable"
	CodeCRLStale           ErrorCode = "crl_stale"

	// CodeNotCharged comes with an answer that was not paid for (the
	// upstream's 404 or 5xx, a page the reader's grant already opens): the
	// payment it carried was not spent, and its tokens are the wallet's
	// again. The status is the answer's own.
	CodeNotCharged ErrorCode = "not_charged"
	// CodeVoided comes with an answer that was not paid for on a page
	// priced by a rule: the payment was spent, and its claim voided, so
	// the bank gives its value back to the reader's account; its tokens
	// are gone. A repeat of a voided payment gets it too (409).
	CodeVoided ErrorCode = "voided"
)
