package main

import (
	"context"
	"os"
	"testing"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
)

// TestBatchDemo is the short version of the demo: 40 lines, SIGINT after
// 12 creates, kill -9 after 24, then to completion. Skipped with -short
// (it builds ./cmd/hourglass and runs processes).
func TestBatchDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("batch demo: builds and runs hourglass processes; skipped with -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := os.Getenv("HOURGLASS_CRASH_BIN") // a prebuilt binary, for development
	if bin == "" {
		var err error
		if bin, err = gwproc.Build(ctx, dir); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := run(ctx, config{Bin: bin, Dir: dir, Lines: 40, Speed: 50, Concurrency: 6, SigintAt: 12, KillAt: 24})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if len(rep.Problems) > 0 {
		t.Fatalf("batch demo failed:\n%s", rep)
	}
}
