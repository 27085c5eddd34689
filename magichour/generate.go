package magichour

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Phase names a step of Generate, for progress displays and errors.
type Phase string

// The phases of Generate, in order.
const (
	PhaseCheck    Phase = "check"    // local checks: params, input files
	PhaseUpload   Phase = "upload"   // uploading local input files
	PhaseCreate   Phase = "create"   // POST /v1/<tool>
	PhaseWait     Phase = "wait"     // waiting for the job to finish
	PhaseDownload Phase = "download" // saving the outputs
)

// Progress holds optional callbacks that follow Generate through its
// phases; nil fields are skipped. They are called from the goroutine that
// runs Generate, except UploadBytes and DownloadBytes, which are called
// from transfer goroutines (serialized per phase).
type Progress struct {
	// Phase is called when a phase begins.
	Phase func(Phase)
	// Uploading lists the local files about to be uploaded.
	Uploading func(paths []string)
	// UploadBytes reports upload progress over all files.
	UploadBytes func(done, total int64)
	// Uploaded maps each local path to its file_path ("api-assets/...").
	Uploaded func(map[string]string)
	// Created reports the new job.
	Created func(*CreateResponse)
	// Status reports each status change of the job.
	Status func(*Project)
	// Downloading is called with the finished project before its outputs
	// are saved.
	Downloading func(*Project)
	// DownloadBytes reports the progress of output file.
	DownloadBytes func(file int, done, total int64)
}

// Result is what Generate did. On error it holds everything that had been
// done by then (uploads, the created job, the final project, saved files).
type Result struct {
	// Project is the job's final state (nil with WithNoWait or when it
	// was never seen).
	Project *Project
	// Create is the create answer (nil if the job was not created).
	Create *CreateResponse
	// Files are the saved outputs.
	Files []DownloadedFile
	// Uploaded maps each local input path, as written in params, to its
	// uploaded file_path.
	Uploaded map[string]string
}

// GenerateError says which phase of Generate failed. It wraps the cause:
// errors.Is/As see *ValidationError, *JobError, *DownloadError,
// ErrUnsupportedFile and the other errors of the client.
type GenerateError struct {
	Phase Phase
	Tool  Tool
	// ProjectID is set once the job exists.
	ProjectID string
	Err       error
}

func (e *GenerateError) Error() string {
	msg := fmt.Sprintf("magichour: generate %s: %s", e.Tool, e.Phase)
	if e.ProjectID != "" {
		msg += " (project " + e.ProjectID + ")"
	}
	return msg + ": " + strings.TrimPrefix(e.Err.Error(), "magichour: ")
}

// Unwrap returns the cause.
func (e *GenerateError) Unwrap() error { return e.Err }

// GenerateOption configures Generate.
type GenerateOption func(*generateConfig)

type generateConfig struct {
	dir        string
	noWait     bool
	noDownload bool
	progress   Progress
	waitOpts   []WaitOption
	dlOpts     []DownloadOption
	waiter     *WebhookWaiter
}

// WithOutputDir sets the folder outputs are saved in (default ".").
func WithOutputDir(dir string) GenerateOption {
	return func(c *generateConfig) { c.dir = dir }
}

// WithNoWait makes Generate return right after the create.
func WithNoWait() GenerateOption { return func(c *generateConfig) { c.noWait = true } }

// WithNoDownload makes Generate return the finished project without
// saving its outputs.
func WithNoDownload() GenerateOption { return func(c *generateConfig) { c.noDownload = true } }

// WithProgress sets the progress callbacks.
func WithProgress(p Progress) GenerateOption { return func(c *generateConfig) { c.progress = p } }

// WithWaitOptions passes options to Wait (WithTool is implied).
func WithWaitOptions(opts ...WaitOption) GenerateOption {
	return func(c *generateConfig) { c.waitOpts = append(c.waitOpts, opts...) }
}

// WithDownloadOptions passes options to Download.
func WithDownloadOptions(opts ...DownloadOption) GenerateOption {
	return func(c *generateConfig) { c.dlOpts = append(c.dlOpts, opts...) }
}

// WithWebhookWaiter makes Generate wait through w (webhooks, no polling)
// instead of Client.Wait.
func WithWebhookWaiter(w *WebhookWaiter) GenerateOption {
	return func(c *generateConfig) { c.waiter = w }
}

