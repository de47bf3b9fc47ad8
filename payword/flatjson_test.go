package payword

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeFlat checks the hand-written payment scanner against
// encoding/json: whatever it accepts, encoding/json reads the same way.
func FuzzDecodeFlat(f *testing.F) {
	f.Add([]byte(`{"v":1,"cert":"SFdD","seg":1,"anchor":"AA","path":"","bind":"AA","i":2,"tok":"AA","p":1,"vendor":"v","product":"/a"}`))
	f.Add([]byte(`{"v":1,"product":"/a\"b\u00e9\ud83d\ude00","x":[1],"y":-0.5e+3,"z":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var mine paymentJSON
		if !decodeFlat(raw, &mine) {
			return
		}
		// encoding/json folds the case of keys; we do not.
		var keys map[string]json.RawMessage
		_ = json.Unmarshal(raw, &keys)
		for k := range keys {
			if _, str, num := (&paymentJSON{}).member(k); str == nil && num == nil {
				for _, known := range []string{"v", "cert", "seg", "anchor", "path", "bind", "i", "tok", "p", "vendor", "product"} {
					if strings.EqualFold(k, known) {
						return
					}
				}
			}
		}
		var std paymentJSON
		if err := json.Unmarshal(raw, &std); err != nil {
			t.Fatalf("accepted what encoding/json refuses (%v): %q", err, raw)
		}
		if mine != std {
			t.Fatalf("read differently from encoding/json:\n%+v\n%+v", mine, std)
		}
	})
}
