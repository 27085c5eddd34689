package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Options configure a batch run.
type Options struct {
	// Input is the batch file (JSONL, CSV, or a manifest of an earlier run).
	Input string
	// Manifest is where the manifest goes; default DefaultManifestPath.
	Manifest string
	// OutDir receives the outputs (default "."), named by NameTemplate
	// (default DefaultNameTemplate).
	OutDir       string
	NameTemplate string
	// Concurrency bounds the lines in flight (default 4); ToolConcurrency
	// bounds them per tool ("text-to-video": 2).
	Concurrency     int
	ToolConcurrency map[string]int
	// MaxCredits caps the whole batch's credits (0: no cap): what earlier
	// runs were charged plus the estimates of what this run creates. The
	// batch stops before the line that would exceed it.
	MaxCredits int64
	// DryRun validates every line and prints the estimates; nothing is
	// created and no file is written.
	DryRun bool
	// SkipInvalid runs the valid lines when some are invalid (they are
	// recorded as invalid in the manifest); without it, any invalid line
	// stops the batch before anything is created.
	SkipInvalid bool
	// RetryFailed creates the failed and canceled lines again (a new
	// attempt with a new idempotency key).
	RetryFailed bool
	// ResendUnknown creates again the lines whose earlier create may have
	// been charged without an answer (StatusOutcomeUnknown): a second job
	// may be charged.
	ResendUnknown bool

	// Backend runs the jobs: NewAPIBackend or NewGatewayBackend.
	Backend Backend
	// Estimate returns a line's expected credits (for the cap and the
	// dry run); default EstimateCredits.
	Estimate func(tool string, params json.RawMessage) int64
	// TimeScale divides the catalog's medians for the ETA (an emulator's
	// speed); default 1.
	TimeScale float64

	// Progress receives the progress display and the summary (nil: none);
	// TTY redraws one status line in place.
	Progress io.Writer
	TTY      bool
	// CheckpointEvery is how often the manifest is rewritten while the
	// batch runs (default 2s); the journal covers what happens between.
	CheckpointEvery time.Duration
	Logger          *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Summary is the outcome of a run.
type Summary struct {
	Manifest string
	Entries  []Entry
	// Counts by status.
	Counts map[string]int
	// Credits is the sum of what the batch's jobs count against the cap.
	Credits int64
	// EstimatedCredits is the dry run's (or the plan's) total estimate of
	// the lines still to create.
	EstimatedCredits int64
	// CapLine is the first line the credit cap kept from being created (0:
	// none).
	CapLine int
	// Interrupted is set when the context ended before every line finished.
	Interrupted bool
	Elapsed     time.Duration
}

// OK reports whether every line completed.
func (s *Summary) OK() bool {
	return s.Counts[StatusComplete] == len(s.Entries) && len(s.Entries) > 0 || len(s.Entries) == 0
}

// Backend creates, waits for and downloads jobs. A backend's methods are
// called concurrently.
type Backend interface {
	// Via names the backend in the manifest: "api" or "gateway".
	Via() string
	// Prepare is called once before any line runs, with the lines this run
	// may create (in order, within the credit cap), and returns those left
	// for Create: the API backend returns them all; the gateway backend
	// submits them as one batch, records their job ids and returns none.
	Prepare(ctx context.Context, r *Run, todo []*Entry) ([]*Entry, error)
	// Create starts the job of a pending line and returns its id, kind and
	// credits. An error matching magichour.ErrCreateOutcomeUnknown means
	// the job may exist.
	Create(ctx context.Context, e *Entry) (Created, error)
	// Wait waits until the line's job is finished.
	Wait(ctx context.Context, e *Entry) (*Finished, error)
	// Fetch saves the outputs of a finished job as files (through
	// Run.SaveOutput).
	Fetch(ctx context.Context, r *Run, e *Entry, f *Finished) ([]OutputRef, error)
}

// Uploader is a Backend that uploads local input files: a line's local
// files are uploaded just before its create (not journaled: an upload
// creates no job and costs nothing, so a resumed line uploads again).
type Uploader interface {
	Upload(ctx context.Context, path string) (string, error)
}

// Created is a backend's answer to a create.
type Created struct {
	JobID, Kind string
	Credits     int64
}

// Finished is a finished job.
type Finished struct {
	Status  string // StatusComplete, StatusError, StatusCanceled
	Credits int64
	Error   *ErrorInfo
	// Ref is backend data for Fetch.
	Ref any
}

// Run is one batch run in progress.
type Run struct {
	opts  Options
	st    *state
	names *namer
	log   *slog.Logger

	mu      sync.Mutex
	wake    *sync.Cond
	queue   []*Entry
	running map[*Entry]time.Time
	byTool  map[string]int
	stopCap bool
	capLine int
	started time.Time
}

// Execute runs the batch described by opts until every line is finished,
// ctx ends, or the credit cap stops it. Invalid lines are returned as an
// *InvalidError before anything is created, unless SkipInvalid.
func Execute(ctx context.Context, opts Options) (*Summary, error) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	if opts.OutDir == "" {
		opts.OutDir = "."
	}
	if opts.NameTemplate == "" {
		opts.NameTemplate = DefaultNameTemplate
	}
	if opts.TimeScale <= 0 {
		opts.TimeScale = 1
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Estimate == nil {
		opts.Estimate = EstimateCredits
	}
	for tool, n := range opts.ToolConcurrency {
		op := catalog.Lookup(tool)
		if op == nil || op.Role != catalog.RoleCreate {
			return nil, &InvalidError{Lines: []LineError{{Field: "--tool-concurrency", Message: fmt.Sprintf("unknown tool %q", tool)}}}
		}
		if n <= 0 {
			return nil, &InvalidError{Lines: []LineError{{Field: "--tool-concurrency", Message: fmt.Sprintf("%s=%d: must be at least 1", tool, n)}}}
		}
		if op.Name != tool {
			delete(opts.ToolConcurrency, tool)
			opts.ToolConcurrency[op.Name] = n
		}
	}
	in, err := ReadFile(opts.Input)
	if err != nil {
		return nil, err
	}
	names, err := newNamer(opts.NameTemplate)
	if err != nil {
		return nil, &InvalidError{Lines: []LineError{{Field: "--name", Message: err.Error()}}}
	}
	if errs := names.checkUnique(in.Records); len(errs) > 0 {
		for _, e := range errs {
			in.Records[e.idx].Errors = append(in.Records[e.idx].Errors, e.err)
		}
	}
	bad := in.Errors()
	if len(bad) > 0 && (!opts.SkipInvalid || opts.DryRun && !opts.SkipInvalid) {
		return nil, &InvalidError{Lines: bad}
	}
	if opts.Manifest == "" {
		opts.Manifest = DefaultManifestPath(opts.Input, in.Manifest)
	}
	if opts.DryRun {
		return dryRun(in, opts)
	}
	if opts.Backend == nil {
		return nil, errors.New("batch: no backend")
	}
	if _, ok := opts.Backend.(Uploader); !ok {
		var bad []LineError
		for _, rec := range in.Records {
			if !rec.Valid() {
				continue
			}
			if locals, _ := localFiles(catalog.Lookup(rec.Line.Tool), rec.Line.Params, filepath.Dir(opts.Input)); len(locals) > 0 {
				bad = append(bad, LineError{Line: rec.Line.N, Field: "params." + locals[0].field,
					Message: "a local file: run without --gateway (the CLI uploads it), or upload it first (POST /api/uploads) and use its file_path"})
			}
		}
		if len(bad) > 0 {
			return nil, &InvalidError{Lines: bad}
		}
	}
	if err := os.MkdirAll(opts.OutDir, 0o755); err != nil {
		return nil, err
	}
	st, err := openState(opts.Manifest, in.Records, in.Manifest)
	if err != nil {
		return nil, err
	}
	r := &Run{opts: opts, st: st, names: names, log: opts.Logger, running: map[*Entry]time.Time{}, byTool: map[string]int{}, started: opts.Now()}
	r.wake = sync.NewCond(&r.mu)
	sum, runErr := r.run(ctx)
	if cerr := st.close(); cerr != nil && runErr == nil {
		runErr = fmt.Errorf("write the manifest: %w", cerr)
	}
	if sum != nil {
		sum.Entries = st.snapshot()
		sum.fill()
		sum.Elapsed = opts.Now().Sub(r.started)
		if opts.Progress != nil {
			writeSummary(opts.Progress, sum)
		}
	}
	return sum, runErr
}

func (r *Run) run(ctx context.Context) (*Summary, error) {
	sum := &Summary{Manifest: r.opts.Manifest}
	via := r.opts.Backend.Via()
	// Plan: what needs work, resumed jobs first; retries and re-sends.
	var resumed, pending []*Entry
	for _, e := range r.st.entries {
		if e.Via != "" && e.Via != via && e.JobID != "" && !terminal(e.Status) {
			return nil, fmt.Errorf("line %d was created through the %s, this run uses the %s: rerun it the same way", e.Line, e.Via, via)
		}
		switch {
		case e.Status == StatusComplete && !r.outputsPresent(e):
			_ = r.st.update(e, true, func(e *Entry) { e.Status, e.Outputs = StatusSubmitted, nil })
		case Failed(e.Status) && r.opts.RetryFailed, e.Status == StatusOutcomeUnknown && r.opts.ResendUnknown:
			_ = r.st.update(e, true, func(e *Entry) {
				e.Attempt++
				e.Status, e.JobID, e.Kind, e.Error, e.Outputs, e.Credits, e.BatchID = StatusPending, "", "", nil, nil, 0, ""
			})
		}
		switch e.Status {
		case StatusSubmitted:
			resumed = append(resumed, e)
		case StatusPending:
			pending = append(pending, e)
		}
	}
	// The cap before starting: which pending lines fit, in order.
	committed := r.committed()
	var todo []*Entry
	for _, e := range pending {
		est := r.opts.Estimate(e.Tool, e.Params)
		e.EstimatedCredits = est
		if r.opts.MaxCredits > 0 && committed+est > r.opts.MaxCredits {
			r.capLine = e.Line
			break
		}
		committed += est
		sum.EstimatedCredits += est
		todo = append(todo, e)
	}
	if r.capLine != 0 && r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "credit cap %d: the batch will stop before line %d (estimated total %d, already committed %d)\n",
			r.opts.MaxCredits, r.capLine, r.estimateAll(pending)+r.committed(), r.committed())
	}
	toCreate, err := r.opts.Backend.Prepare(ctx, r, todo)
	if err != nil {
		if ctx.Err() != nil {
			sum.Interrupted = true
			return sum, nil
		}
		return sum, err
	}
	r.queue = resumed
	for _, e := range todo { // submitted by Prepare
		if e.Status == StatusSubmitted {
			r.queue = append(r.queue, e)
		}
	}
	r.queue = append(r.queue, toCreate...)
	r.runWorkers(ctx)
	r.mu.Lock()
	sum.CapLine = r.capLine
	r.mu.Unlock()
	sum.Interrupted = ctx.Err() != nil
	return sum, nil
}

