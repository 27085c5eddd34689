package cli

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
)

// keepIfZero maps a duration flag's 0 ("keep") to the gateway's negative.
func keepIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// journalDir is --journal-dir, or journal/ in the data folder.
func journalDir(flag, db string) string {
	if flag != "" {
		return flag
	}
	return filepath.Join(dataDir(db), "journal")
}

// dataDir is the folder of a SQLite database, else ./hourglass-data.
func dataDir(db string) string {
	if p, ok := strings.CutPrefix(db, "sqlite:"); ok {
		p = strings.TrimPrefix(p, "//")
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		return filepath.Dir(p)
	}
	return "hourglass-data"
}

// listenEmbeddedEmulator starts the in-process emulator with its state in
// the data folder, on the port it had before when that is free, so jobs in
// flight continue across a restart of hourglass serve.
func listenEmbeddedEmulator(ctx context.Context, dir string, logger *slog.Logger, opts ...emulator.Option) (*emulator.Server, error) {
	if dir == "" {
		return emulator.Listen(context.WithoutCancel(ctx), "127.0.0.1:0", opts...)
	}
	state := filepath.Join(dir, "emulator", "state.json")
	opts = append(opts, emulator.WithStateFile(state))
	if addr := emulator.SavedAddr(state); addr != "" {
		s, err := emulator.Listen(context.WithoutCancel(ctx), addr, opts...)
		if err == nil {
			return s, nil
		}
		logger.Warn("embedded emulator: its previous port is taken; using a new one (links handed out before are refreshed)", "addr", addr, "err", err)
	}
	return emulator.Listen(context.WithoutCancel(ctx), "127.0.0.1:0", opts...)
}
