package magichour

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

// Version is the SDK version sent in the User-Agent header.
const Version = "0.1.0"

// EnvAPIKey is the environment variable NewClient reads the API key from.
const EnvAPIKey = "MAGIC_HOUR_API_KEY"

// EnvBaseURL is the environment variable NewClient reads the base URL from
// when WithBaseURL is not given.
const EnvBaseURL = "MAGIC_HOUR_BASE_URL"

// Client is a Magic Hour API client. Create one with NewClient and share it:
// it is safe for concurrent use. Printing a Client (any fmt verb) never
// shows the API key.
type Client struct {
	key      apiKey
	baseURL  string
	hc       *http.Client
	timeout  time.Duration
	retry    RetryPolicy
	ua       string
	logger   *slog.Logger
	validate bool
	cat      *catalog.Catalog
	// onWarning receives validation warnings (WithWarningHandler).
	onWarning func(tool string, w catalog.Warning)

	// Video, Image and Audio read and delete projects of their kind.
	Video, Image, Audio *ProjectService
	// Files uploads input files to Magic Hour's storage.
	Files *FilesService
	// FaceDetection finds the faces in an image or video, for multi-face
	// swap mappings.
	FaceDetection *FaceDetectionService
	// Account reads the account behind the API key: tier and credits.
	Account *AccountService
	// SavedItems lists saved characters, voices and references, whose
	// saved-items/... file paths can be passed as inputs.
	SavedItems *SavedItemsService

	// One typed service per create tool (c.FaceSwap, c.AIImageGenerator, ...),
	// generated from the catalog in zz_operations.go.
	toolServices
}

// apiKey holds the key behind a pointer so that even reflection-based
// printing of a Client shows only an address, and redacts itself when
// printed directly.
type apiKey struct{ p *string }

func (k apiKey) value() string {
	if k.p == nil {
		return ""
	}
	return *k.p
}

func (apiKey) String() string   { return "[REDACTED]" }
func (apiKey) GoString() string { return `"[REDACTED]"` }

// NewClient returns a client configured by opts. The API key comes from
// WithAPIKey or, failing that, the MAGIC_HOUR_API_KEY environment variable;
// with neither it returns ErrNoAPIKey.
func NewClient(opts ...Option) (*Client, error) {
	cfg := config{
		baseURL: DefaultBaseURL,
		timeout: DefaultTimeout,
		retry:   DefaultRetryPolicy,
		logger:  slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.apiKey == "" {
		cfg.apiKey = strings.TrimSpace(os.Getenv(EnvAPIKey))
	}
	if v := os.Getenv(EnvBaseURL); !cfg.baseURLSet && strings.TrimSpace(v) != "" {
		u, err := parseBaseURL(v)
		if err != nil {
			return nil, fmt.Errorf("magichour: %s: %w", EnvBaseURL, err)
		}
		cfg.baseURL = u
	}
	if cfg.apiKey == "" {
		return nil, ErrNoAPIKey
	}
	if cfg.hc == nil {
		cfg.hc = defaultHTTPClient()
	}
	ua := "hourglass-magichour-go/" + Version
	if cfg.userAgent != "" {
		ua = cfg.userAgent + " " + ua
	}
	key := cfg.apiKey
	c := &Client{
		key:       apiKey{&key},
		baseURL:   cfg.baseURL,
		hc:        cfg.hc,
		timeout:   cfg.timeout,
		retry:     cfg.retry,
		ua:        ua,
		logger:    cfg.logger,
		validate:  !cfg.noValidate,
		cat:       cfg.catalog,
		onWarning: cfg.onWarning,
	}
	if c.cat == nil {
		c.cat = catalog.Default()
	}
	c.Video = &ProjectService{c: c, kind: KindVideo}
	c.Image = &ProjectService{c: c, kind: KindImage}
	c.Audio = &ProjectService{c: c, kind: KindAudio}
	c.Files = &FilesService{c: c}
	c.FaceDetection = &FaceDetectionService{c: c}
	c.Account = &AccountService{c: c}
	c.SavedItems = &SavedItemsService{c: c}
	c.toolServices.init(c)
	return c, nil
}

// defaultHTTPClient has transport-level timeouts but no overall timeout, so
// that long downloads are bounded by contexts instead.
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 15 * time.Second
	t.ResponseHeaderTimeout = 90 * time.Second
	t.ExpectContinueTimeout = time.Second
	t.IdleConnTimeout = 90 * time.Second
	t.MaxIdleConnsPerHost = 16
	return &http.Client{Transport: t}
}

