// Command crash is the gateway's crash test (issue 5): it runs `hourglass
// serve` as a process under load, kill -9s it at random moments many times,
// restarts it on the same database and storage each time, and then shows
// that every submitted job reached a terminal state, every stored output is
// verified (size and sha256 of the bytes the gateway serves, of the file in
// storage, and of the bytes the emulator serves), no upstream create
// happened twice (the emulator process's own count proves it) and no job
// was lost.
//
//	go run ./bench/gateway/crash -kills 30 -jobs 300          # SQLite, then PostgreSQL when reachable
//	go run ./bench/gateway/crash -db sqlite -kills 8 -jobs 40
//	go run ./bench/gateway/crash -full-disk -kills 15 -jobs 150   # root: SQLite on a tmpfs filled mid-run
//
// The emulator is a separate `hourglass emulate` process on a fixed port,
// so it survives the kills, keeps retrying webhooks while the gateway is
// down, and its stats cover the whole run. The gateway is started with
// MAGIC_HOUR_API_KEY set and --base-url pointing at the emulator.
// PostgreSQL: HOURGLASS_TEST_POSTGRES, else
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; each run uses a
// fresh schema, dropped afterwards.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
)

func main() {
	var (
		kills, jobs, workers, clients int
		speed                         float64
		minGap, maxGap, settle        time.Duration
		dbs, bin                      string
		seed                          uint64
		keep, fullDisk                bool
		diskSize                      int64
	)
	flag.IntVar(&kills, "kills", 30, "kill -9 count")
	flag.IntVar(&jobs, "jobs", 300, "jobs submitted while the gateway is being killed")
	flag.IntVar(&workers, "workers", 8, "serve --workers")
	flag.IntVar(&clients, "clients", 4, "concurrent submitting clients")
	flag.Float64Var(&speed, "speed", 50, "emulator speed")
	flag.DurationVar(&minGap, "min-gap", 300*time.Millisecond, "shortest time between a restart and the next kill")
	flag.DurationVar(&maxGap, "max-gap", 2500*time.Millisecond, "longest time between a restart and the next kill")
	flag.DurationVar(&settle, "settle", 3*time.Minute, "how long jobs may take to become terminal after the last kill")
	flag.StringVar(&dbs, "db", "sqlite,postgres", "databases to run on, in order")
	flag.StringVar(&bin, "bin", "", "hourglass binary (default: build ./cmd/hourglass)")
	flag.Uint64Var(&seed, "seed", uint64(time.Now().UnixNano()), "random seed (kill times, run id)")
	flag.BoolVar(&keep, "keep", false, "keep the work folder (database, outputs, logs)")
	flag.BoolVar(&fullDisk, "full-disk", false, "SQLite, journal and outputs on a small tmpfs (root) that a ballast file fills during the middle third of the kills")
	flag.Int64Var(&diskSize, "disk-size", 96<<20, "size of the -full-disk tmpfs in bytes")
	flag.Parse()
	if fullDisk && !flagSet("db") {
		dbs = "sqlite"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	work, err := os.MkdirTemp("", "hourglass-crash-")
	if err != nil {
		fatal(err)
	}
	if bin == "" {
		fmt.Println("building ./cmd/hourglass ...")
		if bin, err = gwproc.Build(ctx, work); err != nil {
			fatal(err)
		}
	}
	failed := false
	for _, db := range strings.Split(dbs, ",") {
		dsn, drop := "sqlite", func() {}
		if db == "postgres" {
			dsn, drop, err = gwproc.Postgres(ctx, "hgcrash")
			if err != nil {
				fmt.Printf("postgres: skipped (%v)\n", err)
				continue
			}
		}
		dir, err := os.MkdirTemp(work, db+"-")
		if err != nil {
			fatal(err)
		}
		fmt.Printf("== %s: %d jobs, %d kills, seed %d ==\n", db, jobs, kills, seed)
		rep, err := run(ctx, config{Bin: bin, Dir: dir, DB: dsn, Jobs: jobs, Kills: kills, MinGap: minGap, MaxGap: maxGap,
			Speed: speed, Workers: workers, Clients: clients, Settle: settle, Seed: seed, Progress: os.Stdout,
			FullDisk: fullDisk, DiskSize: diskSize})
		drop()
		if err != nil {
			fmt.Printf("%s: %v (logs in %s)\n", db, err, dir)
			failed = true
			continue
		}
		fmt.Print(rep)
		if len(rep.Problems) > 0 {
			failed = true
		}
	}
	if failed || keep {
		fmt.Println("work folder (database, outputs, logs):", work)
	} else {
		os.RemoveAll(work)
	}
	if failed {
		os.Exit(1)
	}
}

func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "crash:", err)
	os.Exit(1)
}
