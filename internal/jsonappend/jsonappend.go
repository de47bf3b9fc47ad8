// Package jsonappend appends JSON values to byte slices exactly as
// encoding/json would write them, without reflection or allocation, for
// the few records the payment path writes per request.
package jsonappend

import "encoding/json"

// String appends s as a JSON string, byte for byte as json.Marshal(s).
// Plain printable ASCII, the usual case, is copied as it is; anything
// encoding/json would escape (quotes, backslashes, controls, <, >, &,
// non-ASCII) goes through encoding/json.
func String(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s) // a string always marshals
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
