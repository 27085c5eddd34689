package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hourglasshq/hourglass/bench/gateway/internal/gwproc"
)

// config is one demo run.
type config struct {
	Bin   string  // the hourglass binary
	Dir   string  // work folder: batch file, manifest, outputs, logs
	Lines int     // batch lines
	Speed float64 // emulator speed
	// SigintAt and KillAt are the upstream create counts at which the
	// first run gets SIGINT and the second kill -9.
	SigintAt, KillAt int
	Concurrency      int
}

// runReport is one `hourglass batch run` process.
type runReport struct {
	How      string // how it ended: "SIGINT", "kill -9", "to completion"
	ExitCode int
	Creates  int // upstream creates counted by the emulator when it ended
	Elapsed  time.Duration
}

type report struct {
	Lines           int
	Runs            []runReport
	UpstreamCreates int
	Complete        int
	OutcomeUnknown  int
	OtherStatus     int
	ManifestLines   int
	DistinctJobs    int
	OutputsVerified int
	Problems        []string
}

func (r *report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "batch demo: %d lines against an emulator process\n", r.Lines)
	for i, x := range r.Runs {
		fmt.Fprintf(&b, "  run %d: %-18s exit %2d after %7s; upstream creates so far %d\n", i+1, x.How, x.ExitCode, x.Elapsed.Round(time.Millisecond), x.Creates)
	}
	fmt.Fprintf(&b, "  upstream creates (emulator stats): %d for %d lines\n", r.UpstreamCreates, r.Lines)
	fmt.Fprintf(&b, "  manifest: %d lines, %d complete, %d create_outcome_unknown, %d other; %d distinct job ids\n",
		r.ManifestLines, r.Complete, r.OutcomeUnknown, r.OtherStatus, r.DistinctJobs)
	fmt.Fprintf(&b, "  outputs present with their manifest size and sha256: %d\n", r.OutputsVerified)
	if r.OutcomeUnknown > 0 {
		fmt.Fprintf(&b, "  %d line(s) create_outcome_unknown: a kill landed while their create was on the wire; by design they are\n"+
			"  not resent (the emulator counted their create: no job was lost or made twice; --resend-unknown would resend)\n", r.OutcomeUnknown)
	}
	if len(r.Problems) == 0 {
		b.WriteString("  OK\n")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  PROBLEM: %s\n", p)
	}
	return b.String()
}

// tools cycles the batch over fast tools of each kind (their example
// bodies from the catalog are valid without uploads).
var tools = []string{
	`{"tool":"ai-image-generator","name":"shot %[1]d","params":{"image_count":1,"style":{"prompt":"product shot %[1]d"}}}`,
	`{"tool":"ai-voice-generator","name":"voice %[1]d","params":{"style":{"prompt":"Line %[1]d of the catalogue.","voice_name":"Elon Musk"}}}`,
	`{"tool":"ai-image-generator","key":"hero-%[1]d","params":{"image_count":2,"style":{"prompt":"hero %[1]d"}}}`,
	`{"tool":"text-to-video","name":"clip %[1]d","params":{"end_seconds":5,"style":{"prompt":"waves %[1]d"}}}`,
}

func writeBatch(path string, n int) error {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, tools[i%len(tools)]+"\n", i)
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

