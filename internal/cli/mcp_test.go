package cli_test

// hourglass mcp driven by the official Go SDK's client, over stdio of the
// built binary and over streamable HTTP, standalone and through a gateway.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/media"
	"github.com/hourglasshq/hourglass/magichour"
)

// freezeClock is the emulator's clock: real time plus an offset, which a
// test can freeze (jobs stop advancing) and then move forward. Frozen, no
// job can finish, so a wait that must time out does, whatever the load.
type freezeClock struct {
	mu     sync.Mutex
	offset time.Duration
	frozen *time.Time
}

func (c *freezeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen != nil {
		return *c.frozen
	}
	return time.Now().Add(c.offset)
}

func (c *freezeClock) Freeze() {
	now := c.Now()
	c.mu.Lock()
	c.frozen = &now
	c.mu.Unlock()
}

// Resume unfreezes the clock d after the moment it was frozen.
func (c *freezeClock) Resume(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen != nil {
		c.offset = time.Until(c.frozen.Add(d))
		c.frozen = nil
	}
}

func (c *freezeClock) NewTimer(d time.Duration) emulator.Timer {
	return emulator.RealClock().NewTimer(d)
}

// mcpEnv is an emulator the binary's embedded gateway (or a test gateway)
// uses as its upstream, with a clock the test controls.
type mcpEnv struct {
	clock *freezeClock
	emu   *emulator.Server
}

func newMCPEnv(t *testing.T) *mcpEnv {
	clock := &freezeClock{}
	return &mcpEnv{clock: clock, emu: emulator.NewServer(t, emulator.WithSpeed(1000), emulator.WithClock(clock))}
}

// upstreamEnv points the binary at the test's emulator.
func (e *mcpEnv) upstreamEnv() []string {
	return append(os.Environ(), magichour.EnvAPIKey+"="+e.emu.APIKey, "MAGIC_HOUR_BASE_URL="+e.emu.URL)
}

func (e *mcpEnv) upstreamArgs() []string {
	return []string{"--base-url", e.emu.URL, "--upstream-speed", "1000", "--log-level", "error"}
}

type progressCounter struct{ n atomic.Int64 }

func (p *progressCounter) handler(context.Context, *mcp.ProgressNotificationClientRequest) {
	p.n.Add(1)
}

func newMCPClient(p *progressCounter) *mcp.Client {
	return mcp.NewClient(&mcp.Implementation{Name: "hourglass-test", Version: "1"}, &mcp.ClientOptions{ProgressNotificationHandler: p.handler})
}

// stdioSession starts `hourglass mcp args...` and connects to it over its
// standard input and output.
func stdioSession(t *testing.T, ctx context.Context, env []string, p *progressCounter, args ...string) *mcp.ClientSession {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"mcp"}, args...)...)
	cmd.Env = env
	cmd.Stderr = &testLogWriter{t: t}
	cs, err := newMCPClient(p).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect over stdio: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

type testLogWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *testLogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Logf("mcp stderr: %s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

func httpSession(t *testing.T, ctx context.Context, endpoint, key string, p *progressCounter) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: bearer{key: key, base: http.DefaultTransport}}
	cs, err := newMCPClient(p).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("connect over HTTP: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// startHTTP runs `hourglass mcp --http 127.0.0.1:0 args...` and returns
// its /mcp endpoint and the tenant key it printed (standalone).
func startHTTP(t *testing.T, env []string, args ...string) (endpoint, key string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"mcp", "--http", "127.0.0.1:0"}, args...)...)
	cmd.Env = env
	cmd.Stderr = &testLogWriter{t: t}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		t.Logf("mcp stdout: %s", line)
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "tenant key:"); ok {
			key = strings.TrimSpace(k)
		}
		if rest, ok := strings.CutPrefix(line, "hourglass mcp listening on "); ok {
			endpoint, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	if endpoint == "" {
		t.Fatal("hourglass mcp --http printed no address")
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return endpoint, key
}

// call calls a tool and returns its structured result; wantErr says
// whether the result must be a tool error.
func call(t *testing.T, ctx context.Context, cs *mcp.ClientSession, name string, args map[string]any, wantErr bool, progress bool) (*mcp.CallToolResult, map[string]any) {
	t.Helper()
	params := &mcp.CallToolParams{Name: name, Arguments: args}
	if progress {
		params.SetProgressToken("p-" + name)
	}
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatalf("%s: protocol error: %v", name, err)
	}
	text := ""
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if res.IsError != wantErr {
		t.Fatalf("%s: isError=%v, want %v: %s", name, res.IsError, wantErr, text)
	}
	var m map[string]any
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &m)
	return res, m
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// scenario is what every transport and mode must do, in order.
// With local false the server must refuse local paths and the file is
// sent as base64.
func scenario(t *testing.T, ctx context.Context, cs *mcp.ClientSession, env *mcpEnv, p *progressCounter, gatewayKey string, local bool) {
	// Tools: one per catalog tool, with the request schema and our fields.
	tools := map[string]*mcp.Tool{}
	for tool, err := range cs.Tools(ctx, nil) {
		if err != nil {
			t.Fatal(err)
		}
		tools[tool.Name] = tool
	}
	for _, name := range []string{"ai_image_generator", "text_to_video", "ai_image_upscaler", "get_job", "wait_for_job", "list_jobs",
		"cancel_job", "delete_job", "upload_file", "detect_faces", "account", "estimate"} {
		if tools[name] == nil {
			t.Fatalf("tool %s missing (have %d tools)", name, len(tools))
		}
	}
	gen := tools["ai_image_generator"]
	schema, _ := json.Marshal(gen.InputSchema)
	for _, want := range []string{`"idempotency_key"`, `"wait_seconds"`, `"required"`, `"enum"`, `"style"`} {
		if !strings.Contains(string(schema), want) {
			t.Errorf("ai_image_generator schema lacks %s: %s", want, schema)
		}
	}
	if a := gen.Annotations; a == nil || a.IdempotentHint || a.ReadOnlyHint {
		t.Errorf("create annotations = %+v, want not idempotent, not read-only", a)
	}
	if a := tools["delete_job"].Annotations; a == nil || a.DestructiveHint == nil || !*a.DestructiveHint {
		t.Errorf("delete_job annotations = %+v, want destructive", a)
	}

	creates := func() int { return env.emu.Emulator.Stats().Creates }

	// Invalid arguments: a tool error naming the field; nothing created.
	before := creates()
	res, m := call(t, ctx, cs, "ai_image_generator", map[string]any{"image_count": 1, "aspect_ratio": "1:1", "style": map[string]any{"tool": "no-such-style"}}, true, false)
	if txt := resultText(res); !strings.Contains(txt, "style.prompt") || !strings.Contains(txt, "Fix") {
		t.Errorf("invalid arguments: error should name style.prompt and a fix: %s", txt)
	}
	if m["error"] == nil {
		t.Errorf("invalid arguments: no structured error: %v", m)
	}

	// An image tool, waiting for it.
	genArgs := map[string]any{"image_count": 1, "aspect_ratio": "1:1", "style": map[string]any{"prompt": "a lighthouse at dusk"}}
	waitArgs := map[string]any{"wait_seconds": 120}
	for k, v := range genArgs {
		waitArgs[k] = v
	}
	res, img := call(t, ctx, cs, "ai_image_generator", waitArgs, false, true)
	if img["status"] != "stored" || img["done"] != true {
		t.Fatalf("image with wait_seconds: %s", resultText(res))
	}
	checkMCPOutputs(t, ctx, cs, img, gatewayKey)
	hasImage := false
	for _, c := range res.Content {
		if _, ok := c.(*mcp.ImageContent); ok {
			hasImage = true
		}
	}
	if !hasImage {
		t.Errorf("small image output not embedded")
	}
	if creates() != before+1 {
		t.Errorf("emulator creates = %d, want %d (the invalid call must create nothing)", creates(), before+1)
	}

	// The same create again (a retry): the same job, no new upstream create.
	res, again := call(t, ctx, cs, "ai_image_generator", genArgs, false, false)
	if again["job_id"] != img["job_id"] || again["reused"] != true {
		t.Fatalf("repeated create: job %v (reused %v), want %v: %s", again["job_id"], again["reused"], img["job_id"], resultText(res))
	}
	if creates() != before+1 {
		t.Errorf("emulator creates = %d after the repeat, want %d", creates(), before+1)
	}

	// Upload a local file and use it.
	png, err := media.Image("png", 48, 48, 7)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "input.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	upArgs := map[string]any{"path": path}
	if !local {
		res, _ := call(t, ctx, cs, "upload_file", upArgs, true, false)
		if !strings.Contains(resultText(res), "content_base64") {
			t.Errorf("local path refusal should point to content_base64: %s", resultText(res))
		}
		upArgs = map[string]any{"content_base64": base64.StdEncoding.EncodeToString(png), "filename": "input.png"}
	}
	_, up := call(t, ctx, cs, "upload_file", upArgs, false, false)
	fp, _ := up["file_path"].(string)
	sum := sha256.Sum256(png)
	if fp == "" || up["sha256"] != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload_file: %v", up)
	}
	res, ups := call(t, ctx, cs, "ai_image_upscaler", map[string]any{"assets": map[string]any{"image_file_path": fp}, "scale_factor": 2,
		"style": map[string]any{"mode": "balanced"}, "wait_seconds": 120}, false, false)
	if ups["status"] != "stored" {
		t.Fatalf("upscaler on the upload: %s", resultText(res))
	}
	checkMCPOutputs(t, ctx, cs, ups, gatewayKey)

	// A video without waiting, then wait_for_job twice: the first cannot
	// finish (the emulator's clock is frozen), the second does.
	env.clock.Freeze()
	res, vid := call(t, ctx, cs, "text_to_video", map[string]any{"end_seconds": 5, "style": map[string]any{"prompt": "waves on a beach"}}, false, false)
	if vid["job_id"] == nil || vid["done"] == true || vid["expected_seconds"] == nil {
		t.Fatalf("video create: %s", resultText(res))
	}
	res, w1 := call(t, ctx, cs, "wait_for_job", map[string]any{"job_id": vid["job_id"], "wait_seconds": 1}, false, true)
	if w1["timed_out"] != true || w1["done"] == true || !strings.Contains(resultText(res), "wait_for_job") {
		t.Fatalf("first wait_for_job should time out and say how to resume: %s", resultText(res))
	}
	env.clock.Resume(10 * time.Minute)
	res, w2 := call(t, ctx, cs, "wait_for_job", map[string]any{"job_id": vid["job_id"], "wait_seconds": 120}, false, true)
	if w2["status"] != "stored" || w2["timed_out"] == true {
		t.Fatalf("second wait_for_job: %s", resultText(res))
	}
	checkMCPOutputs(t, ctx, cs, w2, gatewayKey)
	if p.n.Load() == 0 {
		t.Errorf("no progress notifications during waits")
	}
	if got := env.emu.Emulator.Stats().CreatesByTool["text-to-video"]; got != 1 {
		t.Errorf("emulator text-to-video creates = %d, want 1 (waits never create)", got)
	}

	// Reads: list_jobs, resources, account, estimate.
	_, list := call(t, ctx, cs, "list_jobs", map[string]any{"limit": 10}, false, false)
	if jobs, _ := list["jobs"].([]any); len(jobs) != 3 {
		t.Errorf("list_jobs: %d jobs, want 3: %v", len(jobs), list)
	}
	rl, err := cs.ListResources(ctx, nil)
	if err != nil || len(rl.Resources) != 3 {
		t.Errorf("resources/list: %v, %v", rl, err)
	}
	_, acct := call(t, ctx, cs, "account", nil, false, false)
	if up, _ := acct["upstream"].(map[string]any); acct["id"] == nil || up["tier"] == nil || up["credits"] == nil {
		t.Errorf("account (with the Magic Hour tier and credits): %v", acct)
	}
	_, est := call(t, ctx, cs, "estimate", map[string]any{"tool": "text_to_video", "params": map[string]any{"end_seconds": 4, "style": map[string]any{"prompt": "x"}}}, false, false)
	if est["credits"] != float64(120) {
		t.Errorf("estimate: %v, want 120 credits (4 s x 30 fps)", est)
	}
	if creates() != before+3 {
		t.Errorf("emulator creates = %d, want %d", creates(), before+3)
	}

	// A job that fails upstream is a tool error with its code and a fix.
	res, failed := call(t, ctx, cs, "ai_image_generator", map[string]any{"name": "boom", "image_count": 1, "aspect_ratio": "1:1",
		"style": map[string]any{"prompt": "fails"}, "wait_seconds": 120}, true, false)
	if failed["status"] != "error" || !strings.Contains(resultText(res), "unknown_error") || !strings.Contains(resultText(res), "new idempotency_key") {
		t.Errorf("failed job: %s", resultText(res))
	}

	// Faces of the uploaded image.
	res, faces := call(t, ctx, cs, "detect_faces", map[string]any{"assets": map[string]any{"target_file_path": fp}, "wait_seconds": 60}, false, false)
	if faces["status"] != "complete" || len(faces["faces"].([]any)) == 0 {
		t.Errorf("detect_faces: %s", resultText(res))
	}
	res, _ = call(t, ctx, cs, "detect_faces", map[string]any{"confidence_score": 0.5}, true, false)
	if !strings.Contains(resultText(res), "assets.target_file_path") {
		t.Errorf("detect_faces without a file: %s", resultText(res))
	}

	// get_job, then delete_job removes the stored outputs.
	_, got := call(t, ctx, cs, "get_job", map[string]any{"job_id": img["job_id"]}, false, false)
	if got["status"] != "stored" {
		t.Errorf("get_job: %v", got)
	}
	call(t, ctx, cs, "delete_job", map[string]any{"job_id": img["job_id"]}, false, false)
	if _, got = call(t, ctx, cs, "get_job", map[string]any{"job_id": img["job_id"]}, false, false); got["outputs"].([]any)[0].(map[string]any)["stored"] != false {
		t.Errorf("outputs still stored after delete_job: %v", got)
	}
	res, _ = call(t, ctx, cs, "get_job", map[string]any{"job_id": "job_nope"}, true, false)
	if !strings.Contains(resultText(res), "list_jobs") {
		t.Errorf("unknown job: %s", resultText(res))
	}

	// cancel_job stops an unfinished job; a finished one is refused.
	env.clock.Freeze()
	_, c := call(t, ctx, cs, "text_to_video", map[string]any{"end_seconds": 2, "style": map[string]any{"prompt": "to be canceled"}}, false, false)
	_, canceled := call(t, ctx, cs, "cancel_job", map[string]any{"job_id": c["job_id"]}, false, false)
	env.clock.Resume(time.Minute)
	if canceled["status"] != "deleted" || canceled["done"] != true {
		t.Errorf("cancel_job: %v", canceled)
	}
	res, _ = call(t, ctx, cs, "cancel_job", map[string]any{"job_id": c["job_id"]}, true, false)
	if !strings.Contains(resultText(res), "already finished") {
		t.Errorf("cancel of a finished job: %s", resultText(res))
	}
}

