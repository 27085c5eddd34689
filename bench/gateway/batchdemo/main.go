// Command batchdemo is issue 13's batch demo: `hourglass batch run` on a
// batch file against an emulator in another process, interrupted twice
// (SIGINT once the emulator has counted -sigint-at creates, kill -9 at
// -kill-at), then rerun to completion. It checks that every line ran
// exactly once (the emulator's create count equals the number of lines),
// that the manifest has one line per input line, and that every output
// is on disk with the size and sha256 the manifest records.
//
//	go run ./bench/gateway/batchdemo -lines 200
//
// `go test ./bench/gateway/batchdemo` runs a short version (40 lines).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
)

func main() {
	lines := flag.Int("lines", 200, "batch lines")
	speed := flag.Float64("speed", 50, "emulator speed")
	conc := flag.Int("concurrency", 8, "batch --concurrency")
	dir := flag.String("dir", "", "work folder (default: a temp folder, removed at the end)")
	bin := flag.String("bin", "", "a prebuilt hourglass binary (default: build ./cmd/hourglass)")
	flag.Parse()
	ctx := context.Background()
	if *dir == "" {
		d, err := os.MkdirTemp("", "batchdemo-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if *bin == "" {
		b, err := gwproc.Build(ctx, *dir)
		if err != nil {
			fatal(err)
		}
		*bin = b
	}
	abs, _ := filepath.Abs(*dir)
	rep, err := run(ctx, config{Bin: *bin, Dir: abs, Lines: *lines, Speed: *speed, Concurrency: *conc,
		SigintAt: *lines * 3 / 10, KillAt: *lines * 6 / 10})
	if err != nil {
		fatal(err)
	}
	fmt.Print(rep)
	if len(rep.Problems) > 0 {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "batchdemo:", err)
	os.Exit(1)
}
