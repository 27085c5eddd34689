package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
)

// TestCrashFullDisk is issue 11's full-disk crash run, short: SQLite, the
// create journal and the outputs on a small tmpfs that fills during the
// kills; no create orphaned by a failed save, nothing lost once space is
// back. Needs root (mount); skipped with -short.
func TestCrashFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("full-disk crash test: builds and runs hourglass processes; skipped with -short")
	}
	probe := filepath.Join(t.TempDir(), "probe")
	unmount, err := mountTmpfs(probe, 1<<20)
	if err != nil {
		t.Skipf("full-disk crash test: tmpfs mount not permitted here: %v", err)
	}
	unmount()
	ctx := context.Background()
	bin := os.Getenv("HOURGLASS_CRASH_BIN")
	if bin == "" {
		if bin, err = gwproc.Build(ctx, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := run(ctx, config{Bin: bin, Dir: t.TempDir(), DB: "sqlite", Jobs: 60, Kills: 9,
		MinGap: 200 * time.Millisecond, MaxGap: 1500 * time.Millisecond, Speed: 50, Workers: 8, Clients: 4,
		Settle: 2 * time.Minute, Seed: uint64(time.Now().UnixNano()), FullDisk: true, DiskSize: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if len(rep.Problems) > 0 || rep.Duplicates != 0 || rep.HeldOrphans != 0 || rep.KillsWhileFull == 0 {
		t.Fatalf("full-disk crash test failed:\n%s", rep)
	}
}