// BaseURL returns the API base URL the client talks to.
func (c *Client) BaseURL() string { return c.baseURL }

// String describes the client without its key.
func (c *Client) String() string {
	if c == nil {
		return "magichour.Client(nil)"
	}
	return fmt.Sprintf("magichour.Client{BaseURL: %q, APIKey: [REDACTED]}", c.baseURL)
}

// GoString is like String.
func (c *Client) GoString() string { return c.String() }

// Format prints the client the same way for every verb, so that %v, %+v and
// %#v never reveal the key.
func (c *Client) Format(f fmt.State, _ rune) { io.WriteString(f, c.String()) }

// ProjectService reads and deletes projects of one kind.
type ProjectService struct {
	c    *Client
	kind Kind
}

// Get fetches the project with the given id.
func (s *ProjectService) Get(ctx context.Context, id string) (*Project, error) {
	return s.c.GetProject(ctx, s.kind, id)
}

// Delete permanently deletes the project's outputs. It cannot be undone.
func (s *ProjectService) Delete(ctx context.Context, id string) error {
	return s.c.DeleteProject(ctx, s.kind, id)
}

// GetProject fetches a project: GET /v1/<kind>-projects/{id}. An unknown id
// gives an error matching ErrNotFound. Transient failures are retried.
func (c *Client) GetProject(ctx context.Context, kind Kind, id string) (*Project, error) {
	if err := checkProjectArgs(kind, id); err != nil {
		return nil, err
	}
	p := &Project{Kind: kind}
	if err := c.doJSON(ctx, request{method: http.MethodGet, path: kind.projectsPath(id)}, p); err != nil {
		return nil, err
	}
	p.Kind = kind
	return p, nil
}

// DeleteProject permanently deletes a project: DELETE /v1/<kind>-projects/{id}.
func (c *Client) DeleteProject(ctx context.Context, kind Kind, id string) error {
	if err := checkProjectArgs(kind, id); err != nil {
		return err
	}
	return c.doJSON(ctx, request{method: http.MethodDelete, path: kind.projectsPath(id)}, nil)
}

func checkProjectArgs(kind Kind, id string) error {
	if !kind.Valid() {
		return fmt.Errorf("%w: unknown project kind %q (want video, image or audio)", ErrInvalidRequest, kind)
	}
	return checkID(id)
}

func checkID(id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%w: empty id", ErrInvalidRequest)
	}
	return nil
}

func escapeID(id string) string { return url.PathEscape(id) }

// Catalog returns the catalog the client checks requests against and
// routes tools with (WithCatalog / WithSpec, else catalog.Default()).
func (c *Client) Catalog() *catalog.Catalog { return c.cat }

