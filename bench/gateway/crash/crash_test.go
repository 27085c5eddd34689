package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
)

// TestCrash is issue 5's crash test: `hourglass serve` as a process,
// kill -9 at random moments under load, restarted on the same database and
// storage; see run for what is checked. The default is short (8 kills, 40
// jobs); HOURGLASS_CRASH_LONG=1 runs 30 kills and 300 jobs. Skipped with
// -short (it builds ./cmd/hourglass).
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: builds and runs hourglass processes; skipped with -short")
	}
	kills, jobs := 8, 40
	if os.Getenv("HOURGLASS_CRASH_LONG") == "1" {
		kills, jobs = 30, 300
	}
	ctx := context.Background()
	bin := os.Getenv("HOURGLASS_CRASH_BIN") // a prebuilt binary, for development
	if bin == "" {
		var err error
		if bin, err = gwproc.Build(ctx, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			dsn := "sqlite"
			if db == "postgres" {
				var drop func()
				var err error
				dsn, drop, err = gwproc.Postgres(ctx, "hgcrash")
				if err != nil {
					t.Skipf("skipping: %v", err)
				}
				t.Cleanup(drop)
			}
			rep, err := run(ctx, config{Bin: bin, Dir: t.TempDir(), DB: dsn, Jobs: jobs, Kills: kills,
				MinGap: 200 * time.Millisecond, MaxGap: 1500 * time.Millisecond, Speed: 50, Workers: 8, Clients: 4,
				Settle: 2 * time.Minute, Seed: uint64(time.Now().UnixNano())})
			if err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + rep.String())
			if len(rep.Problems) > 0 || rep.Duplicates != 0 || rep.Kills != kills {
				t.Fatalf("crash test failed:\n%s", rep)
			}
		})
	}
}
