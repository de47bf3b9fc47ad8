//go:build !race

package paywall

// raceEnabled: the race detector slows the whole process several times.
const raceEnabled = false