func run(ctx context.Context, cfg config) (*report, error) {
	rep := &report{Lines: cfg.Lines}
	addr, err := gwproc.FreeAddr()
	if err != nil {
		return nil, err
	}
	emu, err := gwproc.Start(cfg.Bin, []string{"emulate", "--addr", addr, "--speed", strconv.FormatFloat(cfg.Speed, 'g', -1, 64)},
		nil, filepath.Join(cfg.Dir, "emulator"))
	if err != nil {
		return nil, err
	}
	defer emu.Stop(5 * time.Second)
	base := "http://" + addr
	stats := func() (int, error) {
		var s struct {
			Creates int `json:"creates"`
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_emulator/stats", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		err = json.NewDecoder(resp.Body).Decode(&s)
		return s.Creates, err
	}
	if err := waitFor(ctx, 30*time.Second, func() bool { _, err := stats(); return err == nil }); err != nil {
		return nil, fmt.Errorf("emulator did not start: %w", err)
	}
	input := filepath.Join(cfg.Dir, "shots.jsonl")
	if err := writeBatch(input, cfg.Lines); err != nil {
		return nil, err
	}
	out := filepath.Join(cfg.Dir, "out")
	args := []string{"batch", "run", input, "--base-url", base, "--api-key", "mhk_test_emulator",
		"-o", filepath.Join(out, "{line}-{name}-{n}.{ext}"), "--concurrency", strconv.Itoa(cfg.Concurrency), "--json"}
	// The emulator runs cfg.Speed times faster than Magic Hour: poll often.
	env := []string{"MAGIC_HOUR_POLL_INTERVAL=0.05", "NO_COLOR=1"}

	stages := []struct {
		how  string
		at   int
		stop func(*exec.Cmd)
	}{
		{"stopped by SIGINT", cfg.SigintAt, func(c *exec.Cmd) { _ = c.Process.Signal(syscall.SIGINT) }},
		{"stopped by kill -9", cfg.KillAt, func(c *exec.Cmd) { _ = c.Process.Kill() }},
		{"ran to completion", 0, nil},
	}
	for i, st := range stages {
		cmd := exec.CommandContext(ctx, cfg.Bin, args...)
		cmd.Env = append(os.Environ(), env...)
		logf, err := os.Create(filepath.Join(cfg.Dir, fmt.Sprintf("run%d.log", i+1)))
		if err != nil {
			return nil, err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		start := time.Now()
		if err := cmd.Start(); err != nil {
			logf.Close()
			return nil, err
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var werr error
		if st.stop != nil {
			stopped := false
			for !stopped {
				select {
				case werr = <-done:
					stopped = true // finished before the stop point
					rep.problem("run %d ended before its %s point (%d creates)", i+1, st.how, st.at)
					continue
				case <-time.After(5 * time.Millisecond):
				}
				if n, err := stats(); err == nil && n >= st.at {
					// A moment not tied to a create: stopping right when the
					// emulator counted one would aim at the one window where
					// the answer is not recorded yet.
					time.Sleep(time.Duration(rand.N(40)) * time.Millisecond)
					st.stop(cmd)
					werr = <-done
					stopped = true
				}
			}
		} else {
			werr = <-done
		}
		logf.Close()
		rr := runReport{How: st.how, Elapsed: time.Since(start)}
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			rr.ExitCode = ee.ExitCode()
		} else if werr != nil {
			return nil, werr
		}
		rr.Creates, _ = stats()
		rep.Runs = append(rep.Runs, rr)
	}
	if got := rep.Runs[0].ExitCode; got != 4 {
		rep.problem("the SIGINT run exited %d, want 4 (interrupted)", got)
	}
	rep.UpstreamCreates, err = stats()
	if err != nil {
		return nil, err
	}
	if err := verify(rep, strings.TrimSuffix(input, ".jsonl")+".manifest.jsonl"); err != nil {
		return nil, err
	}
	if got := rep.Runs[2].ExitCode; got != 0 && rep.OutcomeUnknown == 0 {
		log, _ := os.ReadFile(filepath.Join(cfg.Dir, "run3.log"))
		rep.problem("the last run exited %d, want 0; its output:\n%s", got, log)
	}
	if rep.UpstreamCreates != cfg.Lines {
		rep.problem("%d upstream creates for %d lines", rep.UpstreamCreates, cfg.Lines)
	}
	return rep, nil
}

// verify reads the manifest and checks every output file.
func verify(rep *report, manifest string) error {
	f, err := os.Open(manifest)
	if err != nil {
		return err
	}
	defer f.Close()
	type entry struct {
		Line    int    `json:"line"`
		Status  string `json:"status"`
		JobID   string `json:"job_id"`
		Outputs []struct {
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"outputs"`
	}
	ids := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("manifest line %d: %w", rep.ManifestLines+1, err)
		}
		rep.ManifestLines++
		if e.Line != rep.ManifestLines {
			rep.problem("manifest line %d is input line %d", rep.ManifestLines, e.Line)
		}
		if e.JobID != "" {
			if ids[e.JobID] {
				rep.problem("job %s appears twice", e.JobID)
			}
			ids[e.JobID] = true
		}
		switch e.Status {
		case "complete":
			rep.Complete++
		case "create_outcome_unknown":
			rep.OutcomeUnknown++
			continue
		default:
			rep.OtherStatus++
			rep.problem("line %d is %s", e.Line, e.Status)
			continue
		}
		if len(e.Outputs) == 0 {
			rep.problem("line %d has no outputs", e.Line)
		}
		for _, o := range e.Outputs {
			sum, n, err := hashFile(o.Path)
			if err != nil || n != o.Size || sum != o.SHA256 {
				rep.problem("line %d: %s: %d bytes sha256 %s (%v); manifest says %d %s", e.Line, o.Path, n, sum, err, o.Size, o.SHA256)
				continue
			}
			rep.OutputsVerified++
		}
	}
	rep.DistinctJobs = len(ids)
	if rep.ManifestLines != rep.Lines {
		rep.problem("manifest has %d lines for %d input lines", rep.ManifestLines, rep.Lines)
	}
	return sc.Err()
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
