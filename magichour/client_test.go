package magichour

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hourglasshq/hourglass/internal/catalog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of clients' transports.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const testKey = "mhk_live_SECRETKEY1234567890"

// recorded is one request seen by a fake server.
type recorded struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// fake is an httptest server that records requests and answers with handle.
type fake struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
	n    atomic.Int32
}

func newFake(t *testing.T, handle func(w http.ResponseWriter, r *http.Request, n int)) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, recorded{r.Method, r.URL.Path, r.Header.Clone(), b})
		f.mu.Unlock()
		n := int(f.n.Add(1))
		handle(w, r, n)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func fastRetry(n int) Option {
	return WithRetry(RetryPolicy{MaxAttempts: n, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond})
}

func newTestClient(t *testing.T, base string, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(append([]Option{WithAPIKey(testKey), WithBaseURL(base), fastRetry(4)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func TestNewClientNoKey(t *testing.T) {
	t.Setenv(EnvAPIKey, "")
	_, err := NewClient()
	if !errors.Is(err, ErrNoAPIKey) {
		t.Fatalf("err = %v, want ErrNoAPIKey", err)
	}
	if !strings.Contains(err.Error(), EnvAPIKey) {
		t.Errorf("error %q does not say how to provide a key", err)
	}
}

func TestNewClientKeyFromEnv(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(204) })
	t.Setenv(EnvAPIKey, "mhk_env_key")
	c, err := NewClient(WithBaseURL(f.URL))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Video.Delete(context.Background(), "p1"); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[0].Header.Get("Authorization"); got != "Bearer mhk_env_key" {
		t.Errorf("Authorization = %q", got)
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"empty key", WithAPIKey(" ")},
		{"relative base", WithBaseURL("/v1")},
		{"ftp base", WithBaseURL("ftp://x")},
		{"nil http client", WithHTTPClient(nil)},
	} {
		if _, err := NewClient(WithAPIKey("k"), tc.opt); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestDefaultHTTPClientIsNotDefault(t *testing.T) {
	t.Parallel()
	c, err := NewClient(WithAPIKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	if c.hc == http.DefaultClient || c.hc.Transport == http.DefaultTransport || c.hc.Transport == nil {
		t.Fatal("client uses the default HTTP client or transport")
	}
	tr := c.hc.Transport.(*http.Transport)
	if tr.ResponseHeaderTimeout == 0 || tr.TLSHandshakeTimeout == 0 {
		t.Error("transport lacks timeouts")
	}
	if c.BaseURL() != DefaultBaseURL {
		t.Errorf("BaseURL = %q", c.BaseURL())
	}
}

func TestKeyRedaction(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeJSON(w, 503, map[string]string{"message": "overloaded"})
			return
		}
		writeJSON(w, 401, map[string]string{"message": "Unauthorized"})
	})
	c := newTestClient(t, f.URL, WithLogger(logger))
	_, err := c.GetProject(context.Background(), KindVideo, "abc")
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v", err)
	}
	var apiErr *APIError
	errors.As(err, &apiErr)
	outputs := map[string]string{
		"%v":        fmt.Sprintf("%v", c),
		"%+v":       fmt.Sprintf("%+v", c),
		"%#v":       fmt.Sprintf("%#v", c),
		"%s":        fmt.Sprintf("%s", c),
		"value %v":  fmt.Sprintf("%v", *c),
		"value %+v": fmt.Sprintf("%+v", *c),
		"value %#v": fmt.Sprintf("%#v", *c),
		"key %#v":   fmt.Sprintf("%#v", c.key),
		"error":     err.Error(),
		"error %+v": fmt.Sprintf("%+v", apiErr),
		"logs":      logs.String(),
	}
	for name, s := range outputs {
		if strings.Contains(s, "SECRETKEY") {
			t.Errorf("%s reveals the key: %s", name, s)
		}
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("retry not logged: %q", logs.String())
	}
	if got := f.requests()[0].Header.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization = %q", got)
	}
}

