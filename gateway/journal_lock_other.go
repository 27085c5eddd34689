//go:build !unix

package gateway

import "os"

// lockFile is a no-op where flock is missing: run one process per journal
// folder there.
func lockFile(*os.File) (bool, error) { return true, nil }
