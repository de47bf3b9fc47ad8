//go:build hashwall_demo

package hashwall

// A plug-in build has the demo only when asked (HASHWALL_DEMO=1 ./xcaddy.sh
// builds with this tag): it links the embedded store.
import _ "github.com/hashwall/hashwall/cmd/hashwall/democmd" // hashwall demo
