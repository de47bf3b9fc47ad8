// Package payword implements Hashwall's token protocol: segmented PayWord hash
// chains, the Merkle tree over segment anchors, agent-signed certificates,
// user-signed segment bindings, the payment and challenge wire formats, and
// the vendor-side verification of a payment.
//
// The package is pure: no I/O, no clocks (callers pass the time), no storage.
// docs/protocol.md specifies every format and algorithm with test vectors.
package payword
