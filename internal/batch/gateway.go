package batch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// GatewayBackend runs a batch on an hourglass gateway: the lines go in one
// POST /api/batches (in chunks, idempotent), the gateway creates and
// tracks the jobs, and the runner waits for each job and downloads its
// stored outputs. Concurrency then bounds the waits and downloads; how
// many jobs run upstream at once is the gateway's (the tenant's
// max_in_flight).
type GatewayBackend struct {
	base, key string
	http      *http.Client
	scale     float64
	// ChunkLines is how many lines go in one POST (default 100).
	ChunkLines int
}

// NewGatewayBackend talks to the gateway at base with a tenant key; scale
// divides the catalog's medians for the poll interval (an emulator's
// speed, 1 for Magic Hour).
func NewGatewayBackend(base, key string, hc *http.Client, scale float64) (*GatewayBackend, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway URL %q: want http(s)://host[:port]", base)
	}
	if strings.TrimSpace(key) == "" {
		return nil, errors.New("no gateway key: pass the tenant key")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	if scale <= 0 {
		scale = 1
	}
	return &GatewayBackend{base: strings.TrimRight(base, "/"), key: key, http: hc, scale: scale, ChunkLines: 100}, nil
}

// Via implements Backend.
func (g *GatewayBackend) Via() string { return "gateway" }

