package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
)

// TestReplicas is the short multi-replica crash test: three serve
// processes on one PostgreSQL schema and one S3 bucket, random replicas
// killed and restarted, the S3 server restarted once; see run for the
// checks. Skipped with -short, without versitygw or without PostgreSQL.
func TestReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("replicas test: builds and runs hourglass processes; skipped with -short")
	}
	s3bin, err := exec.LookPath("versitygw")
	if err != nil {
		t.Skip("versitygw not installed: skipping (.ci/run installs it)")
	}
	ctx := context.Background()
	dsn, drop, err := gwproc.Postgres(ctx, "hgrepl")
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	t.Cleanup(drop)
	bin := os.Getenv("HOURGLASS_CRASH_BIN")
	if bin == "" {
		if bin, err = gwproc.Build(ctx, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := run(ctx, config{Bin: bin, S3Bin: s3bin, Dir: t.TempDir(), DSN: dsn, Replicas: 3, Jobs: 40, Kills: 6,
		MinGap: 300 * time.Millisecond, MaxGap: 1200 * time.Millisecond, S3Restart: true, Speed: 50, Workers: 4,
		Clients: 4, RPS: -1, Settle: 2 * time.Minute, Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if len(rep.Problems) > 0 || rep.Duplicates != 0 || rep.Kills != 6 || rep.S3Restarts != 1 {
		t.Fatalf("replicas test failed:\n%s", rep)
	}
}