func (r *Run) estimateAll(es []*Entry) int64 {
	var n int64
	for _, e := range es {
		n += e.EstimatedCredits
	}
	return n
}

// committed is what the batch's jobs count against the cap right now.
func (r *Run) committed() int64 {
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	var n int64
	for _, e := range r.st.entries {
		n += e.charged()
	}
	return n
}

func (r *Run) runWorkers(ctx context.Context) {
	stopWake := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		r.wake.Broadcast()
		r.mu.Unlock()
	})
	defer stopWake()
	done := make(chan struct{})
	go func() { // progress display and periodic checkpoints
		defer close(done)
		r.display(ctx)
	}()
	var wg sync.WaitGroup
	for range r.opts.Concurrency {
		wg.Go(func() {
			for {
				e := r.claim(ctx)
				if e == nil {
					return
				}
				r.process(ctx, e)
				r.release(e)
			}
		})
	}
	wg.Wait()
	r.mu.Lock()
	r.queue = nil
	r.wake.Broadcast()
	r.mu.Unlock()
	<-done
}

// claim takes the next line to work on: the first in the queue whose tool
// has room (resumed jobs come first). A pending line is charged against
// the cap when claimed; the first that does not fit stops all creates.
// claim returns nil when nothing is left that this run may start.
func (r *Run) claim(ctx context.Context) *Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if ctx.Err() != nil || !r.hasRunnable() {
			return nil
		}
		for i := 0; i < len(r.queue); i++ {
			e := r.queue[i]
			if e.Status == StatusPending && r.stopCap {
				continue
			}
			if lim := r.opts.ToolConcurrency[e.Tool]; lim > 0 && r.byTool[e.Tool] >= lim {
				continue // a running job of this tool wakes us when it ends
			}
			if e.Status == StatusPending {
				est := r.opts.Estimate(e.Tool, e.Params)
				if r.opts.MaxCredits > 0 && r.committed()+est > r.opts.MaxCredits {
					r.stopCap = true
					if r.capLine == 0 || e.Line < r.capLine {
						r.capLine = e.Line
					}
					continue
				}
				_ = r.st.update(e, false, func(e *Entry) { e.Status, e.EstimatedCredits = StatusCreating, est })
			}
			r.queue = append(r.queue[:i], r.queue[i+1:]...)
			r.running[e] = r.opts.Now()
			r.byTool[e.Tool]++
			return e
		}
		if !r.hasRunnable() || len(r.running) == 0 {
			return nil // nothing left, or nothing running that could free a slot
		}
		r.wake.Wait()
	}
}