func TestProjectRoutes(t *testing.T) {
	t.Parallel()
	project := `{"id":"p1","name":null,"status":"complete","type":"FACE_SWAP","created_at":"2024-10-19T05:16:19.027Z",
		"width":512,"height":960,"enabled":true,"start_seconds":0,"end_seconds":15,"credits_charged":450,"fps":30,
		"total_frame_cost":450,"unknown_future_field":{"x":1},"error":null,"download":null,
		"downloads":[{"url":"https://videos.example/out.mp4","expires_at":"2024-10-20T05:16:19Z"}]}`
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(204)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, project)
	})
	c := newTestClient(t, f.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		svc  *ProjectService
		kind Kind
	}{{c.Video, KindVideo}, {c.Image, KindImage}, {c.Audio, KindAudio}} {
		p, err := tc.svc.Get(ctx, "p/1")
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != tc.kind || p.ID != "p1" || p.Status != StatusComplete || !p.Status.Terminal() ||
			p.Width != 512 || p.FPS != 30 || p.TotalFrameCost != 450 || len(p.Downloads) != 1 ||
			p.Downloads[0].ExpiresAt.IsZero() || p.CreatedAt.IsZero() || p.Name != nil || p.Err() != nil {
			t.Errorf("%s: project = %+v", tc.kind, p)
		}
		if err := tc.svc.Delete(ctx, "p/1"); err != nil {
			t.Fatal(err)
		}
	}
	reqs := f.requests()
	want := []string{
		"GET /v1/video-projects/p%2F1", "DELETE /v1/video-projects/p%2F1",
		"GET /v1/image-projects/p%2F1", "DELETE /v1/image-projects/p%2F1",
		"GET /v1/audio-projects/p%2F1", "DELETE /v1/audio-projects/p%2F1",
	}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, r := range reqs {
		_ = r
		// r.Path is decoded; compare the decoded form.
		w := strings.ReplaceAll(want[i], "%2F", "/")
		if got := r.Method + " " + r.Path; got != w {
			t.Errorf("request %d = %s, want %s", i, got, w)
		}
	}
	if _, err := c.GetProject(ctx, "movie", "x"); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("bad kind: %v", err)
	}
	if err := c.DeleteProject(ctx, KindVideo, ""); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("empty id: %v", err)
	}
	if len(f.requests()) != len(want) {
		t.Error("invalid arguments reached the server")
	}
}

func TestProjectErr(t *testing.T) {
	t.Parallel()
	p := &Project{ID: "x", Kind: KindImage, Status: StatusError, Error: &ProjectError{Code: "no_source_face", Message: "no face"}}
	var je *JobError
	if err := p.Err(); !errors.As(err, &je) || !errors.Is(err, ErrJobFailed) || je.Code != "no_source_face" {
		t.Errorf("error project: %v", err)
	}
	p.Status = StatusCanceled
	if err := p.Err(); !errors.Is(err, ErrCanceled) || errors.Is(err, context.Canceled) {
		t.Errorf("canceled project: %v", err)
	}
	for _, s := range []Status{StatusDraft, StatusQueued, StatusRendering} {
		if s.Terminal() {
			t.Errorf("%s is terminal", s)
		}
	}
}

// TestCreateEveryTool sends the spec's example body of every create tool
// and checks route, method, headers and body.
func TestCreateEveryTool(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, map[string]any{"id": fmt.Sprint("id-", n), "credits_charged": 7, "estimated_frame_cost": 7})
	})
	c := newTestClient(t, f.URL)
	tools := Tools()
	if len(tools) != 28 {
		t.Errorf("%d tools, want 28", len(tools))
	}
	for i, tool := range tools {
		op := catalog.Lookup(string(tool))
		body := op.ExampleBody()
		res, err := c.Create(context.Background(), tool, body)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if res.ID != fmt.Sprint("id-", i+1) || res.CreditsCharged != 7 || res.Tool != tool || res.Kind != Kind(op.Kind) {
			t.Errorf("%s: response %+v", tool, res)
		}
		r := f.requests()[i]
		if r.Method != "POST" || r.Path != "/v1/"+string(tool) || r.Path != tool.Path() {
			t.Errorf("%s: sent %s %s", tool, r.Method, r.Path)
		}
		if r.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(r.Header.Get("User-Agent"), "hourglass-magichour-go/") {
			t.Errorf("%s: headers %v", tool, r.Header)
		}
		var got, want any
		_ = json.Unmarshal(r.Body, &got)
		b, _ := json.Marshal(body)
		_ = json.Unmarshal(b, &want)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: body %s, want %s", tool, r.Body, b)
		}
		if tool.P50() <= 0 || !tool.Kind().Valid() {
			t.Errorf("%s: P50 %v kind %q", tool, tool.P50(), tool.Kind())
		}
	}
}

