package cli

// `hourglass batch run FILE`: the command line of internal/batch.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/internal/batch"
	"github.com/hourglasshq/hourglass/magichour"
)

// envGatewayKey is the default of --gateway-key.
const envGatewayKey = "HOURGLASS_GATEWAY_KEY"

func newBatchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "batch",
		Short: "Run many jobs from a JSONL or CSV file, resumably",
	}
	cmd.AddCommand(newBatchRunCmd())
	return cmd
}

type batchFlags struct {
	manifest, out, names    string
	concurrency             int
	toolConc                []string
	maxCredits              int64
	dryRun, skipInvalid     bool
	retryFailed, resendUnkn bool
	gatewayURL, gatewayKey  string
}

func newBatchRunCmd() *cobra.Command {
	f := &batchFlags{}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a batch file (JSONL or CSV); rerun it to resume",
		Long: `Run every line of FILE as a job, at most --concurrency at once, and save
the outputs in -o. FILE is JSONL, one {"tool", "params", "key"?, "name"?}
object per line, or CSV (.csv) with a header of tool, key, name and one
column per parameter path (style.prompt, image_count, ...; cells are typed
by the tool's schema, JSON for arrays and objects).

Every line is checked first: a bad line (any, reported with its line
number and field) stops the batch before anything is created, unless
--skip-invalid. Each line's idempotency key is its "key" or a hash of its
content. The manifest (--manifest, default FILE.manifest.jsonl beside
FILE) has one JSON line per input line (line, key, job_id, status,
outputs with sha256, error) and is rewritten atomically as the batch runs.

Rerunning the same command continues where it stopped (after Ctrl-C, a
crash or kill -9): nothing is created twice. A create whose answer was
lost is recorded as create_outcome_unknown and not resent (Magic Hour
cannot look it up); --resend-unknown resends it, at the risk of a second
charge. The manifest is itself a batch file: "batch run FILE.manifest.jsonl
--retry-failed" (or FILE --retry-failed) runs only the failed lines again.

Output names come from -o's template: {line}, {key}, {name}, {id}, {n},
{ext} (default {line}-{n}.{ext}), e.g. -o 'out/{name}-{n}.{ext}'.

With --gateway URL (and --gateway-key, default $` + envGatewayKey + `) the lines go
to an hourglass gateway as one batch (POST /api/batches); the gateway
creates and tracks the jobs, the command waits and downloads.

Exit codes: 0 every line complete; 1 some line failed, is unknown, or was
kept by the credit cap; 2 invalid lines or flags (nothing created); 3 API
error; 4 interrupted (rerun to continue).`,
		Example: `  hourglass batch run shots.jsonl --emulator --dry-run
  hourglass batch run shots.csv -o 'out/{name}-{n}.{ext}' --concurrency 8 --max-credits 2000
  hourglass batch run shots.manifest.jsonl --retry-failed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runBatch(cmd, args[0], f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.manifest, "manifest", "", "manifest file (default: FILE.manifest.jsonl beside FILE)")
	fl.StringVarP(&f.out, "output", "o", ".", "output folder, optionally with a name template: DIR or 'DIR/{line}-{n}.{ext}'")
	fl.StringVar(&f.names, "names", "", "output name template inside -o ({line} {key} {name} {id} {n} {ext}); default {line}-{n}.{ext}")
	fl.IntVar(&f.concurrency, "concurrency", 4, "jobs in flight at once")
	fl.StringArrayVar(&f.toolConc, "tool-concurrency", nil, "per-tool limit, TOOL=N (repeatable), e.g. text-to-video=2")
	fl.Int64Var(&f.maxCredits, "max-credits", 0, "credit cap for the whole batch (estimates before, charges as it goes); 0: none")
	fl.BoolVar(&f.dryRun, "dry-run", false, "validate every line and print the estimated credits; create nothing")
	fl.BoolVar(&f.skipInvalid, "skip-invalid", false, "run the valid lines even when some are invalid")
	fl.BoolVar(&f.retryFailed, "retry-failed", false, "create the failed and canceled lines again")
	fl.BoolVar(&f.resendUnkn, "resend-unknown", false, "resend lines whose create may have been charged without an answer (may charge twice)")
	fl.StringVar(&f.gatewayURL, "gateway", "", "run through an hourglass gateway at this URL")
	fl.StringVar(&f.gatewayKey, "gateway-key", "", "the gateway tenant key (default $"+envGatewayKey+")")
	return cmd
}

func runBatch(cmd *cobra.Command, input string, f *batchFlags) error {
	e := newEnv(cmd)
	if st, err := os.Stat(input); err != nil || st.IsDir() {
		return usageErrorf("%s: not a readable file", input)
	}
	dir, tmpl := splitOutput(f.out)
	if f.names != "" {
		tmpl = f.names
	}
	toolConc := map[string]int{}
	for _, tc := range f.toolConc {
		tool, n, ok := strings.Cut(tc, "=")
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if !ok || err != nil {
			return usageErrorf("--tool-concurrency %q: want TOOL=N", tc)
		}
		toolConc[strings.TrimSpace(tool)] = v
	}
	if f.concurrency < 1 {
		return usageErrorf("--concurrency must be at least 1")
	}
	opts := batch.Options{
		Input: input, Manifest: f.manifest, OutDir: dir, NameTemplate: tmpl,
		Concurrency: f.concurrency, ToolConcurrency: toolConc, MaxCredits: f.maxCredits,
		DryRun: f.dryRun, SkipInvalid: f.skipInvalid, RetryFailed: f.retryFailed, ResendUnknown: f.resendUnkn,
		TTY: e.tty,
	}
	if !e.quiet {
		opts.Progress = e.stderr
	}
	ctx, cancel := e.context()
	defer cancel()
	if !f.dryRun {
		switch {
		case f.gatewayURL != "":
			key := f.gatewayKey
			if key == "" {
				key = os.Getenv(envGatewayKey)
			}
			gb, err := batch.NewGatewayBackend(f.gatewayURL, key, nil, 1)
			if err != nil {
				return usageErrorf("%v", err)
			}
			opts.Backend = gb
		default:
			if err := e.connect(ctx); err != nil {
				return err
			}
			defer e.cleanup()
			opts.TimeScale = e.scale
			opts.Backend = batch.NewAPIBackend(e.client, func(t magichour.Tool) []magichour.WaitOption { return e.waitOptions(t, nil) })
		}
	}
	sum, err := batch.Execute(ctx, opts)
	var inv *batch.InvalidError
	if errors.As(err, &inv) {
		for _, l := range inv.Lines {
			fmt.Fprintln(e.stderr, "  "+l.Error())
		}
		return &exitError{code: ExitUsage, msg: fmt.Sprintf("%d problem(s) in %s; nothing was created (fix them, or pass --skip-invalid)", len(inv.Lines), input)}
	}
	if err != nil {
		return apiError(ctx, err)
	}
	if e.emulated && !f.dryRun {
		e.note(emulatorNote)
	}
	if e.json {
		if err := writeBatchJSON(e, sum); err != nil {
			return err
		}
	}
	switch {
	case sum.Interrupted:
		return &exitError{code: ExitInterrup, msg: "interrupted; rerun the same command to continue", err: ctx.Err()}
	case f.dryRun || sum.OK():
		return nil
	}
	return &exitError{code: ExitJob, silent: true}
}

// splitOutput splits -o into the folder and a name template: the template
// starts at the first path element holding a placeholder.
func splitOutput(o string) (dir, tmpl string) {
	if !strings.Contains(o, "{") {
		return o, ""
	}
	parts := strings.Split(filepath.ToSlash(o), "/")
	for i, p := range parts {
		if strings.Contains(p, "{") {
			dir = strings.Join(parts[:i], "/")
			if dir == "" {
				dir = "."
			}
			return filepath.FromSlash(dir), strings.Join(parts[i:], "/")
		}
	}
	return o, ""
}

func writeBatchJSON(e *env, sum *batch.Summary) error {
	out := struct {
		Manifest         string         `json:"manifest"`
		Lines            int            `json:"lines"`
		Counts           map[string]int `json:"counts"`
		Credits          int64          `json:"credits"`
		EstimatedCredits int64          `json:"estimated_credits,omitempty"`
		CapLine          int            `json:"stopped_by_cap_before_line,omitempty"`
		Interrupted      bool           `json:"interrupted,omitempty"`
		Seconds          float64        `json:"seconds"`
	}{sum.Manifest, len(sum.Entries), sum.Counts, sum.Credits, sum.EstimatedCredits, sum.CapLine, sum.Interrupted, sum.Elapsed.Seconds()}
	enc := json.NewEncoder(e.stdout)
	return enc.Encode(out)
}
