package cli

import (
	"path/filepath"
	"strings"
	"time"
)

// keepIfZero maps a duration flag's 0 ("keep") to the gateway's negative.
func keepIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// journalDir is --journal-dir, or journal/ beside a SQLite database (the
// data folder), or ./hourglass-data/journal.
func journalDir(flag, db string) string {
	if flag != "" {
		return flag
	}
	if p, ok := strings.CutPrefix(db, "sqlite:"); ok {
		p = strings.TrimPrefix(p, "//")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return filepath.Join(filepath.Dir(p), "journal")
	}
	return filepath.Join("hourglass-data", "journal")
}