// gatewayError is an error answer of the gateway.
type gatewayError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Fields  []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"fields"`
	Lines []LineError `json:"lines"`
}

func (e *gatewayError) Error() string {
	return fmt.Sprintf("gateway: %d %s: %s", e.Status, e.Code, e.Message)
}

func (g *GatewayBackend) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var env struct {
			Error *gatewayError `json:"error"`
		}
		if json.Unmarshal(raw, &env) == nil && env.Error != nil {
			env.Error.Status = resp.StatusCode
			return env.Error
		}
		return &gatewayError{Status: resp.StatusCode, Code: "http_" + fmt.Sprint(resp.StatusCode), Message: strings.TrimSpace(string(raw[:min(len(raw), 200)]))}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// BatchLine is one line of POST /api/batches.
type BatchLine struct {
	Line   int             `json:"line,omitempty"`
	Tool   string          `json:"tool"`
	Params json.RawMessage `json:"params"`
	Key    string          `json:"key,omitempty"`
	Name   string          `json:"name,omitempty"`
}

// BatchRequest is the body of POST /api/batches.
type BatchRequest struct {
	IdempotencyKey string      `json:"idempotency_key,omitempty"`
	Name           string      `json:"name,omitempty"`
	SkipInvalid    bool        `json:"skip_invalid,omitempty"`
	Lines          []BatchLine `json:"lines"`
}

// BatchJob is one line's job in a gateway batch answer.
type BatchJob struct {
	Line    int        `json:"line"`
	Key     string     `json:"key"`
	JobID   string     `json:"job_id,omitempty"`
	Status  string     `json:"status"`
	Credits int64      `json:"credits"`
	Error   *ErrorInfo `json:"error,omitempty"`
}

// BatchAnswer is the gateway's view of a batch.
type BatchAnswer struct {
	ID     string     `json:"id"`
	Name   string     `json:"name"`
	Jobs   []BatchJob `json:"jobs"`
	Counts map[string]int
}

// batchKey identifies the batch of an input on the gateway: a hash of
// every line's key, so that rerunning the file finds the same batch.
func batchKey(r *Run) string {
	var keys []string
	for _, e := range r.st.entries {
		if e.Key != "" {
			keys = append(keys, e.Key)
		}
	}
	sort.Strings(keys)
	h := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return "batch-" + hex.EncodeToString(h[:12])
}

// Prepare implements Backend: submit every line of todo in one batch.
func (g *GatewayBackend) Prepare(ctx context.Context, r *Run, todo []*Entry) ([]*Entry, error) {
	if len(todo) == 0 {
		return nil, nil
	}
	key := batchKey(r)
	name := filepath.Base(r.opts.Input)
	byKey := map[string]*Entry{}
	for start := 0; start < len(todo); start += g.ChunkLines {
		chunk := todo[start:min(start+g.ChunkLines, len(todo))]
		req := BatchRequest{IdempotencyKey: key, Name: name}
		for _, e := range chunk {
			byKey[e.sentKey()] = e
			req.Lines = append(req.Lines, BatchLine{Line: e.Line, Tool: e.Tool, Params: e.Params, Key: e.sentKey(), Name: e.Name})
		}
		var ans BatchAnswer
		if err := g.do(ctx, http.MethodPost, "/api/batches", req, &ans); err != nil {
			return nil, fmt.Errorf("submit lines %d..%d: %w", chunk[0].Line, chunk[len(chunk)-1].Line, err)
		}
		for _, j := range ans.Jobs {
			e := byKey[j.Key]
			if e == nil {
				continue
			}
			err := r.st.update(e, true, func(e *Entry) {
				e.Via, e.BatchID = g.Via(), ans.ID
				if j.JobID == "" {
					e.Status, e.Error = StatusError, j.Error
					if e.Error == nil {
						e.Error = &ErrorInfo{Code: "refused", Message: "the gateway did not accept the line"}
					}
					return
				}
				e.Status, e.JobID, e.Error = StatusSubmitted, j.JobID, nil
				e.Kind = string(catalog.Lookup(e.Tool).Kind)
				if e.Credits == 0 {
					e.Credits = j.Credits
				}
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return nil, nil
}

// Create implements Backend; lines are created by Prepare.
func (g *GatewayBackend) Create(context.Context, *Entry) (Created, error) {
	return Created{}, errors.New("batch: the gateway creates a batch's jobs itself")
}

type gatewayJob struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Credits int64  `json:"credits"`
	Error   *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Outputs []struct {
		Index       int    `json:"index"`
		URL         string `json:"url"`
		Stored      bool   `json:"stored"`
		Size        int64  `json:"size"`
		SHA256      string `json:"sha256"`
		ContentType string `json:"content_type"`
	} `json:"outputs"`
}

// Wait implements Backend: poll the job at a pace set by the tool's median.
func (g *GatewayBackend) Wait(ctx context.Context, e *Entry) (*Finished, error) {
	interval := time.Duration(float64(catalog.Lookup(e.Tool).P50) / g.scale / 20)
	interval = min(max(interval, 100*time.Millisecond), 5*time.Second)
	t := time.NewTimer(0)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		var j gatewayJob
		err := g.do(ctx, http.MethodGet, "/api/jobs/"+url.PathEscape(e.JobID), nil, &j)
		if err != nil {
			var ge *gatewayError
			if errors.As(err, &ge) && ge.Status < 500 && ge.Status != http.StatusTooManyRequests || ctx.Err() != nil {
				return nil, err
			}
			if failures++; failures > 10 {
				return nil, err
			}
			t.Reset(interval * time.Duration(failures))
			continue
		}
		failures = 0
		f := &Finished{Credits: j.Credits, Ref: &j}
		if j.Error != nil {
			f.Error = &ErrorInfo{Code: j.Error.Code, Message: j.Error.Message}
		}
		switch j.Status {
		case "stored":
			f.Status = StatusComplete
			return f, nil
		case "error":
			f.Status, f.Credits = StatusError, 0
			return f, nil
		case "canceled":
			f.Status, f.Credits = StatusCanceled, 0
			return f, nil
		case "create_outcome_unknown":
			f.Status = StatusOutcomeUnknown
			return f, nil
		}
		t.Reset(interval)
	}
}

// Fetch implements Backend: download each stored output, checking its
// size and sha256 against the gateway's record.
func (g *GatewayBackend) Fetch(ctx context.Context, r *Run, e *Entry, f *Finished) ([]OutputRef, error) {
	j, _ := f.Ref.(*gatewayJob)
	if j == nil {
		return nil, errors.New("no job to download")
	}
	tmp, err := r.tempDir(e)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	var outs []OutputRef
	for _, o := range j.Outputs {
		if !o.Stored {
			return nil, fmt.Errorf("output %d of job %s is not stored", o.Index, j.ID)
		}
		path := filepath.Join(tmp, fmt.Sprintf("%d.part", o.Index))
		if err := g.download(ctx, fmt.Sprintf("/api/jobs/%s/outputs/%d", url.PathEscape(j.ID), o.Index), path, o.Size, o.SHA256); err != nil {
			return nil, fmt.Errorf("output %d of job %s: %w", o.Index, j.ID, err)
		}
		ref, err := r.saveFile(e, o.Index, extOf(o.ContentType), path)
		if err != nil {
			return nil, err
		}
		outs = append(outs, ref)
	}
	return outs, nil
}

func (g *GatewayBackend) download(ctx context.Context, path, dst string, size int64, sum string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.key)
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != size || (sum != "" && got != sum) {
		return fmt.Errorf("got %d bytes sha256 %s, the gateway recorded %d bytes %s", n, got, size, sum)
	}
	return nil
}

var mimeExt = map[string]string{
	"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp",
	"video/mp4": "mp4", "audio/mpeg": "mp3", "audio/wav": "wav", "audio/x-wav": "wav",
}

func extOf(contentType string) string {
	mt, _, _ := mime.ParseMediaType(contentType)
	if e, ok := mimeExt[mt]; ok {
		return e
	}
	if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 {
		return strings.TrimPrefix(exts[0], ".")
	}
	return "bin"
}