// hasRunnable reports whether a queued line could still be claimed.
func (r *Run) hasRunnable() bool {
	for _, e := range r.queue {
		if e.Status != StatusPending || !r.stopCap {
			return true
		}
	}
	return false
}

func (r *Run) release(e *Entry) {
	r.mu.Lock()
	delete(r.running, e)
	r.byTool[e.Tool]--
	r.wake.Broadcast()
	r.mu.Unlock()
}

// createGrace is how long a create already started may take after Ctrl-C:
// its answer must be recorded, or the job would be charged and lost.
const createGrace = 2 * time.Minute

func (r *Run) process(ctx context.Context, e *Entry) {
	b := r.opts.Backend
	if e.Status == StatusCreating {
		if ctx.Err() != nil { // Ctrl-C: submit nothing more
			_ = r.st.update(e, false, func(e *Entry) { e.Status = StatusPending })
			return
		}
		send, err := r.uploadLocal(ctx, e)
		if err != nil {
			if ctx.Err() != nil {
				_ = r.st.update(e, false, func(e *Entry) { e.Status = StatusPending })
				return
			}
			_ = r.st.update(e, true, func(e *Entry) {
				e.Status, e.Error = StatusError, &ErrorInfo{Code: "upload_failed", Message: err.Error()}
			})
			return
		}
		if err := r.st.update(e, true, func(e *Entry) { e.Via = b.Via() }); err != nil {
			r.log.Error("batch: journal", "err", err)
			_ = r.st.update(e, false, func(e *Entry) { e.Status = StatusPending })
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createGrace)
		c, err := b.Create(cctx, send)
		cancel()
		if err != nil {
			info, unknown := createError(err)
			_ = r.st.update(e, true, func(e *Entry) {
				e.Status, e.Error = StatusError, info
				if unknown {
					e.Status = StatusOutcomeUnknown
				}
			})
			return
		}
		if err := r.st.update(e, true, func(e *Entry) {
			e.Status, e.JobID, e.Kind, e.Credits, e.Error = StatusSubmitted, c.JobID, c.Kind, c.Credits, nil
		}); err != nil {
			r.log.Error("batch: journal", "err", err)
			return
		}
	}
	if e.Status != StatusSubmitted || ctx.Err() != nil {
		return
	}
	f, err := b.Wait(ctx, e)
	if err != nil {
		if ctx.Err() != nil {
			return // abandoned: the next run waits again
		}
		_ = r.st.update(e, true, func(e *Entry) { e.Status, e.Error = StatusError, errorInfo(err) })
		return
	}
	if f.Status != StatusComplete {
		_ = r.st.update(e, true, func(e *Entry) { e.Status, e.Credits, e.Error = f.Status, f.Credits, f.Error })
		return
	}
	outs, err := b.Fetch(ctx, r, e, f)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		// The job exists and completed: a rerun downloads again, it never
		// creates again. Recorded as the line's error meanwhile.
		_ = r.st.update(e, true, func(e *Entry) {
			e.Credits = f.Credits
			e.Error = &ErrorInfo{Code: "download_failed", Message: err.Error() + " (rerun to download again)"}
		})
		return
	}
	_ = r.st.update(e, true, func(e *Entry) { e.Status, e.Credits, e.Outputs, e.Error = StatusComplete, f.Credits, outs, nil })
}

