package payword

import (
	"errors"
	"fmt"
)

// Typed verdicts. A gateway maps each to a precise 4xx; callers test them
// with errors.Is, since the returned errors wrap them with detail.
var (
	ErrMalformed    = errors.New("payword: malformed")
	ErrTooLarge     = errors.New("payword: too large")
	ErrBadSignature = errors.New("payword: bad signature")
	ErrUnknownKey   = errors.New("payword: unknown agent key")
	ErrExpired      = errors.New("payword: certificate expired")
	ErrNotYetValid  = errors.New("payword: certificate not yet valid")
	ErrWrongVendor  = errors.New("payword: wrong vendor")
	ErrWrongProduct = errors.New("payword: wrong product")
	ErrBadBinding   = errors.New("payword: binding does not match payment")
	ErrBadProof     = errors.New("payword: anchor not in certificate")
	ErrBadIndex     = errors.New("payword: segment or token index out of range")
	ErrBadAmount    = errors.New("payword: bad amount")
	ErrUnderpaid    = errors.New("payword: amount below price")
	ErrReplay       = errors.New("payword: token already spent here")
	ErrBadToken     = errors.New("payword: token does not hash to the last seen token")
	ErrStale        = errors.New("payword: stale or replayed signed document")
)

func errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{kind}, args...)...)
}