// tool returns the create operation of tool in the client's catalog, or an
// error matching ErrInvalidRequest.
func (c *Client) tool(tool Tool) (*catalog.Operation, error) {
	op := c.cat.Lookup(string(tool))
	if op == nil || !op.IsTool() {
		_, err := c.parseTool(string(tool))
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	return op, nil
}

// Create starts a job with the given tool: POST /v1/<tool>. tool may be any
// tool of the client's catalog, including one only a newer spec given with
// WithSpec knows. params is the tool's typed *CreateParams struct (or a
// pointer to it), a map[string]any, a json.RawMessage or []byte holding the
// JSON body.
//
// Unless WithoutValidation was given, the body is first checked against the
// API spec; a violation returns a *ValidationError (matching
// ErrInvalidRequest) and nothing is sent.
//
// A create is retried only when no job can have been created (connection
// refused, 429, 502/503 without a project id). When the request may have
// reached the server without an answer, the error matches
// ErrCreateOutcomeUnknown and nothing is retried.
func (c *Client) Create(ctx context.Context, tool Tool, params any) (*CreateResponse, error) {
	op, err := c.tool(tool)
	if err != nil {
		return nil, err
	}
	return c.create(ctx, op, params)
}

// create validates and sends a job-creating POST for op.
func (c *Client) create(ctx context.Context, op *catalog.Operation, params any) (*CreateResponse, error) {
	body, err := c.marshalBody(op, params)
	if err != nil {
		return nil, err
	}
	var out struct {
		ID             string `json:"id"`
		CreditsCharged int    `json:"credits_charged"`
	}
	if err := c.doJSON(ctx, request{method: http.MethodPost, path: op.Path, body: body, create: true}, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, &OutcomeUnknownError{Method: http.MethodPost, Path: op.Path, Err: errors.New("the answer carries no project id")}
	}
	return &CreateResponse{ID: out.ID, CreditsCharged: out.CreditsCharged, Kind: Kind(op.Kind), Tool: Tool(op.Name)}, nil
}

// marshalBody encodes params as JSON and validates it against op.
func (c *Client) marshalBody(op *catalog.Operation, params any) ([]byte, error) {
	var body []byte
	switch p := params.(type) {
	case nil:
		body = []byte("{}")
	case json.RawMessage:
		body = p
	case []byte:
		body = p
	default:
		b, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("magichour: %s: encode request: %w", op.Name, err)
		}
		body = b
	}
	if !c.validate {
		return body, nil
	}
	warns, err := op.CheckJSON(body)
	if err != nil {
		var ve *catalog.ValidationError
		if errors.As(err, &ve) {
			out := &ValidationError{Tool: op.Name, Hint: ve.Hint()}
			for _, f := range ve.Fields {
				out.Fields = append(out.Fields, FieldError{Field: f.Field, Message: f.Message})
			}
			return nil, out
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidRequest, op.Name, err)
	}
	for _, w := range warns {
		c.logger.Warn("request passed with a warning", "tool", op.Name, "field", w.Field, "warning", w.Message)
		if c.onWarning != nil {
			c.onWarning(op.Name, w)
		}
	}
	return bytes.TrimSpace(body), nil
}

// doJSON sends r with the retry policy and decodes a 2xx JSON answer into
// out (when out is non-nil).
func (c *Client) doJSON(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err == nil {
		if err = json.Unmarshal(b, out); err != nil {
			err = fmt.Errorf("decode answer (%s): %w", strings.TrimPrefix(snippet(b), "unexpected response body: "), err)
		}
	} else {
		err = fmt.Errorf("read answer: %w", err)
	}
	if err != nil && r.create {
		// The server accepted the create: a job exists but its id was lost.
		return &OutcomeUnknownError{Method: r.method, Path: r.label(), Err: err}
	}
	if err != nil {
		return fmt.Errorf("magichour: %s %s: %w", r.method, r.label(), err)
	}
	return nil
}

// ToolService is the typed create endpoint of one tool; P is the tool's
// params struct (e.g. FaceSwapCreateParams). Get one from the Client's
// generated fields: c.FaceSwap, c.AIImageGenerator, ...
type ToolService[P any] struct {
	c    *Client
	tool Tool
}

// Tool returns the service's tool.
func (s *ToolService[P]) Tool() Tool { return s.tool }

// Create starts a job with params; see Client.Create for validation and
// retry behaviour.
func (s *ToolService[P]) Create(ctx context.Context, params P) (*CreateResponse, error) {
	return s.c.Create(ctx, s.tool, params)
}

// Ptr returns a pointer to v, for the optional fields of params structs:
// Name: magichour.Ptr("my video").
func Ptr[T any](v T) *T { return &v }

// CreateOperation is Create for an operation of any catalog, not only the
// client's: a gateway whose catalog is swapped at run time (a refreshed
// spec) sends each create with the operation of the catalog in use. The
// body is sent as is, without the client's checks: the caller has checked
// it against op's catalog (or was asked not to).
func (c *Client) CreateOperation(ctx context.Context, op *catalog.Operation, body json.RawMessage) (*CreateResponse, error) {
	if op == nil || !op.IsTool() {
		return nil, fmt.Errorf("%w: not a create operation", ErrInvalidRequest)
	}
	v := *c
	v.validate = false
	return v.create(ctx, op, body)
}