// uploadLocal uploads the line's local input files and returns the entry
// to send: e itself, or a copy whose params name the uploads.
func (r *Run) uploadLocal(ctx context.Context, e *Entry) (*Entry, error) {
	op := catalog.Lookup(e.Tool)
	if op == nil {
		return e, nil
	}
	locals, errs := localFiles(op, e.Params, filepath.Dir(r.opts.Input))
	if len(errs) > 0 {
		return nil, errors.New(errs[0].Field + ": " + errs[0].Message)
	}
	if len(locals) == 0 {
		return e, nil
	}
	up, ok := r.opts.Backend.(Uploader)
	if !ok {
		return nil, errors.New("this backend cannot upload local files")
	}
	paths := map[string]string{}
	for _, lf := range locals {
		p, err := up.Upload(ctx, lf.path)
		if err != nil {
			return nil, fmt.Errorf("upload %s: %w", lf.path, err)
		}
		paths[lf.field] = p
	}
	send := *e
	send.Params = withUploads(e.Params, locals, func(lf localFile) string { return paths[lf.field] })
	return &send, nil
}

// outputsPresent reports whether every recorded output of e is on disk
// with its size.
func (r *Run) outputsPresent(e *Entry) bool {
	if len(e.Outputs) == 0 {
		return false
	}
	for _, o := range e.Outputs {
		st, err := os.Stat(o.Path)
		if err != nil || st.Size() != o.Size {
			return false
		}
	}
	return true
}

func (s *Summary) fill() {
	s.Counts = map[string]int{}
	s.Credits = 0
	for i := range s.Entries {
		e := &s.Entries[i]
		st := e.Status
		if st == StatusSubmitted && e.Error != nil {
			st = "download_failed"
		}
		s.Counts[st]++
		s.Credits += e.charged()
	}
}

// statusOrder lists statuses for the summary.
var statusOrder = []string{StatusComplete, StatusSubmitted, "download_failed", StatusPending, StatusError, StatusCanceled, StatusOutcomeUnknown, StatusInvalid, StatusCreating}

// EstimateCredits is the catalog's credit estimate of a line (0 for an
// unknown tool).
func EstimateCredits(tool string, params json.RawMessage) int64 {
	op := catalog.Lookup(tool)
	if op == nil {
		return 0
	}
	var body map[string]any
	if err := json.Unmarshal(params, &body); err != nil {
		return 0
	}
	return op.EstimateCredits(body).Credits
}
