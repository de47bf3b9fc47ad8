// Package payword implements Hashwall's token protocol: segmented PayWord hash
// chains, the Merkle tree over segment anchors, agent-signed certificates,
// user-signed segment bindings, the payment and challenge wire formats, and
// the vendor-side verification of a payment.
//
// The package is pure: no I/O, no clocks (callers pass the time), no storage.
// docs/protocol.md specifies every format and algorithm with test vectors.
//
// # Verifying a payment
//
// A vendor verifies a payment in one way, the order of docs/protocol.md §7
// ("Verification by the vendor"):
//
//  1. ParseAuthorization decodes the Authorization header.
//  2. Verifier.Verify checks it against the Request and the vendor's State
//     for (serial, segment), nil for a segment it has not seen, and returns
//     the State to store.
//  3. The vendor stores that State, so the same tokens never pay twice.
//
// Verify is three steps, exported for a gateway that keeps its states in a
// shared store and so cannot hand Verify a state it holds: Verifier.Check
// (certificate and request), CheckSegment (binding and Merkle path, once per
// segment), and Advance (the tokens against the last State, Genesis for a
// fresh segment). Such a gateway compare-and-sets Expected(p), the State an
// honest payment follows, and calls Advance only when the stored State
// differs. It must run all three steps, in this order.
//
// # Names
//
// Parse* decodes a wire value into its type and checks its shape (size,
// ranges, identifiers) but no signature: ParseAuthorization, ParseCertificate,
// ParseBinding, ParseChallenge, ParseReport, ParseSerial, ParseOrigin.
// Open* decodes an agent-signed document and returns it only if a trusted
// key signed it: OpenCRL, OpenKeys, OpenVendorOrigins. DecodeBase64 is
// neither: it is the byte encoding of every binary field, named after
// encoding/base64, whose strict form it is.
package payword
