package cli

import "time"

// keepIfZero maps a duration flag's 0 ("keep") to the gateway's negative.
func keepIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
