package mcpserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// API is what the MCP server needs from an hourglass gateway. Client
// implements it over the gateway's native HTTP API, for a remote gateway
// (--gateway URL) and for the embedded one alike, so both modes run the
// same code. key is the tenant key each call is made with.
type API interface {
	Submit(ctx context.Context, key string, req SubmitRequest) (*Job, error)
	Job(ctx context.Context, key, id string) (*Job, error)
	Jobs(ctx context.Context, key string, f ListFilter) (*JobList, error)
	Delete(ctx context.Context, key, id string, upstream bool) (*Job, error)
	Output(ctx context.Context, key, id string, n int) (io.ReadCloser, error)
	Upload(ctx context.Context, key, filename string, body io.Reader) (*Upload, error)
	Account(ctx context.Context, key string, upstream bool) (*Account, error)
	Estimate(ctx context.Context, key, tool string, params json.RawMessage) (*Estimate, error)
	DetectFaces(ctx context.Context, key string, params json.RawMessage) (string, error)
	Faces(ctx context.Context, key, id string) (*FaceDetection, error)
	// Events calls fn for each timeline event of job id after lastID until
	// the job is finished (nil), ctx ends, or the stream breaks.
	Events(ctx context.Context, key, id string, lastID int64, fn func(Event)) error
}

// SubmitRequest is the body of POST /api/jobs.
type SubmitRequest struct {
	Tool           string          `json:"tool"`
	Params         json.RawMessage `json:"params"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
}

// Job is a gateway job as the native API returns it.
type Job struct {
	ID             string          `json:"id"`
	Tool           string          `json:"tool"`
	Kind           string          `json:"kind"`
	Status         string          `json:"status"`
	UpstreamID     string          `json:"upstream_id,omitempty"`
	UpstreamStatus string          `json:"upstream_status,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Params         json.RawMessage `json:"params"`
	Credits        int64           `json:"credits"`
	Error          *JobError       `json:"error,omitempty"`
	Outputs        []Output        `json:"outputs,omitempty"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
	SubmittedAt    *time.Time      `json:"submitted_at,omitempty"`
	ExpectedAt     *time.Time      `json:"expected_at,omitempty"`
	FinishedAt     *time.Time      `json:"finished_at,omitempty"`

	// Created is true when the submit that returned this job made it
	// (HTTP 202), false when it was an idempotent repeat (200).
	Created bool `json:"-"`
}

// Terminal reports whether the job's status is final.
func (j *Job) Terminal() bool {
	switch j.Status {
	case "stored", "error", "canceled", "create_outcome_unknown", "deleted":
		return true
	}
	return false
}

// JobError is a failed job's error.
type JobError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Output is one output of a job; URL, Size and SHA256 are set once stored.
type Output struct {
	Index       int    `json:"index"`
	URL         string `json:"url,omitempty"`
	Stored      bool   `json:"stored"`
	Size        int64  `json:"size,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	ContentType string `json:"content_type,omitempty"`
}

// ListFilter selects jobs for Jobs.
type ListFilter struct {
	Status, Tool, Cursor string
	Limit                int
}