func TestTypedServices(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, map[string]any{"id": "v1", "credits_charged": 10})
	})
	c := newTestClient(t, f.URL)
	ctx := context.Background()
	res, err := c.FaceSwap.Create(ctx, FaceSwapCreateParams{
		Name:         Ptr("swap"),
		StartSeconds: 0,
		EndSeconds:   5,
		Assets: FaceSwapCreateParamsAssets{
			FaceSwapMode:  Ptr(FaceSwapCreateParamsAssetsFaceSwapModeIndividualFaces),
			VideoSource:   FaceSwapCreateParamsAssetsVideoSourceFile,
			VideoFilePath: Ptr("api-assets/id/in.mp4"),
			FaceMappings: []FaceSwapCreateParamsAssetsFaceMappingsItem{
				{OriginalFace: "api-assets/id/0-0.png", NewFace: "api-assets/id/new.png"},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindVideo || res.Tool != ToolFaceSwap || c.FaceSwap.Tool() != ToolFaceSwap {
		t.Errorf("res = %+v", res)
	}
	want := `{"name":"swap","start_seconds":0,"end_seconds":5,"assets":{"face_swap_mode":"individual-faces","face_mappings":[{"original_face":"api-assets/id/0-0.png","new_face":"api-assets/id/new.png"}],"video_source":"file","video_file_path":"api-assets/id/in.mp4"}}`
	if got := string(f.requests()[0].Body); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}

	if _, err := c.AIImageGenerator.Create(ctx, AIImageGeneratorCreateParams{
		ImageCount: 1,
		Style:      AIImageGeneratorCreateParamsStyle{Prompt: "a cat"},
	}); err != nil {
		t.Fatal(err)
	}
	if r := f.requests()[1]; r.Path != "/v1/ai-image-generator" {
		t.Errorf("path %s", r.Path)
	}
	// Raw JSON and pointers to params work with the untyped Create.
	if _, err := c.Create(ctx, ToolAIImageGenerator, json.RawMessage(`{"image_count":1,"style":{"prompt":"x"}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, ToolAIImageGenerator, &AIImageGeneratorCreateParams{ImageCount: 1, Style: AIImageGeneratorCreateParamsStyle{Prompt: "y"}}); err != nil {
		t.Fatal(err)
	}
}

func TestLocalValidationSendsNothing(t *testing.T) {
	t.Parallel()
	f := newFake(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, map[string]any{"id": "x", "credits_charged": 1})
	})
	c := newTestClient(t, f.URL)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		call   func() error
		fields []string
	}{
		{"missing required", func() error {
			_, err := c.Create(ctx, ToolFaceSwapPhoto, map[string]any{})
			return err
		}, []string{"assets"}},
		{"typed, empty prompt and bad count", func() error {
			_, err := c.AIImageGenerator.Create(ctx, AIImageGeneratorCreateParams{ImageCount: 17})
			return err
		}, []string{"image_count", "style.prompt"}},
		{"bad file reference", func() error {
			_, err := c.Create(ctx, ToolAIHeadshotGenerator, map[string]any{"assets": map[string]any{"image_file_path": "/home/me/face.png"}})
			return err
		}, []string{"assets.image_file_path"}},
		{"not JSON", func() error {
			_, err := c.Create(ctx, ToolAIImageGenerator, json.RawMessage(`{`))
			return err
		}, []string{""}},
	} {
		err := tc.call()
		var ve *ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		var got []string
		for _, fe := range ve.Fields {
			got = append(got, fe.Field)
		}
		for _, w := range tc.fields {
			if !strings.Contains(strings.Join(got, ","), w) {
				t.Errorf("%s: fields %v lack %q", tc.name, got, w)
			}
		}
		if !strings.Contains(err.Error(), "nothing was sent") {
			t.Errorf("%s: message %q", tc.name, err)
		}
	}
	if _, err := c.Create(ctx, Tool("no-such-tool"), nil); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("unknown tool: %v", err)
	}
	if n := len(f.requests()); n != 0 {
		t.Fatalf("%d requests sent despite validation errors", n)
	}

	// WithoutValidation lets the server decide.
	c2 := newTestClient(t, f.URL, WithoutValidation())
	if _, err := c2.Create(ctx, ToolFaceSwapPhoto, map[string]any{}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

func TestParseTool(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"face-swap", "FaceSwap"} {
		if tool, err := ParseTool(in); err != nil || tool != ToolFaceSwap {
			t.Errorf("ParseTool(%q) = %q, %v", in, tool, err)
		}
	}
	if _, err := ParseTool("video-projects.get"); err == nil {
		t.Error("project route accepted as a tool")
	}
}

func TestNewClientBaseURLFromEnv(t *testing.T) {
	t.Setenv(EnvBaseURL, "http://127.0.0.1:8787/")
	c, err := NewClient(WithAPIKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "http://127.0.0.1:8787" {
		t.Errorf("BaseURL = %q, want the environment's", c.BaseURL())
	}
	c, err = NewClient(WithAPIKey("k"), WithBaseURL("http://127.0.0.1:9999"))
	if err != nil {
		t.Fatal(err)
	}
	if c.BaseURL() != "http://127.0.0.1:9999" {
		t.Errorf("WithBaseURL must win over %s, got %q", EnvBaseURL, c.BaseURL())
	}
	t.Setenv(EnvBaseURL, "not a url")
	if _, err := NewClient(WithAPIKey("k")); err == nil || !strings.Contains(err.Error(), EnvBaseURL) {
		t.Errorf("bad %s: err = %v, want one naming the variable", EnvBaseURL, err)
	}
}