// checkMCPOutputs reads every output of a job result through resources/read
// (and its URL with the key, when given) and checks size and sha256.
func checkMCPOutputs(t *testing.T, ctx context.Context, cs *mcp.ClientSession, job map[string]any, key string) {
	t.Helper()
	outs, _ := job["outputs"].([]any)
	if len(outs) == 0 {
		t.Fatalf("job %v has no outputs", job["job_id"])
	}
	for _, o := range outs {
		out := o.(map[string]any)
		uri, _ := out["resource_uri"].(string)
		rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
		if err != nil {
			t.Fatalf("read %s: %v", uri, err)
		}
		data := rr.Contents[0].Blob
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != out["sha256"] || float64(len(data)) != out["size"] {
			t.Errorf("%s: %d bytes sha256 %x, result says %v bytes %v", uri, len(data), sum, out["size"], out["sha256"])
		}
		if key == "" {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, out["url"].(string), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", out["url"], err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if s := sha256.Sum256(body); resp.StatusCode != 200 || hex.EncodeToString(s[:]) != out["sha256"] {
			t.Errorf("GET %s: %d, sha256 %x, want %v", out["url"], resp.StatusCode, s, out["sha256"])
		}
	}
}

func TestMCPStdioStandalone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env := newMCPEnv(t)
	p := &progressCounter{}
	dir := t.TempDir()
	cs := stdioSession(t, ctx, env.upstreamEnv(), p, append([]string{"--data-dir", dir}, env.upstreamArgs()...)...)
	if ins := cs.InitializeResult().Instructions; !strings.Contains(ins, "wait_for_job") || !strings.Contains(ins, dir) {
		t.Errorf("instructions: %s", ins)
	}
	key, err := os.ReadFile(filepath.Join(dir, "tenant.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tenant.key", "admin.key"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	scenario(t, ctx, cs, env, p, strings.TrimSpace(string(key)), true)
}

func TestMCPStdioEmulatorNotice(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var envv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, magichour.EnvAPIKey+"=") {
			envv = append(envv, kv)
		}
	}
	cs := stdioSession(t, ctx, envv, &progressCounter{}, "--data-dir", t.TempDir(), "--emulator-speed", "500")
	if ins := cs.InitializeResult().Instructions; !strings.Contains(ins, "EMULATOR") || !strings.Contains(ins, "MAGIC_HOUR_API_KEY") {
		t.Errorf("instructions do not say the upstream is the emulator: %s", ins)
	}
	res, job := call(t, ctx, cs, "ai_image_generator", map[string]any{"image_count": 1, "aspect_ratio": "1:1", "style": map[string]any{"prompt": "x"}, "wait_seconds": 60}, false, false)
	if job["status"] != "stored" {
		t.Fatalf("create on the embedded emulator: %s", resultText(res))
	}
}