// JobList is a page of jobs, newest first.
type JobList struct {
	Jobs       []Job  `json:"jobs"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// Upload is a stored input file.
type Upload struct {
	ID       string `json:"id"`
	FilePath string `json:"file_path"`
	Media    string `json:"media"`
	Size     int64  `json:"size"`
	SHA256   string `json:"sha256"`
}

// Account is the calling tenant's budget and use.
type Account struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	CreditBudget     *int64 `json:"credit_budget"`
	CreditsUsed      int64  `json:"credits_used"`
	CreditsRemaining *int64 `json:"credits_remaining"`
	MaxInFlight      *int   `json:"max_in_flight"`
	// Upstream is what the gateway says about the Magic Hour account
	// (tier, credits) when it exposes it.
	Upstream json.RawMessage `json:"upstream,omitempty"`
}

// Estimate is what a request would cost, checked against the budget.
type Estimate struct {
	Tool             string `json:"tool"`
	Credits          int64  `json:"credits"`
	CreditBudget     *int64 `json:"credit_budget"`
	CreditsUsed      int64  `json:"credits_used"`
	CreditsRemaining *int64 `json:"credits_remaining"`
	WithinBudget     bool   `json:"within_budget"`
}

// FaceDetection is a face detection task.
type FaceDetection struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Faces  []struct {
		Path string `json:"path"`
		URL  string `json:"url"`
	} `json:"faces"`
	CreditsCharged int64 `json:"credits_charged"`
}

// Event is one entry of a job's timeline.
type Event struct {
	ID   int64           `json:"id"`
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
}

// FieldError names one invalid field of a request.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// APIError is an error answer of the gateway.
type APIError struct {
	Status  int
	Code    string
	Message string
	Fields  []FieldError
}

func (e *APIError) Error() string {
	return fmt.Sprintf("gateway: %d %s: %s", e.Status, e.Code, e.Message)
}

// ErrUnauthorized is what calls with a missing or wrong key return (as an
// *APIError with Status 401, which matches it with errors.Is).
var ErrUnauthorized = errors.New("unauthorized")

// Is makes a 401 APIError match ErrUnauthorized.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && e.Status == http.StatusUnauthorized
}

// Client talks to a gateway's native API at BaseURL.
type Client struct {
	BaseURL string
	HTTP    *http.Client // nil: a client without overall timeout (event streams are long)
}

var _ API = (*Client)(nil)

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// do sends a request and returns the response of a 2xx answer; anything
// else is decoded into an *APIError.
func (c *Client) do(ctx context.Context, key, method, path string, body io.Reader, ctype string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, fmt.Errorf("gateway %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Message string `json:"message"`
		Error   struct {
			Code    string       `json:"code"`
			Message string       `json:"message"`
			Fields  []FieldError `json:"fields"`
		} `json:"error"`
	}
	ae := &APIError{Status: resp.StatusCode}
	if json.Unmarshal(b, &e) == nil {
		ae.Code, ae.Message, ae.Fields = e.Error.Code, e.Error.Message, e.Error.Fields
		if ae.Message == "" {
			ae.Message = e.Message
		}
	}
	if ae.Message == "" {
		ae.Message = strings.TrimSpace(string(b))
	}
	if ae.Message == "" {
		ae.Message = http.StatusText(resp.StatusCode)
	}
	return nil, ae
}

func (c *Client) doJSON(ctx context.Context, key, method, path string, in, out any) (int, error) {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	resp, err := c.do(ctx, key, method, path, body, ctype)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("gateway %s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// Submit implements API.
func (c *Client) Submit(ctx context.Context, key string, req SubmitRequest) (*Job, error) {
	var j Job
	code, err := c.doJSON(ctx, key, http.MethodPost, "/api/jobs", req, &j)
	if err != nil {
		return nil, err
	}
	j.Created = code == http.StatusAccepted
	return &j, nil
}

// Job implements API.
func (c *Client) Job(ctx context.Context, key, id string) (*Job, error) {
	var j Job
	if _, err := c.doJSON(ctx, key, http.MethodGet, "/api/jobs/"+url.PathEscape(id), nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Jobs implements API.
func (c *Client) Jobs(ctx context.Context, key string, f ListFilter) (*JobList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "tool": f.Tool, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var l JobList
	if _, err := c.doJSON(ctx, key, http.MethodGet, "/api/jobs?"+q.Encode(), nil, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Delete implements API.
func (c *Client) Delete(ctx context.Context, key, id string, upstream bool) (*Job, error) {
	path := "/api/jobs/" + url.PathEscape(id)
	if upstream {
		path += "?upstream=true"
	}
	var j Job
	if _, err := c.doJSON(ctx, key, http.MethodDelete, path, nil, &j); err != nil {
		return nil, err
	}
	return &j, nil
}

// Output implements API.
func (c *Client) Output(ctx context.Context, key, id string, n int) (io.ReadCloser, error) {
	resp, err := c.do(ctx, key, http.MethodGet, fmt.Sprintf("/api/jobs/%s/outputs/%d", url.PathEscape(id), n), nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Upload implements API.
func (c *Client) Upload(ctx context.Context, key, filename string, body io.Reader) (*Upload, error) {
	resp, err := c.do(ctx, key, http.MethodPost, "/api/uploads?filename="+url.QueryEscape(filename), body, "application/octet-stream")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var u Upload
	if err := json.NewDecoder(resp.Body).Decode(&u); err != nil {
		return nil, fmt.Errorf("gateway upload: decode: %w", err)
	}
	return &u, nil
}

// Account implements API. upstream also asks for the Magic Hour account.
func (c *Client) Account(ctx context.Context, key string, upstream bool) (*Account, error) {
	path := "/api/account"
	if upstream {
		path += "?upstream=true"
	}
	var a Account
	if _, err := c.doJSON(ctx, key, http.MethodGet, path, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Estimate implements API.
func (c *Client) Estimate(ctx context.Context, key, tool string, params json.RawMessage) (*Estimate, error) {
	var e Estimate
	if _, err := c.doJSON(ctx, key, http.MethodPost, "/api/estimate", SubmitRequest{Tool: tool, Params: params}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// DetectFaces implements API through the gateway's drop-in face
// detection route (the native API has none).
func (c *Client) DetectFaces(ctx context.Context, key string, params json.RawMessage) (string, error) {
	var r struct {
		ID string `json:"id"`
	}
	if _, err := c.doJSON(ctx, key, http.MethodPost, "/v1/face-detection", params, &r); err != nil {
		return "", err
	}
	return r.ID, nil
}

// Faces implements API.
func (c *Client) Faces(ctx context.Context, key, id string) (*FaceDetection, error) {
	var f FaceDetection
	if _, err := c.doJSON(ctx, key, http.MethodGet, "/v1/face-detection/"+url.PathEscape(id), nil, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Events implements API by reading the job's Server-Sent Events stream.
func (c *Client) Events(ctx context.Context, key, id string, lastID int64, fn func(Event)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(c.BaseURL, "/")+"/api/jobs/"+url.PathEscape(id)+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Accept", "text/event-stream")
	if lastID > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(lastID, 10))
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return fmt.Errorf("gateway events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &APIError{Status: resp.StatusCode, Code: "events", Message: "event stream refused: " + resp.Status}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var typ string
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if typ == "end" {
				return nil
			}
			if len(data) > 0 {
				var ev Event
				if json.Unmarshal(data, &ev) == nil {
					fn(ev)
				}
			}
			typ, data = "", nil
		case strings.HasPrefix(line, "event:"):
			typ = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimSpace(strings.TrimPrefix(line, "data:"))...)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("gateway events: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return io.ErrUnexpectedEOF
}
