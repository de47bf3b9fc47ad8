// Package agentapi is the contract of the bank's HTTP API (docs/agent-api.md):
// its wire types, its error body and codes, and a typed Client with one
// method per endpoint. The agent encodes these types and every caller (the
// gateway, the wallet, the demo, the tests) speaks to it through Client, so
// a change of the JSON fails the build of both sides instead of production.
//
// The PayWord scheme's own names (the Payment-Error codes, the receipt
// header, certificates, bindings, reports and signed documents) live in
// package payword.
package agentapi