func TestMCPHTTPStandalone(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env := newMCPEnv(t)
	endpoint, key := startHTTP(t, env.upstreamEnv(), append([]string{"--data-dir", t.TempDir(), "--allow-local-files"}, env.upstreamArgs()...)...)
	if !strings.HasPrefix(key, "hgt_") {
		t.Fatalf("tenant key not printed at start (got %q)", key)
	}
	// No key or a wrong key: 401, and nothing is created.
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, k := range []string{"", "hgt_wrong"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(initBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if k != "" {
			req.Header.Set("Authorization", "Bearer "+k)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("key %q: status %d, want 401", k, resp.StatusCode)
		}
	}
	if _, err := mcp.NewClient(&mcp.Implementation{Name: "x", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &http.Client{Transport: bearer{"hgt_wrong", http.DefaultTransport}}}, nil); err == nil {
		t.Error("a client with a wrong key connected")
	}
	p := &progressCounter{}
	scenario(t, ctx, httpSession(t, ctx, endpoint, key, p), env, p, key, true)
}

// testGateway is an hourglass gateway in the test process (what `hourglass
// serve` runs) with a budgeted tenant.
func testGateway(t *testing.T, env *mcpEnv, budget int64) (url, key, unlimitedKey string) {
	t.Helper()
	ctx := context.Background()
	up, err := magichour.NewClient(magichour.WithAPIKey(env.emu.APIKey), magichour.WithBaseURL(env.emu.URL))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.Open(ctx, gateway.Options{DB: "sqlite://" + filepath.Join(t.TempDir(), "gw.db"), StorageURL: "file://" + filepath.Join(t.TempDir(), "out"),
		Config: gateway.Config{Upstream: up, Speed: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(srv.Close)
	unlimitedKey = gw.Keys().TenantKey
	_, key, err = gateway.CreateTenant(ctx, gw.Store(), "agent", &budget)
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, key, unlimitedKey
}

func TestMCPGatewayModeStdio(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env := newMCPEnv(t)
	url, budgetKey, key := testGateway(t, env, 10)
	p := &progressCounter{}
	cs := stdioSession(t, ctx, os.Environ(), p, "--gateway", url, "--key", key, "--log-level", "error")
	if ins := cs.InitializeResult().Instructions; !strings.Contains(ins, url) {
		t.Errorf("instructions do not name the gateway: %s", ins)
	}
	scenario(t, ctx, cs, env, p, key, true)

	// Budget refusal: a tenant with 10 credits asks for a 150-credit video.
	before := env.emu.Emulator.Stats().Creates
	bcs := stdioSession(t, ctx, append(os.Environ(), "HOURGLASS_TENANT_KEY="+budgetKey), &progressCounter{}, "--gateway", url, "--log-level", "error")
	res, m := call(t, ctx, bcs, "text_to_video", map[string]any{"end_seconds": 5, "style": map[string]any{"prompt": "expensive"}}, true, false)
	e, _ := m["error"].(map[string]any)
	if e["code"] != "budget_exceeded" || e["credits_remaining"] != float64(10) || !strings.Contains(resultText(res), "Remaining credits: 10") {
		t.Errorf("budget refusal: %s / %v", resultText(res), m)
	}
	if n := env.emu.Emulator.Stats().Creates; n != before {
		t.Errorf("a refused create reached the emulator (%d -> %d)", before, n)
	}
	_, est := call(t, ctx, bcs, "estimate", map[string]any{"tool": "text_to_video", "params": map[string]any{"end_seconds": 5, "style": map[string]any{"prompt": "expensive"}}}, false, false)
	if est["within_budget"] != false || est["credits"] != float64(150) {
		t.Errorf("estimate over budget: %v", est)
	}
}

func TestMCPGatewayModeHTTP(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	env := newMCPEnv(t)
	url, _, key := testGateway(t, env, 10)
	endpoint, printed := startHTTP(t, os.Environ(), "--gateway", url, "--log-level", "error")
	if printed != "" {
		t.Errorf("gateway mode printed a tenant key: %q", printed)
	}
	p := &progressCounter{}
	scenario(t, ctx, httpSession(t, ctx, endpoint, key, p), env, p, key, false)
}

// Standalone state survives a restart: the same tenant (its key kept in
// the data folder) sees its job, and a wait started after the restart
// completes it (the embedded emulator keeps its state there too).
func TestMCPStdioStandaloneRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var envv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, magichour.EnvAPIKey+"=") {
			envv = append(envv, kv)
		}
	}
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--emulator-speed", "200", "--log-level", "error"}
	cs := stdioSession(t, ctx, envv, &progressCounter{}, args...)
	_, vid := call(t, ctx, cs, "text_to_video", map[string]any{"end_seconds": 2, "style": map[string]any{"prompt": "before the restart"}}, false, false)
	if err := cs.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	cs = stdioSession(t, ctx, envv, &progressCounter{}, args...)
	_, list := call(t, ctx, cs, "list_jobs", nil, false, false)
	if jobs, _ := list["jobs"].([]any); len(jobs) != 1 || jobs[0].(map[string]any)["job_id"] != vid["job_id"] {
		t.Fatalf("after a restart list_jobs = %v, want job %v", list, vid["job_id"])
	}
	res, w := call(t, ctx, cs, "wait_for_job", map[string]any{"job_id": vid["job_id"], "wait_seconds": 90}, false, false)
	if w["status"] != "stored" {
		t.Fatalf("wait after a restart: %s", resultText(res))
	}
	// The output's URL stays where it was (the gateway's port is kept).
	key, err := os.ReadFile(filepath.Join(dir, "tenant.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	cs = stdioSession(t, ctx, envv, &progressCounter{}, args...)
	checkMCPOutputs(t, ctx, cs, w, strings.TrimSpace(string(key)))
	_, again := call(t, ctx, cs, "text_to_video", map[string]any{"end_seconds": 2, "style": map[string]any{"prompt": "before the restart"}}, false, false)
	if again["job_id"] != vid["job_id"] {
		t.Errorf("the same create after a restart made job %v, want %v", again["job_id"], vid["job_id"])
	}
}
