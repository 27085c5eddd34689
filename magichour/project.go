package magichour

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// Kind is the family of a project: each create tool makes a project of one
// kind, read back with GET /v1/<kind>-projects/{id}.
type Kind string

// The kinds of project.
const (
	KindVideo Kind = "video"
	KindImage Kind = "image"
	KindAudio Kind = "audio"
)

// Valid reports whether k is one of KindVideo, KindImage and KindAudio.
func (k Kind) Valid() bool { return k == KindVideo || k == KindImage || k == KindAudio }

// projectsPath returns "/v1/<kind>-projects/<escaped id>".
func (k Kind) projectsPath(id string) string {
	return "/v1/" + string(k) + "-projects/" + escapeID(id)
}

// Status is the lifecycle state of a project; it is the type webhook
// events carry, so a project read by GET and one delivered by a webhook
// compare directly. Terminal reports complete, error and canceled.
type Status = webhook.Status

// Project statuses. Complete, Error and Canceled are terminal.
const (
	StatusDraft     = webhook.StatusDraft
	StatusQueued    = webhook.StatusQueued
	StatusRendering = webhook.StatusRendering
	StatusComplete  = webhook.StatusComplete
	StatusError     = webhook.StatusError
	StatusCanceled  = webhook.StatusCanceled
)

// Project is a video, image or audio project as returned by
// GET /v1/<kind>-projects/{id}. Fields a kind does not carry (Width on an
// audio project, say) are zero. Unknown fields in the response are ignored.
type Project struct {
	// Kind is the kind the project was fetched as; it is not part of the
	// API's JSON.
	Kind Kind `json:"-"`

	ID             string        `json:"id"`
	Name           *string       `json:"name"`
	Status         Status        `json:"status"`
	Type           string        `json:"type"`
	CreatedAt      time.Time     `json:"created_at"`
	Width          int           `json:"width"`
	Height         int           `json:"height"`
	Enabled        bool          `json:"enabled"`
	StartSeconds   float64       `json:"start_seconds"`
	EndSeconds     float64       `json:"end_seconds"`
	CreditsCharged int           `json:"credits_charged"`
	FPS            float64       `json:"fps"`
	ImageCount     int           `json:"image_count"`
	TotalFrameCost int           `json:"total_frame_cost"`
	Error          *ProjectError `json:"error"`
	Downloads      []Download    `json:"downloads"`
}

// ProjectError says why a project ended in StatusError.
type ProjectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Download is one output of a finished project. URL expires at ExpiresAt
// (about 24 hours after completion); fetch the project again for a fresh URL.
type Download struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UnmarshalJSON decodes a Download, tolerating a missing or empty expires_at.
func (d *Download) UnmarshalJSON(b []byte) error {
	var raw struct {
		URL       string `json:"url"`
		ExpiresAt string `json:"expires_at"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	t, err := parseTime(raw.ExpiresAt)
	if err != nil {
		return fmt.Errorf("download expires_at: %w", err)
	}
	*d = Download{URL: raw.URL, ExpiresAt: t}
	return nil
}

// UnmarshalJSON decodes a Project, tolerating unknown fields and a missing,
// null or empty created_at.
func (p *Project) UnmarshalJSON(b []byte) error {
	type plain Project
	var raw struct {
		plain
		CreatedAt *string `json:"created_at"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	kind := p.Kind
	*p = Project(raw.plain)
	p.Kind = kind
	if raw.CreatedAt != nil {
		t, err := parseTime(*raw.CreatedAt)
		if err != nil {
			return fmt.Errorf("project created_at: %w", err)
		}
		p.CreatedAt = t
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// CreateResponse is the immediate answer to a create call: the job runs
// asynchronously; poll the project of kind Kind with ID.
type CreateResponse struct {
	ID string `json:"id"`
	// CreditsCharged is an estimate, adjusted on completion and refunded if
	// the job fails or is canceled.
	CreditsCharged int  `json:"credits_charged"`
	Kind           Kind `json:"kind"`
	Tool           Tool `json:"tool"`
}

// Tool names a create endpoint, e.g. ToolFaceSwap ("face-swap" for
// POST /v1/face-swap). The constants are generated from the catalog.
type Tool string

// Kind returns the kind of project the tool creates, or "" for an unknown tool.
func (t Tool) Kind() Kind {
	if info, ok := toolInfo[t]; ok {
		return info.kind
	}
	return ""
}

// P50 returns the observed median processing time of the tool (queueing
// included), or 0 for an unknown tool. It is directional, not an SLA.
func (t Tool) P50() time.Duration {
	if info, ok := toolInfo[t]; ok {
		return info.p50
	}
	return 0
}

// Path returns the tool's create route, e.g. "/v1/face-swap".
func (t Tool) Path() string { return "/v1/" + string(t) }

// Valid reports whether t is a known create tool.
func (t Tool) Valid() bool { _, ok := toolInfo[t]; return ok }

// Tools returns every create tool, sorted by name.
func Tools() []Tool {
	out := make([]Tool, len(allTools))
	copy(out, allTools)
	return out
}

// ParseTool returns the tool with the given name ("face-swap") or Go name
// ("FaceSwap").
func ParseTool(name string) (Tool, error) {
	if t := Tool(name); t.Valid() {
		return t, nil
	}
	if op := catalog.Lookup(name); op != nil && Tool(op.Name).Valid() {
		return Tool(op.Name), nil
	}
	names := make([]string, len(allTools))
	for i, t := range allTools {
		names[i] = string(t)
	}
	return "", fmt.Errorf("magichour: unknown tool %q; known tools: %s", name, strings.Join(names, ", "))
}

// parseTool is ParseTool over the client's catalog.
func (c *Client) parseTool(name string) (Tool, error) {
	if op := c.cat.Lookup(name); op != nil && op.IsTool() {
		return Tool(op.Name), nil
	}
	var names []string
	for _, op := range c.cat.Creates() {
		names = append(names, op.Name)
	}
	return "", fmt.Errorf("magichour: unknown tool %q in the catalog of %s; known tools: %s", name, c.cat.DateString(), strings.Join(names, ", "))
}

type toolMeta struct {
	kind Kind
	p50  time.Duration
}

var (
	toolInfo = map[Tool]toolMeta{}
	allTools []Tool
)

func init() {
	for _, op := range catalog.Creates() {
		t := Tool(op.Name)
		toolInfo[t] = toolMeta{kind: Kind(op.Kind), p50: op.P50}
		allTools = append(allTools, t)
	}
}
