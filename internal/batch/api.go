package batch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hourglasshq/hourglass/magichour"
)

// APIBackend runs a batch against Magic Hour (or an emulator) with the SDK.
type APIBackend struct {
	client *magichour.Client
	wait   func(tool magichour.Tool) []magichour.WaitOption
}

// NewAPIBackend runs jobs with c; waitOpts gives the wait options of a
// tool's jobs (nil: the SDK's defaults for the tool).
func NewAPIBackend(c *magichour.Client, waitOpts func(tool magichour.Tool) []magichour.WaitOption) *APIBackend {
	if waitOpts == nil {
		waitOpts = func(t magichour.Tool) []magichour.WaitOption { return []magichour.WaitOption{magichour.WithTool(t)} }
	}
	return &APIBackend{client: c, wait: waitOpts}
}

// Via implements Backend.
func (b *APIBackend) Via() string { return "api" }

// Prepare implements Backend: every line is created on its own.
func (b *APIBackend) Prepare(_ context.Context, _ *Run, todo []*Entry) ([]*Entry, error) {
	return todo, nil
}

// Upload implements Uploader: the file goes to Magic Hour's storage.
func (b *APIBackend) Upload(ctx context.Context, path string) (string, error) {
	return b.client.Files.Upload(ctx, path)
}

// Create implements Backend.
func (b *APIBackend) Create(ctx context.Context, e *Entry) (Created, error) {
	tool, err := magichour.ParseTool(e.Tool)
	if err != nil {
		return Created{}, err
	}
	res, err := b.client.Create(ctx, tool, []byte(e.Params))
	if err != nil {
		return Created{}, err
	}
	return Created{JobID: res.ID, Kind: string(res.Kind), Credits: int64(res.CreditsCharged)}, nil
}

// Wait implements Backend.
func (b *APIBackend) Wait(ctx context.Context, e *Entry) (*Finished, error) {
	tool, err := magichour.ParseTool(e.Tool)
	if err != nil {
		return nil, err
	}
	kind := magichour.Kind(e.Kind)
	if kind == "" {
		kind = tool.Kind()
	}
	p, err := b.client.Wait(ctx, kind, e.JobID, b.wait(tool)...)
	if p == nil || ctx.Err() != nil {
		if err == nil {
			err = errors.New("no project")
		}
		return nil, err
	}
	f := &Finished{Credits: int64(p.CreditsCharged), Ref: p}
	switch p.Status {
	case magichour.StatusComplete:
		f.Status = StatusComplete
	case magichour.StatusCanceled:
		f.Status, f.Credits = StatusCanceled, 0
		f.Error = &ErrorInfo{Code: "canceled", Message: "the job was canceled"}
	case magichour.StatusError:
		f.Status, f.Credits = StatusError, 0
		f.Error = &ErrorInfo{Code: "job_error", Message: "the job failed"}
		if p.Error != nil {
			f.Error = &ErrorInfo{Code: p.Error.Code, Message: p.Error.Message}
		}
	default:
		if err == nil {
			err = fmt.Errorf("project %s is %s", p.ID, p.Status)
		}
		return nil, err
	}
	return f, nil
}

// Fetch implements Backend: the SDK downloads into a private folder, then
// each file is renamed to its templated name.
func (b *APIBackend) Fetch(ctx context.Context, r *Run, e *Entry, f *Finished) ([]OutputRef, error) {
	p, _ := f.Ref.(*magichour.Project)
	if p == nil {
		return nil, errors.New("no project to download")
	}
	tmp, err := r.tempDir(e)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	files, err := b.client.Download(ctx, p, tmp)
	if err != nil {
		return nil, err
	}
	var outs []OutputRef
	for _, df := range files {
		ext := strings.TrimPrefix(filepath.Ext(df.Path), ".")
		o, err := r.saveFile(e, df.Index, ext, df.Path)
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	return outs, nil
}

// tempDir is a private folder under the output folder for one line's
// downloads in progress (same file system: the final rename is atomic).
func (r *Run) tempDir(e *Entry) (string, error) {
	base := filepath.Join(r.opts.OutDir, ".hourglass-batch")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(base, fmt.Sprintf("line%d-", e.Line))
}

// saveFile hashes a downloaded file and renames it to output n's name.
func (r *Run) saveFile(e *Entry, n int, ext, path string) (OutputRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return OutputRef{}, err
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return OutputRef{}, err
	}
	if ext == "" {
		ext = "bin"
	}
	final := filepath.Join(r.opts.OutDir, r.names.render(e.Line, e.Key, e.Name, e.JobID, n, ext))
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return OutputRef{}, err
	}
	// The name is this line's: a file left there by an earlier, interrupted
	// run of the same line is replaced.
	if err := os.Rename(path, final); err != nil {
		return OutputRef{}, err
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return OutputRef{}, err
	}
	return OutputRef{Index: n, Path: final, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// createError describes a failed create; unknown is true when the job may
// exist (nothing may then be resent).
func createError(err error) (info *ErrorInfo, unknown bool) {
	if errors.Is(err, magichour.ErrCreateOutcomeUnknown) {
		return &ErrorInfo{Code: "create_outcome_unknown", Message: "the create may have reached Magic Hour but its answer was lost: a job may exist (and be charged) that cannot be looked up; not resent (see --resend-unknown): " + err.Error()}, true
	}
	return errorInfo(err), false
}

func errorInfo(err error) *ErrorInfo {
	info := &ErrorInfo{Code: "error", Message: err.Error()}
	var ve *magichour.ValidationError
	var ae *magichour.APIError
	var ge *gatewayError
	switch {
	case errors.As(err, &ve):
		info.Code = "invalid_request"
		if len(ve.Fields) > 0 {
			info.Field = "params." + ve.Fields[0].Field
		}
	case errors.As(err, &ge):
		info.Code = ge.Code
		if len(ge.Fields) > 0 {
			info.Field = ge.Fields[0].Field
		}
	case errors.As(err, &ae):
		info.Code = fmt.Sprintf("http_%d", ae.StatusCode)
		switch {
		case errors.Is(err, magichour.ErrPaymentRequired):
			info.Code = "insufficient_credits"
		case errors.Is(err, magichour.ErrInvalidRequest):
			info.Code = "invalid_request"
		}
	}
	return info
}
