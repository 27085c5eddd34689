package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/magichour"
)

// run is a tool command: check everything locally, then upload → create →
// wait → download with the SDK's shared runner (magichour.Generate).
func (t *toolCmd) run(cmd *cobra.Command, _ []string) error {
	e := newEnv(cmd)
	in := &inputs{r: e.stdin}
	body, err := t.buildBody(cmd, in)
	if err != nil {
		return err
	}
	locals, err := t.resolveFiles(body, in)
	if err != nil {
		return err
	}
	if err := t.validate(body); err != nil {
		return err
	}
	for _, lf := range locals {
		lf.set(lf.path) // Generate uploads them
	}
	if !t.noWait && !t.noDL {
		if st, err := os.Stat(t.outDir); err != nil || !st.IsDir() {
			return usageErrorf("-o %s: not an existing directory", t.outDir)
		}
	}

	ctx, cancel := e.context()
	defer cancel()
	if err := e.connect(ctx); err != nil {
		return err
	}
	defer e.cleanup()

	tool := magichour.Tool(t.op.Name)
	kind := magichour.Kind(t.op.Kind)
	d := newDisplay(e, kind, scaled(t.op.P50, e.scale))
	opts := []magichour.GenerateOption{
		magichour.WithOutputDir(t.outDir),
		magichour.WithProgress(d.progress()),
		magichour.WithWaitOptions(e.waitOptions(tool, nil)...),
	}
	if t.noWait {
		opts = append(opts, magichour.WithNoWait())
	}
	if t.noDL {
		opts = append(opts, magichour.WithNoDownload())
	}
	res, err := e.client.Generate(ctx, tool, body, opts...)
	d.close()
	if res == nil {
		res = &magichour.Result{}
	}
	if e.emulated {
		e.note(emulatorNote)
	}
	if err == nil && t.noWait {
		return e.submitted(ctx, tool, res.Create)
	}
	r := newResult(tool, kind, res.Create, res.Project, res.Files)
	return e.finish(ctx, r, res.Files, err)
}

// scaled divides a real-API duration by the emulator's speed.
func scaled(d time.Duration, scale float64) time.Duration {
	if scale <= 1 {
		return d
	}
	return time.Duration(float64(d) / scale)
}

// submitted reports a --no-wait create: the id on stdout (or the JSON
// result with the project's current status).
func (e *env) submitted(ctx context.Context, tool magichour.Tool, cr *magichour.CreateResponse) error {
	p, err := e.client.GetProject(ctx, cr.Kind, cr.ID)
	if err != nil {
		p = nil // the id is what matters; the status is a bonus
	}
	r := newResult(tool, cr.Kind, cr, p, nil)
	if r.Status == "" {
		r.Status = string(magichour.StatusQueued)
	}
	r.Emulator = e.emulated
	if e.json {
		return r.writeJSON(e.stdout)
	}
	fmt.Fprintln(e.stdout, cr.ID)
	if e.emulated {
		e.note("note: the in-process emulator stops with this command, so project %s cannot be followed; use `hourglass emulate` and --base-url for that", cr.ID)
		return nil
	}
	e.note("%s project %s submitted (%d credits); follow it with: hourglass %s wait %s", cr.Kind, cr.ID, cr.CreditsCharged, cr.Kind, cr.ID)
	return nil
}

// finish prints the result of a job (as far as it got) and turns err into
// the exit code: 1 failed/canceled job, 3 API error, 4 timeout/interrupt.
func (e *env) finish(ctx context.Context, r *result, files []magichour.DownloadedFile, err error) error {
	if err == nil {
		return e.emit(r, files)
	}
	code := classify(err, ctx)
	if code == ExitUsage && !isUsageSDKError(err) {
		code = ExitAPI
	}
	if _, ok := errors.AsType[*magichour.DownloadError](err); ok && ctx.Err() == nil {
		code = ExitAPI
	}
	switch {
	case code == ExitJob:
		_ = e.emit(r, files)
		return &exitError{code: ExitJob, silent: true, err: err}
	case code == ExitInterrup && r.ID != "":
		what := "interrupted"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			what = "timed out (--timeout)"
		}
		if e.json {
			if r.Status == "" {
				r.Status = "unknown"
			}
			_ = e.emit(r, files)
		}
		return &exitError{code: ExitInterrup, msg: fmt.Sprintf("%s while waiting for %s project %s (last status %s); the job goes on at Magic Hour.\nResume with: hourglass %s wait %s",
			what, r.Kind, r.ID, orUnknown(r.Status), r.Kind, r.ID), err: err}
	case code == ExitInterrup:
		return &exitError{code: ExitInterrup, msg: "stopped before a project was created: " + oneLine(err), err: err}
	}
	if e.json && r.ID != "" {
		_ = e.emit(r, files)
	}
	msg := oneLine(err)
	if r.ID != "" && code == ExitAPI {
		msg += fmt.Sprintf("\nThe project exists: check it with `hourglass %s get %s`", r.Kind, r.ID)
	}
	return &exitError{code: code, msg: msg, err: err}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
