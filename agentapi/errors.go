package agentapi

import (
	"fmt"
	"time"
)

// Error is every refusal of the agent: the JSON body
// {"error": message, "code": code} with its HTTP status.
type Error struct {
	Status  int    `json:"-"`
	Message string `json:"error"`
	Code    Code   `json:"code"`
	// Owner is the vendor that owns a segment, in a 409 segment_owned of
	// POST /v1/bindings.
	Owner string `json:"owner,omitempty"`
	// RetryAfter is the Retry-After of a 429 (read by Client; the agent
	// sends it as a header).
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("the agent answered %d: %s (%s)", e.Status, e.Message, e.Code)
}

// Code is the machine-readable code of an Error.
type Code string

// The codes the agent sends; docs/agent-api.md lists each with its status.
const (
	CodeMalformed          Code = "malformed"
	CodeBadRequest         Code = "bad_request"
	CodeTooLarge           Code = "too_large"
	CodeNoRoute            Code = "no_route"
	CodeInternal           Code = "internal"
	CodeStoreUnavailable   Code = "store_unavailable"
	CodeUnauthorized       Code = "unauthorized"
	CodeInvalidCredentials Code = "invalid_credentials"
	CodeTooManyAttempts    Code = "too_many_attempts"
	CodeRateLimited        Code = "rate_limited"
	CodeBusy               Code = "busy"
	CodeUserRevoked        Code = "user_revoked"
	CodeVendorRevoked      Code = "vendor_revoked"
	CodeInvalidUsername    Code = "invalid_username"
	CodeInvalidPassword    Code = "invalid_password"
	CodeInvalidInfo        Code = "invalid_info"
	CodeUsernameTaken      Code = "username_taken"
	CodeInvalidVendor      Code = "invalid_vendor"
	CodeInvalidOrigins     Code = "invalid_origins"
	CodeVendorTaken        Code = "vendor_taken"
	CodeUnknownVendor      Code = "unknown_vendor"
	CodeWrongVendor        Code = "wrong_vendor"
	CodeGenericVendor      Code = "generic_vendor"
	CodeInvalidTokens      Code = "invalid_tokens"
	CodeInvalidPublicKey   Code = "invalid_public_key"
	CodeInvalidScope       Code = "invalid_scope"
	CodeInvalidRequestID   Code = "invalid_request_id"
	CodeInsufficientFunds  Code = "insufficient_funds"
	CodeRecoverTooOften    Code = "recover_too_often"
	CodeBatchMismatch      Code = "batch_mismatch"
	CodeBadBinding         Code = "bad_binding"
	CodeSegmentOwned       Code = "segment_owned"
	CodeUnknownCertificate Code = "unknown_certificate"
	CodeInvalidSince       Code = "invalid_since"
	CodeInvalidPeriod      Code = "invalid_period"
	CodeInvalidGrace       Code = "invalid_grace"
	CodeBadSignature       Code = "bad_signature"
	CodeInvalidCredit      Code = "invalid_credit"
	CodeUnknownUser        Code = "unknown_user"
	CodeUnknownAccount     Code = "unknown_account"
	CodeDisabled           Code = "disabled"
	CodeLedgerMismatch     Code = "ledger_mismatch"
)

// Codes lists every Code, for the test that holds docs/agent-api.md to them.
var Codes = []Code{
	CodeMalformed, CodeBadRequest, CodeTooLarge, CodeNoRoute, CodeInternal, CodeStoreUnavailable,
	CodeUnauthorized, CodeInvalidCredentials, CodeTooManyAttempts, CodeRateLimited, CodeBusy,
	CodeUserRevoked, CodeVendorRevoked, CodeInvalidUsername, CodeInvalidPassword, CodeInvalidInfo,
	CodeUsernameTaken, CodeInvalidVendor, CodeInvalidOrigins, CodeVendorTaken, CodeUnknownVendor,
	CodeWrongVendor, CodeGenericVendor, CodeInvalidTokens, CodeInvalidPublicKey, CodeInvalidScope,
	CodeInvalidRequestID, CodeInsufficientFunds, CodeRecoverTooOften, CodeBatchMismatch,
	CodeBadBinding, CodeSegmentOwned, CodeUnknownCertificate, CodeInvalidSince, CodeInvalidPeriod, CodeInvalidGrace,
	CodeBadSignature, CodeInvalidCredit, CodeUnknownUser, CodeUnknownAccount, CodeDisabled,
	CodeLedgerMismatch,
}
