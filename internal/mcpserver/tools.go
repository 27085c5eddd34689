package mcpserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

func ptr[T any](v T) *T { return &v }

// obj is a JSON Schema object with the given properties and required list.
func obj(props map[string]any, required ...string) map[string]any {
	m := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		m["required"] = required
	}
	return m
}

func prop(typ, desc string) map[string]any { return map[string]any{"type": typ, "description": desc} }

const jobIDDesc = "The job id returned by a create tool (job_...)."

func (s *Server) addTools() {
	maxWait := s.o.MaxWait.Seconds()
	waitProp := func(def float64, what string) map[string]any {
		return map[string]any{"type": "number", "minimum": 0, "maximum": maxWait, "default": def,
			"description": fmt.Sprintf("Seconds to wait for %s before returning (0: return at once). Progress notifications are sent meanwhile; a wait that runs out says so and can be resumed with wait_for_job.", what)}
	}
	for _, op := range s.o.Operations {
		name := toolName(op)
		s.ops[name] = op
		schema := jsonSchema(op.Request)
		props, _ := schema["properties"].(map[string]any)
		if props == nil {
			props = map[string]any{}
			schema["properties"] = props
		}
		props["idempotency_key"] = prop("string", "Optional. Calls with the same key return the same job. Default: derived from the tool and its arguments, so an identical retry never creates (or pays for) a second job; give a new key to make another job with the same arguments.")
		props["wait_seconds"] = waitProp(0, "the job to finish")
		desc := fmt.Sprintf("%s (Magic Hour %s, %s). Creates %s job and returns its job_id, status and expected duration at once, or waits up to wait_seconds. Typically takes %s on Magic Hour.",
			op.Summary, op.Name, op.Method+" "+op.Path, article(string(op.Kind)), humanDur(op.P50))
		if d := catalog.Summary(op.Description); d != "" && !strings.HasPrefix(d, "Create the same") {
			desc += " " + d
		}
		s.mcp.AddTool(&mcp.Tool{
			Name: name, Title: op.Summary, Description: desc, InputSchema: schema,
			Annotations: &mcp.ToolAnnotations{Title: op.Summary, DestructiveHint: ptr(false), IdempotentHint: false, OpenWorldHint: ptr(true)},
		}, s.createHandler(op))
	}

	s.mcp.AddTool(&mcp.Tool{Name: "get_job", Description: "Read a job: status, credits, outputs (stored, non-expiring URLs with size and sha256; small images and audio embedded). Never waits, never creates.",
		InputSchema: obj(map[string]any{"job_id": prop("string", jobIDDesc)}, "job_id"),
		Annotations: &mcp.ToolAnnotations{Title: "Get job", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.handleGetJob)
	s.mcp.AddTool(&mcp.Tool{Name: "wait_for_job", Description: "Wait for a job to finish, with progress notifications. Resumable: when wait_seconds runs out the result says timed_out and the job keeps running; call wait_for_job again to continue. Never creates anything.",
		InputSchema: obj(map[string]any{"job_id": prop("string", jobIDDesc), "wait_seconds": waitProp(50, "the job")}, "job_id"),
		Annotations: &mcp.ToolAnnotations{Title: "Wait for job", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.handleWaitJob)
	s.mcp.AddTool(&mcp.Tool{Name: "list_jobs", Description: "List jobs, newest first, optionally by status or tool.",
		InputSchema: obj(map[string]any{
			"status": map[string]any{"type": "string", "enum": []any{"pending", "creating", "submitted", "queued", "rendering", "storing", "stored", "error", "canceled", "create_outcome_unknown", "deleted"}, "description": "Only jobs with this status."},
			"tool":   prop("string", "Only jobs of this tool (ai_image_generator or ai-image-generator)."),
			"limit":  map[string]any{"type": "integer", "minimum": 1, "maximum": 200, "default": 20, "description": "At most this many jobs."},
			"cursor": prop("string", "next_cursor of a previous page."),
		}),
		Annotations: &mcp.ToolAnnotations{Title: "List jobs", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.handleListJobs)
	s.mcp.AddTool(&mcp.Tool{Name: "cancel_job", Description: "Stop a job that is not finished: the gateway stops tracking it (its status becomes deleted) and releases its reserved credits if it was not sent yet (Magic Hour itself has no cancel; a job already rendering there may still be charged). A finished job is refused: use delete_job.",
		InputSchema: obj(map[string]any{"job_id": prop("string", jobIDDesc)}, "job_id"),
		Annotations: &mcp.ToolAnnotations{Title: "Cancel job", DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.handleCancelJob)
	s.mcp.AddTool(&mcp.Tool{Name: "delete_job", Description: "Delete a job's stored outputs (and, unless upstream is false, the project on Magic Hour). Permanent. An unfinished job is canceled first.",
		InputSchema: obj(map[string]any{"job_id": prop("string", jobIDDesc),
			"upstream": map[string]any{"type": "boolean", "default": true, "description": "Also delete the project on Magic Hour."}}, "job_id"),
		Annotations: &mcp.ToolAnnotations{Title: "Delete job", DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(true)},
	}, s.handleDeleteJob)
	s.mcp.AddTool(&mcp.Tool{Name: "upload_file", Description: "Store an input file (image, video or audio) and return the file_path to put in a tool's file field. Give path (a file on the machine running this server) or content_base64 with filename (for clients that cannot share files).",
		InputSchema: obj(map[string]any{
			"path":           prop("string", "Absolute path of a local file on the server's machine."),
			"content_base64": prop("string", "The file's bytes, base64-encoded (standard alphabet)."),
			"filename":       prop("string", "The file's name with its extension (photo.png); required with content_base64."),
		}),
		Annotations: &mcp.ToolAnnotations{Title: "Upload file", DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.handleUpload)

	if op := catalog.Lookup("face-detection"); op != nil {
		schema := jsonSchema(op.Request)
		props := schema["properties"].(map[string]any)
		props["wait_seconds"] = waitProp(30, "the detection")
		props["detection_id"] = prop("string", "Continue waiting for an earlier detection instead of starting one (its id from a previous result).")
		delete(schema, "required") // assets is not needed with detection_id; checked in the handler
		s.mcp.AddTool(&mcp.Tool{Name: "detect_faces", Description: "Detect the faces in an image or video (free). Returns each face's path, to use in face swap mappings (assets.face_mappings[].original_face).",
			InputSchema: schema,
			Annotations: &mcp.ToolAnnotations{Title: "Detect faces", DestructiveHint: ptr(false), IdempotentHint: false, OpenWorldHint: ptr(true)},
		}, s.handleDetectFaces)
	}
	s.mcp.AddTool(&mcp.Tool{Name: "account", Description: "The tenant's credit budget, credits used and remaining (and the Magic Hour account when the gateway exposes it).",
		InputSchema: obj(map[string]any{}),
		Annotations: &mcp.ToolAnnotations{Title: "Account", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.handleAccount)
	var names []any
	for _, op := range s.o.Operations {
		names = append(names, toolName(op))
	}
	s.mcp.AddTool(&mcp.Tool{Name: "estimate", Description: "Validate a request and estimate the credits it would cost, against the remaining budget, without creating anything.",
		InputSchema: obj(map[string]any{
			"tool":   map[string]any{"type": "string", "enum": names, "description": "The create tool, as named here."},
			"params": map[string]any{"type": "object", "description": "The arguments you would pass to that tool."},
		}, "tool"),
		Annotations: &mcp.ToolAnnotations{Title: "Estimate credits", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, s.handleEstimate)
}

// --- arguments ---

// args decodes a tool call's arguments into an object, numbers kept as
// written.
func args(req *mcp.CallToolRequest) (map[string]any, error) {
	m := map[string]any{}
	raw := bytes.TrimSpace(req.Params.Arguments)
	if len(raw) == 0 || string(raw) == "null" {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("arguments must be a JSON object: %w", err)
	}
	return m, nil
}

func str(m map[string]any, name string) (string, *toolErr) {
	v, ok := m[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fieldErr(name, "must be a string", "pass "+name+" as a JSON string")
	}
	return s, nil
}

func num(m map[string]any, name string, def float64) (float64, *toolErr) {
	v, ok := m[name]
	if !ok || v == nil {
		return def, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, fieldErr(name, "must be a number", "pass "+name+" as a JSON number of seconds")
	}
	f, err := n.Float64()
	if err != nil || f < 0 {
		return 0, fieldErr(name, "must be a non-negative number", "pass a number of seconds ≥ 0")
	}
	return f, nil
}

func (s *Server) waitDur(secs float64) time.Duration {
	return min(time.Duration(secs*float64(time.Second)), s.o.MaxWait)
}

// derivedKey is the idempotency key of a create without one: the hash of
// the tool and its canonical arguments (object keys sorted by
// encoding/json), so the same call maps to the same job.
func derivedKey(tool string, params json.RawMessage) string {
	h := sha256.New()
	h.Write([]byte(tool))
	h.Write([]byte{0})
	h.Write(params)
	return "mcp_" + hex.EncodeToString(h.Sum(nil))[:40]
}

// --- errors ---

// toolErr is an error reported to the agent as a tool result with isError.
type toolErr struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Fields  []fieldView `json:"fields,omitempty"`
	Fix     string      `json:"fix,omitempty"`
	// Budget details of a budget refusal.
	CreditsNeeded    *int64 `json:"credits_needed,omitempty"`
	CreditsRemaining *int64 `json:"credits_remaining,omitempty"`
	CreditBudget     *int64 `json:"credit_budget,omitempty"`
}

type fieldView struct {
	Field   string `json:"field"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func fieldErr(field, msg, fix string) *toolErr {
	return &toolErr{Code: "invalid_arguments", Message: field + ": " + msg, Fields: []fieldView{{Field: field, Message: msg, Fix: fix}}, Fix: fix}
}

func (e *toolErr) result() *mcp.CallToolResult {
	var b strings.Builder
	b.WriteString("Error (" + e.Code + "): " + e.Message)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n- %s: %s", f.Field, f.Message)
		if f.Fix != "" {
			b.WriteString(". Fix: " + f.Fix)
		}
	}
	if e.Fix != "" && len(e.Fields) != 1 {
		b.WriteString("\nFix: " + e.Fix)
	}
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: b.String()}},
		StructuredContent: map[string]any{"error": e}}
}

// fromError turns a gateway error into a tool error; op (may be nil) gives
// the schema behind field names for fixes.
func (s *Server) fromError(ctx context.Context, key string, op *catalog.Operation, err error) *toolErr {
	var ae *APIError
	if !errors.As(err, &ae) {
		if ctx.Err() != nil {
			return &toolErr{Code: "canceled", Message: "the call was canceled: " + err.Error()}
		}
		return &toolErr{Code: "gateway_unreachable", Message: err.Error(), Fix: "check that the gateway is running and reachable, then retry (retries are safe)"}
	}
	e := &toolErr{Code: ae.Code, Message: ae.Message}
	for _, f := range ae.Fields {
		field := strings.TrimPrefix(f.Field, "params.")
		e.Fields = append(e.Fields, fieldView{Field: field, Message: f.Message, Fix: fieldFix(op, field, f.Message)})
	}
	switch {
	case ae.Code == "budget_exceeded":
		if a, aerr := s.o.API.Account(ctx, key, false); aerr == nil {
			e.CreditBudget, e.CreditsRemaining = a.CreditBudget, a.CreditsRemaining
			if a.CreditsRemaining != nil {
				e.Message += fmt.Sprintf(" Remaining credits: %d.", *a.CreditsRemaining)
			}
		}
		e.Fix = "nothing was created. Ask the gateway's operator to raise the tenant's credit_budget, or make a cheaper request (fewer images, shorter video; check it with estimate first)"
	case ae.Status == http.StatusUnauthorized:
		e.Fix = "the tenant key is missing or wrong: set it in the server's configuration"
	case ae.Status == http.StatusNotFound:
		e.Fix = "check the id (list_jobs shows your jobs)"
	case ae.Code == "idempotency_conflict":
		e.Fix = "that idempotency_key was used for different arguments: use a new key, or the original arguments"
	case ae.Status == http.StatusTooManyRequests || ae.Status >= 500:
		e.Fix = "a temporary failure: retry the same call (it never creates twice)"
	case len(e.Fields) > 0:
		e.Fix = "correct the fields listed and call again"
	}
	if e.Code == "" {
		e.Code = fmt.Sprintf("http_%d", ae.Status)
	}
	return e
}

// --- results ---

type outputView struct {
	Index       int    `json:"index"`
	URL         string `json:"url,omitempty"`
	ResourceURI string `json:"resource_uri,omitempty"`
	Size        int64  `json:"size,omitempty"`
	SHA256      string `json:"sha256,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Stored      bool   `json:"stored"`
}

type jobView struct {
	JobID           string       `json:"job_id"`
	Tool            string       `json:"tool"`
	Status          string       `json:"status"`
	Done            bool         `json:"done"`
	TimedOut        bool         `json:"timed_out,omitempty"`
	Reused          bool         `json:"reused,omitempty"`
	IdempotencyKey  string       `json:"idempotency_key,omitempty"`
	Credits         int64        `json:"credits"`
	ExpectedSeconds float64      `json:"expected_seconds,omitempty"`
	ExpectedAt      *time.Time   `json:"expected_at,omitempty"`
	ElapsedSeconds  float64      `json:"elapsed_seconds"`
	CreatedAt       time.Time    `json:"created_at"`
	FinishedAt      *time.Time   `json:"finished_at,omitempty"`
	Outputs         []outputView `json:"outputs,omitempty"`
	Error           *JobError    `json:"error,omitempty"`
	Next            string       `json:"next,omitempty"`
}

func expectedOf(j *Job) time.Duration {
	if op := catalog.Lookup(j.Tool); op != nil {
		return op.P50
	}
	return 0
}

func view(j *Job, timedOut bool) jobView {
	v := jobView{JobID: j.ID, Tool: strings.ReplaceAll(j.Tool, "-", "_"), Status: j.Status, Done: j.Terminal(), TimedOut: timedOut,
		IdempotencyKey: j.IdempotencyKey, Credits: j.Credits, ExpectedAt: j.ExpectedAt, CreatedAt: j.CreatedAt, FinishedAt: j.FinishedAt, Error: j.Error,
		ExpectedSeconds: expectedOf(j).Seconds()}
	end := time.Now()
	if j.FinishedAt != nil {
		end = *j.FinishedAt
	}
	v.ElapsedSeconds = end.Sub(j.CreatedAt).Round(100 * time.Millisecond).Seconds()
	for _, o := range j.Outputs {
		ov := outputView{Index: o.Index, URL: o.URL, Size: o.Size, SHA256: o.SHA256, ContentType: o.ContentType, Stored: o.Stored}
		if o.Stored {
			ov.ResourceURI = fmt.Sprintf("hourglass://jobs/%s/outputs/%d", j.ID, o.Index)
		}
		v.Outputs = append(v.Outputs, ov)
	}
	switch {
	case j.Status == "deleted":
		v.Next = "the job was deleted (canceled if it was unfinished); its outputs are gone"
	case j.Status == "stored":
		v.Next = "done: outputs are stored (URLs do not expire; read them with the resource_uri or the url with the tenant key)"
	case j.Terminal():
		v.Next = "the job ended without outputs; fix the cause in error and create again (with a new idempotency_key if the arguments are the same)"
	case timedOut:
		v.Next = "still running (nothing is lost): call wait_for_job with job_id " + j.ID + " to keep waiting"
	default:
		v.Next = "call wait_for_job with job_id " + j.ID + " to wait for it"
	}
	return v
}

// jobResult renders a job; stored images and audio up to the embed cap are
// attached as content.
func (s *Server) jobResult(ctx context.Context, key string, j *Job, timedOut, reused bool) *mcp.CallToolResult {
	v := view(j, timedOut)
	v.Reused = reused
	b, _ := json.MarshalIndent(v, "", "  ")
	summary := fmt.Sprintf("Job %s (%s): %s.", v.JobID, v.Tool, v.Status)
	if reused {
		summary = "An identical earlier request's job was returned (no second job was created). " + summary
	}
	switch {
	case timedOut:
		summary += " The wait ran out before the job finished; it keeps running: call wait_for_job again."
	}
	content := []mcp.Content{&mcp.TextContent{Text: summary + "\n" + string(b)}}
	budget := s.o.EmbedMaxBytes
	for _, o := range j.Outputs {
		if !o.Stored || budget <= 0 || o.Size <= 0 || o.Size > budget {
			continue
		}
		isImage, isAudio := strings.HasPrefix(o.ContentType, "image/"), strings.HasPrefix(o.ContentType, "audio/")
		if !isImage && !isAudio {
			continue
		}
		data, err := s.readOutput(ctx, key, j.ID, o.Index, budget)
		if err != nil {
			s.o.Logger.Warn("mcp: embed output", "job", j.ID, "n", o.Index, "err", err)
			continue
		}
		budget -= int64(len(data))
		if isImage {
			content = append(content, &mcp.ImageContent{Data: data, MIMEType: o.ContentType})
		} else {
			content = append(content, &mcp.AudioContent{Data: data, MIMEType: o.ContentType})
		}
	}
	// A job that failed is a tool error, so the agent notices and corrects
	// its input; the job's details stay in the structured result.
	failed := j.Status == "error" || j.Status == "create_outcome_unknown"
	if failed {
		msg := "The job failed"
		if j.Error != nil {
			msg += " (" + j.Error.Code + "): " + j.Error.Message
		}
		if fix := jobFix(j); fix != "" {
			msg += ". Fix: " + fix
		}
		content = append([]mcp.Content{&mcp.TextContent{Text: msg}}, content...)
	}
	return &mcp.CallToolResult{Content: content, StructuredContent: v, IsError: failed}
}

// jobFix says what to do about a failed job, by its error code.
func jobFix(j *Job) string {
	code := ""
	if j.Error != nil {
		code = j.Error.Code
	}
	switch {
	case j.Status == "create_outcome_unknown":
		return "the gateway cannot tell whether Magic Hour created the job (check its dashboard before creating again with a new idempotency_key)"
	case code == "no_source_face":
		return "the input shows no detectable face: use another image or video (detect_faces checks one)"
	case code == "invalid_video_file" || code == "file_too_large":
		return "use another input file (a supported format, smaller)"
	case code == "insufficient_credits":
		return "the Magic Hour account is out of credits (see account)"
	case code == "invalid_parameters":
		return "change the arguments and create again"
	}
	return "create again with a new idempotency_key (the same arguments return this failed job)"
}

func (s *Server) readOutput(ctx context.Context, key, id string, n int, limit int64) ([]byte, error) {
	rc, err := s.o.API.Output(ctx, key, id, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("output larger than %d bytes", limit)
	}
	return data, nil
}

func jsonResult(v any, summary string) *mcp.CallToolResult {
	b, _ := json.MarshalIndent(v, "", "  ")
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: summary + "\n" + string(b)}}, StructuredContent: v}
}

// --- handlers ---

func (s *Server) createHandler(op *catalog.Operation) mcp.ToolHandler {
	name := toolName(op)
	return func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		m, err := args(req)
		if err != nil {
			return fieldErr("arguments", err.Error(), "send the tool's arguments as one JSON object").result(), nil
		}
		key := s.key(req.Extra)
		idem, terr := str(m, "idempotency_key")
		if terr != nil {
			return terr.result(), nil
		}
		wait, terr := num(m, "wait_seconds", 0)
		if terr != nil {
			return terr.result(), nil
		}
		delete(m, "idempotency_key")
		delete(m, "wait_seconds")
		params, err := json.Marshal(m)
		if err != nil {
			return fieldErr("arguments", err.Error(), "").result(), nil
		}
		if idem == "" {
			idem = derivedKey(op.Name, params)
		}
		j, err := s.o.API.Submit(ctx, key, SubmitRequest{Tool: op.Name, Params: params, IdempotencyKey: idem,
			Metadata: json.RawMessage(`{"source":"mcp"}`)})
		if err != nil {
			return s.fromError(ctx, key, op, err).result(), nil
		}
		s.o.Logger.Info("mcp: create", "tool", name, "job", j.ID, "created", j.Created)
		timedOut := false
		if wait > 0 && !j.Terminal() {
			j, timedOut, err = s.wait(ctx, req, key, j, s.waitDur(wait))
			if err != nil {
				return s.fromError(ctx, key, op, err).result(), nil
			}
		}
		res := s.jobResult(ctx, key, j, timedOut, !j.Created)
		return res, nil
	}
}

func (s *Server) jobID(m map[string]any) (string, *toolErr) {
	id, terr := str(m, "job_id")
	if terr != nil {
		return "", terr
	}
	if id == "" {
		return "", fieldErr("job_id", "is required", "pass the job_id a create tool returned (list_jobs shows them)")
	}
	return id, nil
}

// jobArgs decodes the arguments of a tool that names a job and its job_id.
func (s *Server) jobArgs(req *mcp.CallToolRequest) (map[string]any, string, *toolErr) {
	m, err := args(req)
	if err != nil {
		return nil, "", fieldErr("arguments", err.Error(), "")
	}
	id, terr := s.jobID(m)
	return m, id, terr
}

func (s *Server) handleGetJob(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	_, id, terr := s.jobArgs(req)
	if terr != nil {
		return terr.result(), nil
	}
	key := s.key(req.Extra)
	j, err := s.o.API.Job(ctx, key, id)
	if err != nil {
		return s.fromError(ctx, key, nil, err).result(), nil
	}
	return s.jobResult(ctx, key, j, false, false), nil
}

func (s *Server) handleWaitJob(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	m, id, terr := s.jobArgs(req)
	if terr != nil {
		return terr.result(), nil
	}
	wait, terr := num(m, "wait_seconds", 50)
	if terr != nil {
		return terr.result(), nil
	}
	key := s.key(req.Extra)
	j, err := s.o.API.Job(ctx, key, id)
	if err != nil {
		return s.fromError(ctx, key, nil, err).result(), nil
	}
	timedOut := false
	if !j.Terminal() {
		j, timedOut, err = s.wait(ctx, req, key, j, s.waitDur(wait))
		if err != nil {
			return s.fromError(ctx, key, nil, err).result(), nil
		}
	}
	return s.jobResult(ctx, key, j, timedOut, false), nil
}

// wait follows job j's timeline until it finishes or d passes, sending
// progress notifications when the client asked for them. It returns the
// job as last read and whether the wait ran out.
func (s *Server) wait(ctx context.Context, req *mcp.CallToolRequest, key string, j *Job, d time.Duration) (*Job, bool, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	token := req.Params.GetProgressToken()
	expected := expectedOf(j)
	if j.ExpectedAt != nil && j.SubmittedAt != nil {
		expected = j.ExpectedAt.Sub(j.CreatedAt)
	}
	var last float64
	notify := func(msg string) {
		if token == nil || req.Session == nil {
			return
		}
		p := last + 1
		if expected > 0 {
			p = max(p, min(99, 100*time.Since(j.CreatedAt).Seconds()/expected.Seconds()))
		}
		last = p
		_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: p, Total: 100, Message: msg})
	}
	notify(fmt.Sprintf("job %s: %s", j.ID, j.Status))

	evs := make(chan Event, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.o.API.Events(wctx, key, j.ID, 0, func(ev Event) {
			select {
			case evs <- ev:
			case <-wctx.Done():
			}
		})
	}()
	tick := time.NewTicker(s.o.Heartbeat)
	defer tick.Stop()
	streamErr := error(nil)
loop:
	for {
		select {
		case ev := <-evs:
			notify(fmt.Sprintf("job %s: %s", j.ID, ev.Type))
		case streamErr = <-done:
			break loop
		case <-tick.C:
			notify(fmt.Sprintf("job %s: waiting (%s elapsed)", j.ID, time.Since(j.CreatedAt).Round(time.Second)))
		}
	}
	if streamErr != nil && wctx.Err() == nil {
		// The stream broke early: fall back to reading the job until the
		// deadline, once per heartbeat.
		s.o.Logger.Warn("mcp: event stream", "job", j.ID, "err", streamErr)
		for wctx.Err() == nil {
			cur, err := s.o.API.Job(wctx, key, j.ID)
			if err == nil && cur.Terminal() {
				return cur, false, nil
			}
			select {
			case <-wctx.Done():
			case <-tick.C:
			}
		}
	}
	if ctx.Err() != nil {
		return j, false, ctx.Err()
	}
	cur, err := s.o.API.Job(ctx, key, j.ID)
	if err != nil {
		return j, false, err
	}
	if cur.Terminal() {
		notify(fmt.Sprintf("job %s: %s", j.ID, cur.Status))
	}
	return cur, !cur.Terminal(), nil
}

func (s *Server) handleListJobs(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	m, err := args(req)
	if err != nil {
		return fieldErr("arguments", err.Error(), "").result(), nil
	}
	var f ListFilter
	for name, dst := range map[string]*string{"status": &f.Status, "tool": &f.Tool, "cursor": &f.Cursor} {
		v, terr := str(m, name)
		if terr != nil {
			return terr.result(), nil
		}
		*dst = v
	}
	f.Tool = strings.ReplaceAll(f.Tool, "_", "-")
	limit, terr := num(m, "limit", 20)
	if terr != nil {
		return terr.result(), nil
	}
	f.Limit = int(limit)
	key := s.key(req.Extra)
	l, err := s.o.API.Jobs(ctx, key, f)
	if err != nil {
		return s.fromError(ctx, key, nil, err).result(), nil
	}
	out := struct {
		Jobs       []jobView `json:"jobs"`
		NextCursor string    `json:"next_cursor,omitempty"`
	}{Jobs: []jobView{}, NextCursor: l.NextCursor}
	for i := range l.Jobs {
		out.Jobs = append(out.Jobs, view(&l.Jobs[i], false))
	}
	return jsonResult(out, fmt.Sprintf("%d jobs.", len(out.Jobs))), nil
}

func (s *Server) handleCancelJob(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	_, id, terr := s.jobArgs(req)
	if terr != nil {
		return terr.result(), nil
	}
	key := s.key(req.Extra)
	j, err := s.o.API.Job(ctx, key, id)
	if err != nil {
		return s.fromError(ctx, key, nil, err).result(), nil
	}
	if j.Terminal() {
		return (&toolErr{Code: "already_finished", Message: "job " + id + " already finished (" + j.Status + ")",
			Fix: "nothing to cancel; use delete_job to delete its outputs"}).result(), nil
	}
	j, err = s.delete(ctx, key, id, false)
	if err != nil {
		return s.fromError(ctx, key, nil, err).result(), nil
	}
	return s.jobResult(ctx, key, j, false, false), nil
}

// delete deletes (or cancels) a job, retrying for a while when the
// gateway answers that the job's upstream create is in flight, as it asks.
func (s *Server) delete(ctx context.Context, key, id string, upstream bool) (*Job, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		j, err := s.o.API.Delete(ctx, key, id, upstream)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != "create_in_flight" {
			return j, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-tick.C:
		}
	}
}

func (s *Server) handleDeleteJob(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	m, id, terr := s.jobArgs(req)
	if terr != nil {
		return terr.result(), nil
	}
	upstream := true
	if v, ok := m["upstream"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return fieldErr("upstream", "must be a boolean", "pass true or false").result(), nil
		}
		upstream = b
	}
	key := s.key(req.Extra)
	j, err := s.delete(ctx, key, id, upstream)
	if err != nil {
		return s.fromError(ctx, key, nil, err).result(), nil
	}
	return jsonResult(view(j, false), "Deleted the stored outputs of job "+id+"."), nil
}

func (s *Server) handleUpload(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	m, err := args(req)
	if err != nil {
		return fieldErr("arguments", err.Error(), "").result(), nil
	}
	path, terr := str(m, "path")
	if terr != nil {
		return terr.result(), nil
	}
	content, terr := str(m, "content_base64")
	if terr != nil {
		return terr.result(), nil
	}
	name, terr := str(m, "filename")
	if terr != nil {
		return terr.result(), nil
	}
	var body io.Reader
	switch {
	case path != "" && content != "":
		return fieldErr("path", "give path or content_base64, not both", "remove one of them").result(), nil
	case path != "":
		if !s.o.AllowLocalFiles {
			return fieldErr("path", "this server does not read local files (started over HTTP without --allow-local-files)", "send the bytes as content_base64 with filename").result(), nil
		}
		if !filepath.IsAbs(path) {
			return fieldErr("path", "must be an absolute path", "pass the file's absolute path on the server's machine").result(), nil
		}
		f, err := os.Open(path)
		if err != nil {
			return fieldErr("path", "cannot be read: "+err.Error(), "check the path; the file must be on the machine running the MCP server").result(), nil
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.IsDir() {
			return fieldErr("path", "is a directory", "pass a file").result(), nil
		}
		body = f
		if name == "" {
			name = filepath.Base(path)
		}
	case content != "":
		if name == "" {
			return fieldErr("filename", "is required with content_base64", "pass the file's name with its extension, e.g. photo.png").result(), nil
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(content))
		if err != nil {
			return fieldErr("content_base64", "is not valid base64: "+err.Error(), "encode the file's bytes with standard base64").result(), nil
		}
		body = bytes.NewReader(data)
	default:
		return fieldErr("path", "give path or content_base64", "pass a local file's path, or its bytes as content_base64 with filename").result(), nil
	}
	key := s.key(req.Extra)
	u, err := s.o.API.Upload(ctx, key, name, body)
	if err != nil {
		return s.fromError(ctx, key, nil, err).result(), nil
	}
	return jsonResult(u, fmt.Sprintf("Uploaded %s (%s, %d bytes). Put file_path %q in the tool's %s file field.", name, u.Media, u.Size, u.FilePath, u.Media)), nil
}

func (s *Server) handleDetectFaces(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	m, err := args(req)
	if err != nil {
		return fieldErr("arguments", err.Error(), "").result(), nil
	}
	key := s.key(req.Extra)
	wait, terr := num(m, "wait_seconds", 30)
	if terr != nil {
		return terr.result(), nil
	}
	id, terr := str(m, "detection_id")
	if terr != nil {
		return terr.result(), nil
	}
	delete(m, "wait_seconds")
	delete(m, "detection_id")
	op := catalog.Lookup("face-detection")
	if id == "" {
		if _, ok := m["assets"]; !ok {
			return fieldErr("assets.target_file_path", "is required", fieldFix(op, "assets.target_file_path", "is required")).result(), nil
		}
		params, _ := json.Marshal(m)
		if err := op.ValidateJSON(params); err != nil {
			var ve *catalog.ValidationError
			if errors.As(err, &ve) {
				e := &toolErr{Code: "invalid_params", Message: "invalid arguments for detect_faces", Fix: "correct the fields listed and call again"}
				for _, f := range ve.Fields {
					e.Fields = append(e.Fields, fieldView{Field: f.Field, Message: f.Message, Fix: fieldFix(op, f.Field, f.Message)})
				}
				return e.result(), nil
			}
			return fieldErr("arguments", err.Error(), "").result(), nil
		}
		id, err = s.o.API.DetectFaces(ctx, key, params)
		if err != nil {
			return s.fromError(ctx, key, op, err).result(), nil
		}
	}
	wctx, cancel := context.WithTimeout(ctx, s.waitDur(wait))
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		fd, err := s.o.API.Faces(ctx, key, id)
		if err != nil {
			return s.fromError(ctx, key, op, err).result(), nil
		}
		done := fd.Status == "complete" || fd.Status == "error"
		if done || wctx.Err() != nil {
			out := map[string]any{"detection_id": fd.ID, "status": fd.Status, "done": done, "faces": fd.Faces, "credits": fd.CreditsCharged}
			summary := fmt.Sprintf("Face detection %s: %s, %d faces.", fd.ID, fd.Status, len(fd.Faces))
			if !done {
				out["timed_out"] = true
				summary += " Not finished yet: call detect_faces with detection_id " + fd.ID + " to keep waiting."
			}
			return jsonResult(out, summary), nil
		}
		select {
		case <-wctx.Done():
		case <-tick.C:
		}
	}
}

func (s *Server) handleAccount(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	key := s.key(req.Extra)
	a, err := s.o.API.Account(ctx, key, true)
	if err != nil {
		return s.fromError(ctx, key, nil, err).result(), nil
	}
	summary := "No credit budget: this tenant may spend without a gateway limit."
	if a.CreditBudget != nil && a.CreditsRemaining != nil {
		summary = fmt.Sprintf("%d of %d credits used; %d remaining.", a.CreditsUsed, *a.CreditBudget, *a.CreditsRemaining)
	}
	var up struct {
		Tier    string `json:"tier"`
		Credits *int64 `json:"credits"`
	}
	if json.Unmarshal(a.Upstream, &up) == nil && up.Tier != "" && up.Credits != nil {
		summary += fmt.Sprintf(" Magic Hour account: %s tier, %d credits.", up.Tier, *up.Credits)
	}
	return jsonResult(a, summary), nil
}

func (s *Server) handleEstimate(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	m, err := args(req)
	if err != nil {
		return fieldErr("arguments", err.Error(), "").result(), nil
	}
	tool, terr := str(m, "tool")
	if terr != nil {
		return terr.result(), nil
	}
	op := s.ops[tool]
	if op == nil {
		op = s.ops[strings.ReplaceAll(tool, "-", "_")]
	}
	if op == nil {
		return fieldErr("tool", fmt.Sprintf("unknown tool %q", tool), "use the name of one of this server's create tools, e.g. ai_image_generator").result(), nil
	}
	params := json.RawMessage(`{}`)
	if p, ok := m["params"]; ok && p != nil {
		pm, ok := p.(map[string]any)
		if !ok {
			return fieldErr("params", "must be an object", "pass the tool's arguments as a JSON object").result(), nil
		}
		delete(pm, "idempotency_key")
		delete(pm, "wait_seconds")
		params, _ = json.Marshal(pm)
	}
	key := s.key(req.Extra)
	e, err := s.o.API.Estimate(ctx, key, op.Name, params)
	if err != nil {
		return s.fromError(ctx, key, op, err).result(), nil
	}
	summary := fmt.Sprintf("%s would cost about %d credits.", toolName(op), e.Credits)
	if e.CreditsRemaining != nil {
		summary += fmt.Sprintf(" %d credits remain in the budget", *e.CreditsRemaining)
		if !e.WithinBudget {
			summary += ": NOT enough, the create would be refused"
		}
		summary += "."
	}
	return jsonResult(e, summary), nil
}

func humanDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "a short while"
	case d < time.Minute:
		return fmt.Sprintf("about %ds", int(d.Seconds()))
	default:
		return fmt.Sprintf("about %dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

// article prefixes a kind with "a" or "an".
func article(kind string) string {
	if strings.IndexByte("aeiou", kind[0]) >= 0 {
		return "an " + kind
	}
	return "a " + kind
}
