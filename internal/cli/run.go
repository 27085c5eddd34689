package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	if nv, _ := cmd.Flags().GetBool("no-validate"); !nv {
		if err := t.validate(body, e.note); err != nil {
			return err
		}
	}
	var names []string
	for _, lf := range locals {
		lf.set(lf.path) // Generate uploads them
		names = append(names, filepath.Base(lf.path))
	}
	t.defaultName(body, names)
	if !t.noWait && !t.noDL {
		if err := ensureDir(t.outDir); err != nil {
			return err
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
		magichour.WithDownloadOptions(e.overwriteOption()...),
	}
	if t.noWait {
		opts = append(opts, magichour.WithNoWait())
	}
	if t.noDL {
		opts = append(opts, magichour.WithNoDownload())
	}
	res, err := e.client.Generate(ctx, tool, body, opts...)
	if res != nil && res.Create != nil && err != nil && ctx.Err() != nil {
		// Interrupted or timed out: show the project's real last status.
		if p := e.lastStatus(res.Create.Kind, res.Create.ID); p != nil {
			res.Project = p
			d.setStatus(p)
		}
	}
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

// downloadOptions are the Download options of a command: progress on d,
// and --overwrite.
func (e *env) downloadOptions(d *display) []magichour.DownloadOption {
	return append(e.overwriteOption(), magichour.WithDownloadProgress(d.downloadBytes))
}

func (e *env) overwriteOption() []magichour.DownloadOption {
	if ow, _ := e.cmd.Flags().GetBool("overwrite"); ow {
		return []magichour.DownloadOption{magichour.WithOverwrite()}
	}
	return nil
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
	e.note("%s project %s submitted (%d credits); follow it with: hourglass %s wait %s%s%s", cr.Kind, cr.ID, cr.CreditsCharged, cr.Kind, cr.ID, e.resumeFlags(), e.resumeNote())
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
	jsonOut := func() bool {
		if !e.json || r.ID == "" {
			return false
		}
		if r.Error == nil {
			r.Error = &jobError{Code: errorCode(err, code), Message: oneLine(err)}
		}
		r.ExitCode = code
		_ = e.emit(r, files)
		return true
	}
	switch {
	case code == ExitJob:
		r.ExitCode = code
		_ = e.emit(r, files)
		return &exitError{code: ExitJob, silent: true, err: err}
	case code == ExitInterrup && r.ID != "":
		what := "interrupted"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
			what = "timed out (--timeout)"
		}
		if r.Status == "" {
			r.Status = "unknown"
		}
		emitted := jsonOut()
		hint := fmt.Sprintf("Resume with: hourglass %s wait %s%s%s", r.Kind, r.ID, e.resumeFlags(), e.resumeNote())
		if e.emulated {
			hint = "The in-process emulator (--emulator) stops with this command: the project cannot be resumed."
		}
		return &exitError{code: ExitInterrup, emitted: emitted, msg: fmt.Sprintf("%s while waiting for %s project %s (last status %s); the job goes on at Magic Hour.\n%s",
			what, r.Kind, r.ID, orUnknown(r.Status), hint), err: err}
	case code == ExitInterrup:
		return &exitError{code: ExitInterrup, msg: "stopped before a project was created: " + oneLine(err), err: err}
	}
	emitted := jsonOut()
	msg := oneLine(err)
	if r.ID != "" && code == ExitAPI {
		msg += fmt.Sprintf("\nThe project exists: check it with `hourglass %s get %s%s`", r.Kind, r.ID, e.resumeFlags())
	}
	return &exitError{code: code, msg: msg, err: err, emitted: emitted}
}

// lastStatus reads the project once more after an interrupt or timeout,
// briefly, so the message says where the job really is.
func (e *env) lastStatus(k magichour.Kind, id string) *magichour.Project {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	p, err := e.client.GetProject(ctx, k, id)
	if err != nil {
		return nil
	}
	return p
}

// ensureDir creates the output folder (and its parents) when missing.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return usageErrorf("-o %s: %v", dir, oneLine(err))
	}
	return nil
}

// defaultName names the project after its local input files when the
// request has no name and the tool takes one, so the Magic Hour library
// shows what the job was made from and the emulator's failure markers in
// a file name (noface.png) work through the upload, which renames files.
func (t *toolCmd) defaultName(body map[string]any, files []string) {
	if len(files) == 0 || t.op.Request == nil || t.op.Request.Prop("name") == nil {
		return
	}
	if _, ok := body["name"]; ok {
		return
	}
	n := strings.Join(files, ", ")
	if len(n) > 100 {
		n = strings.ToValidUTF8(n[:100], "")
	}
	body["name"] = n
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