// Generate runs a whole job: it uploads the local files named in params,
// creates the job, waits for it and downloads its outputs.
//
// params is what Create takes (the tool's *CreateParams struct, a map, or
// JSON). Every input-file field of the tool (as listed by the catalog, e.g.
// "assets.image_file_path", "assets.face_mappings[].new_face") whose value
// is not an http(s) URL nor an "api-assets/" file path is taken as a local
// file: all of them are checked (exists, regular, extension of the right
// media type) and the request is validated before anything is sent, then
// they are uploaded with one upload-urls call and replaced by their
// file_path. A file named twice is uploaded once.
//
// Then the job is created, awaited (Client.Wait with the tool's expected
// duration, or a WebhookWaiter) and its outputs saved with Download into
// WithOutputDir. On failure the error is a *GenerateError naming the phase,
// and the Result holds what was done before it: a failed job still returns
// its Project, a partial download its saved Files.
func (c *Client) Generate(ctx context.Context, tool Tool, params any, opts ...GenerateOption) (*Result, error) {
	cfg := generateConfig{dir: "."}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	res := &Result{}
	fail := func(ph Phase, err error) (*Result, error) {
		ge := &GenerateError{Phase: ph, Tool: tool, Err: err}
		if res.Create != nil {
			ge.ProjectID = res.Create.ID
		}
		return res, ge
	}
	phase := func(ph Phase) {
		if cfg.progress.Phase != nil {
			cfg.progress.Phase(ph)
		}
	}
	phase(PhaseCheck)
	op, err := c.tool(tool)
	if err != nil {
		return fail(PhaseCheck, err)
	}
	body, err := paramsMap(params)
	if err != nil {
		return fail(PhaseCheck, err)
	}
	locals, err := localFiles(op, body)
	if err != nil {
		return fail(PhaseCheck, err)
	}
	if !cfg.noDownload && !cfg.noWait {
		if st, err := statDir(cfg.dir); err != nil {
			return fail(PhaseCheck, err)
		} else if !st {
			return fail(PhaseCheck, fmt.Errorf("output folder %s is not a directory", cfg.dir))
		}
	}
	// Validate with placeholders before uploading anything.
	for _, lf := range locals {
		lf.set("api-assets/placeholder/0." + lf.ext)
	}
	if _, err := c.marshalBody(op, body); err != nil {
		return fail(PhaseCheck, err)
	}

	if len(locals) > 0 {
		phase(PhaseUpload)
		var paths []string
		for _, lf := range locals {
			if !slices.Contains(paths, lf.path) {
				paths = append(paths, lf.path)
			}
		}
		if cfg.progress.Uploading != nil {
			cfg.progress.Uploading(slices.Clone(paths))
		}
		var uopts []UploadOption
		if cfg.progress.UploadBytes != nil {
			uopts = append(uopts, WithUploadProgress(cfg.progress.UploadBytes))
		}
		fps, err := c.Files.UploadMany(ctx, paths, uopts...)
		if err != nil {
			return fail(PhaseUpload, err)
		}
		res.Uploaded = make(map[string]string, len(paths))
		for i, p := range paths {
			res.Uploaded[p] = fps[i]
		}
		for _, lf := range locals {
			lf.set(res.Uploaded[lf.path])
		}
		if cfg.progress.Uploaded != nil {
			cfg.progress.Uploaded(res.Uploaded)
		}
	}

	phase(PhaseCreate)
	cr, err := c.create(ctx, op, body)
	if err != nil {
		return fail(PhaseCreate, err)
	}
	res.Create = cr
	if cfg.progress.Created != nil {
		cfg.progress.Created(cr)
	}
	if cfg.noWait {
		return res, nil
	}

	phase(PhaseWait)
	wopts := append([]WaitOption{WithExpected(op.P50)}, cfg.waitOpts...)
	if cfg.progress.Status != nil {
		user := cfg.progress.Status
		wopts = append(wopts, WithStatusCallback(user))
	}
	var p *Project
	if cfg.waiter != nil {
		p, err = cfg.waiter.Wait(ctx, cr.Kind, cr.ID, wopts...)
	} else {
		p, err = c.Wait(ctx, cr.Kind, cr.ID, wopts...)
	}
	res.Project = p
	if err != nil {
		return fail(PhaseWait, err)
	}
	if cfg.noDownload {
		return res, nil
	}

	phase(PhaseDownload)
	if cfg.progress.Downloading != nil {
		cfg.progress.Downloading(p)
	}
	dopts := slices.Clone(cfg.dlOpts)
	if cfg.progress.DownloadBytes != nil {
		dopts = append(dopts, WithDownloadProgress(cfg.progress.DownloadBytes))
	}
	files, err := c.Download(ctx, p, cfg.dir, dopts...)
	res.Files = files
	if err != nil {
		return fail(PhaseDownload, err)
	}
	return res, nil
}

// statDir checks the output folder before anything is spent, creating it
// (with its parents) when missing.
func statDir(dir string) (bool, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return false, fmt.Errorf("create output folder: %w", err)
		}
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("output folder: %w", err)
	}
	return st.IsDir(), nil
}

// paramsMap turns params into a JSON object, numbers kept exact.
func paramsMap(params any) (map[string]any, error) {
	var raw []byte
	switch p := params.(type) {
	case nil:
		raw = []byte("{}")
	case json.RawMessage:
		raw = p
	case []byte:
		raw = p
	default:
		b, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("%w: encode params: %w", ErrInvalidRequest, err)
		}
		raw = b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: params must be a JSON object: %w", ErrInvalidRequest, err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// localFile is one input-file field holding a local path.
type localFile struct {
	field string // e.g. "assets.face_mappings[0].new_face"
	path  string
	ext   string
	set   func(string)
}

func isRemoteRef(v string) bool { return catalog.IsRemoteRef(v) }

// localFiles finds the input-file fields of body holding local paths and
// checks every file, reporting all problems at once.
func localFiles(op *catalog.Operation, body map[string]any) ([]*localFile, error) {
	var out []*localFile
	var problems []string
	var causes []error
	for _, ref := range op.FileRefs(body) {
		field, v := ref.Field, ref.Value
		if isRemoteRef(v) {
			continue
		}
		item, _, err := checkLocalFile(v)
		if err != nil {
			causes = append(causes, err)
			problems = append(problems, field+": "+strings.TrimPrefix(err.Error(), "magichour: "))
			continue
		}
		if len(ref.Media) > 0 && !slices.Contains(ref.Media, item.Type) {
			problems = append(problems, fmt.Sprintf("%s: %s is a %s file; this field takes %s", field, v, item.Type, strings.Join(ref.Media, " or ")))
			continue
		}
		out = append(out, &localFile{field: field, path: v, ext: item.Extension, set: func(nv string) { _ = catalog.Set(body, field, nv) }})
	}
	if len(problems) > 0 {
		return nil, &multiError{
			msg:    "input files (nothing was sent): " + strings.Join(problems, "; "),
			causes: causes,
		}
	}
	return out, nil
}

// multiError has its own message and matches each of its causes
// (ErrUnsupportedFile, fs.ErrNotExist, ...).
type multiError struct {
	msg    string
	causes []error
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.causes }
