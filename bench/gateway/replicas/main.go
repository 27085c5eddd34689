// Command replicas is the gateway's multi-replica test (issue 12): N
// `hourglass serve` processes, each with its own empty working folder,
// share one PostgreSQL database and one S3 bucket (a versitygw process);
// a client spreads submissions over them, a front spreads the emulator's
// webhooks, and an HTTP proxy in front of the emulator logs every upstream
// call. Under load it kill -9s random replicas and restarts them, and
// kills and restarts the S3 server once; then every job must be terminal,
// every output verified (the S3 object and the emulator's bytes, size and
// sha256, and a download through every replica), with no duplicate
// upstream create.
//
//	go run ./bench/gateway/replicas -kills 20 -jobs 300                 # crash test
//	go run ./bench/gateway/replicas -kills 0 -jobs 200 -rps 10          # shared rate limit: busiest second <= 10 + burst
//	go run ./bench/gateway/replicas -kills 0 -jobs 400 -replicas 1,2,3  # throughput per replica count
//
// PostgreSQL: HOURGLASS_TEST_POSTGRES (a fresh schema per run). versitygw
// must be on PATH (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
)

func main() {
	var cfg config
	var replicas, bin string
	var rounds int
	flag.StringVar(&replicas, "replicas", "3", "replica counts to run, comma-separated (e.g. 1,2,3)")
	flag.IntVar(&rounds, "rounds", 1, "runs of each replica count, alternated (for medians)")
	flag.IntVar(&cfg.Jobs, "jobs", 300, "jobs")
	flag.IntVar(&cfg.Kills, "kills", 20, "kill -9 of random replicas (0: none)")
	flag.BoolVar(&cfg.S3Restart, "s3-restart", true, "kill and restart the S3 server once mid-run (with -kills > 0)")
	flag.DurationVar(&cfg.MinGap, "min-gap", 300*time.Millisecond, "shortest time between kills")
	flag.DurationVar(&cfg.MaxGap, "max-gap", 2*time.Second, "longest time between kills")
	flag.Float64Var(&cfg.Speed, "speed", 50, "emulator speed")
	flag.IntVar(&cfg.Workers, "workers", 8, "serve --workers per replica")
	flag.IntVar(&cfg.Clients, "clients", 6, "concurrent submitting clients")
	flag.Float64Var(&cfg.RPS, "rps", -1, "serve --upstream-rps (shared by the replicas; negative: unlimited)")
	flag.BoolVar(&cfg.LogCalls, "log-calls", false, "log upstream calls through a proxy (busiest second; jobs then tracked by polling)")
	flag.DurationVar(&cfg.Settle, "settle", 3*time.Minute, "how long jobs may take to finish after the load")
	flag.StringVar(&bin, "bin", "", "hourglass binary (default: build ./cmd/hourglass)")
	flag.Uint64Var(&cfg.Seed, "seed", uint64(time.Now().UnixNano()), "random seed")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if cfg.S3Bin, err = exec.LookPath("versitygw"); err != nil {
		fatal(fmt.Errorf("versitygw not on PATH: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"))
	}
	work, err := os.MkdirTemp("", "hourglass-replicas-")
	if err != nil {
		fatal(err)
	}
	if os.Getenv("HOURGLASS_KEEP") == "" {
		defer os.RemoveAll(work)
	}
	fmt.Println("work folder:", work)
	if bin == "" {
		fmt.Println("building ./cmd/hourglass ...")
		if bin, err = gwproc.Build(ctx, work); err != nil {
			fatal(err)
		}
	}
	cfg.Bin = bin
	cfg.Progress = os.Stdout
	failed := false
	for round := range rounds {
		for _, s := range strings.Split(replicas, ",") {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				fatal(fmt.Errorf("-replicas: %q", s))
			}
			dsn, drop, err := gwproc.Postgres(ctx, "hgrepl")
			if err != nil {
				fatal(err)
			}
			c := cfg
			c.Replicas = n
			c.Dir, _ = os.MkdirTemp(work, fmt.Sprintf("r%d-", n))
			c.DSN = dsn
			fmt.Printf("== round %d: %d replicas\n", round+1, n)
			rep, err := run(ctx, c)
			drop()
			if err != nil {
				fatal(err)
			}
			fmt.Print(rep)
			if len(rep.Problems) > 0 || rep.Duplicates > 0 {
				failed = true
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "replicas:", err)
	os.Exit(1)
}
