package cli_test

// End-to-end tests: they build the hourglass binary once and run it, as a
// user or a script would, against an in-process emulator.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/media"
	"github.com/hourglasshq/hourglass/magichour/webhook"
)

var binary string

// emptyConfig is an XDG_CONFIG_HOME with no hourglass profile, so that no
// test reads the config of the person running it.
var emptyConfig string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hourglass-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hourglass")
	emptyConfig = filepath.Join(dir, "config")
	build := exec.Command("go", "build", "-o", binary, "github.com/hourglasshq/hourglass/cmd/hourglass")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build hourglass:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run is one invocation of the binary.
type run struct {
	stdout, stderr string
	code           int
}

type runOpts struct {
	dir   string
	stdin io.Reader
	env   []string
}

func hourglass(t *testing.T, o runOpts, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = o.dir
	cmd.Stdin = o.stdin
	cmd.Env = append(cleanEnv(), o.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("hourglass %v: %v", args, err)
	}
	return r
}

// cleanEnv is the environment without any real key, with fast polling.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MAGIC_HOUR_") || strings.HasPrefix(kv, "HOURGLASS_") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "MAGIC_HOUR_POLL_INTERVAL=0.05", "XDG_CONFIG_HOME="+emptyConfig)
}

func newEmu(t *testing.T, opts ...emulator.Option) *emulator.Server {
	return emulator.NewServer(t, append([]emulator.Option{emulator.WithSpeed(60)}, opts...)...)
}

func api(s *emulator.Server) []string { return []string{"--base-url", s.URL, "--api-key", s.APIKey} }

func args(a ...[]string) []string {
	var out []string
	for _, x := range a {
		out = append(out, x...)
	}
	return out
}

func writeMedia(t *testing.T, dir, name string) string {
	t.Helper()
	var b []byte
	var err error
	switch filepath.Ext(name) {
	case ".png":
		b, err = media.Image("png", 64, 64, 1)
	case ".mp4":
		b, err = media.Video(64, 64, 1, 1)
	case ".mp3":
		b, err = media.Audio("mp3", 1, 1)
	default:
		b = []byte("not media")
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type jsonResult struct {
	ID             string `json:"id"`
	Tool           string `json:"tool"`
	Kind           string `json:"kind"`
	Status         string `json:"status"`
	CreditsCharged int    `json:"credits_charged"`
	Error          *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Outputs []struct {
		Path string `json:"path"`
		URL  string `json:"url"`
	} `json:"outputs"`
	Downloads []string `json:"downloads"`
}

func parseResult(t *testing.T, r run) jsonResult {
	t.Helper()
	var res jsonResult
	if strings.Count(strings.TrimSpace(r.stdout), "\n") != 0 {
		t.Fatalf("--json printed more than one line:\n%s", r.stdout)
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\nstdout: %s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return res
}

func checkOutputs(t *testing.T, dir string, res jsonResult) {
	t.Helper()
	if len(res.Outputs) == 0 {
		t.Fatalf("no outputs in %+v", res)
	}
	for _, o := range res.Outputs {
		p := o.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		st, err := os.Stat(p)
		if err != nil || st.Size() == 0 {
			t.Fatalf("output %q: %v (size %d)", o.Path, err, sizeOf(st))
		}
		if o.URL == "" {
			t.Fatalf("output %q has no URL", o.Path)
		}
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

func TestE2EGenerateEachKind(t *testing.T) {
	emu := newEmu(t)
	cases := []struct {
		name string
		kind string
		argv []string
	}{
		{"image upscale with a local png", "image", []string{"image", "upscale", "--image", "in.png", "--scale-factor", "2"}},
		{"video from-image with a local png", "video", []string{"video", "from-image", "--image", "in.png", "--end", "5", "--prompt", "waves"}},
		{"video lip-sync with local mp4 and mp3", "video", []string{"video", "lip-sync", "--video", "in.mp4", "--audio", "in.mp3", "--start", "0", "--end", "1"}},
		{"audio clone with a local mp3", "audio", []string{"audio", "clone", "--audio", "in.mp3", "--prompt", "hello there"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeMedia(t, dir, "in.png")
			writeMedia(t, dir, "in.mp4")
			writeMedia(t, dir, "in.mp3")
			r := hourglass(t, runOpts{dir: dir}, args(c.argv, api(emu), []string{"--json"})...)
			if r.code != 0 {
				t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
			}
			res := parseResult(t, r)
			if res.Status != "complete" || res.Kind != c.kind || res.ID == "" || res.Error != nil || len(res.Downloads) == 0 {
				t.Fatalf("result %+v", res)
			}
			checkOutputs(t, dir, res)
			if !strings.Contains(r.stderr, "uploaded") {
				t.Errorf("stderr does not report the upload:\n%s", r.stderr)
			}
		})
	}
}

func TestE2EHumanOutput(t *testing.T) {
	emu := newEmu(t)
	dir := t.TempDir()
	r := hourglass(t, runOpts{dir: dir}, args([]string{"image", "generate", "--prompt", "a cat", "--image-count", "1"}, api(emu))...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !regexp.MustCompile(`(?m)^✓ ai-image-generator \S+ complete`).MatchString(r.stdout) || !strings.Contains(r.stdout, "saved ") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	for _, want := range []string{"created image project", "status: complete"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	// -q: nothing on stderr; the alias (the tool's own name) works; a second
	// run never overwrites the first output.
	r2 := hourglass(t, runOpts{dir: dir}, args([]string{"image", "ai-image-generator", "--prompt", "a cat", "--image-count", "1", "-q"}, api(emu))...)
	if r2.code != 0 || r2.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r2.code, r2.stderr)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("want 2 files after two runs, got %d", len(entries))
	}
}

func TestE2ENoWaitThenWaitThenDownload(t *testing.T) {
	emu := newEmu(t)
	dir := t.TempDir()
	r := hourglass(t, runOpts{dir: dir}, args([]string{"video", "from-text", "--prompt", "a cat", "--end", "5", "--no-wait"}, api(emu))...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	if id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("--no-wait should print only the id, got %q", r.stdout)
	}
	if !strings.Contains(r.stderr, "hourglass video wait "+id) {
		t.Errorf("no resume hint: %s", r.stderr)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("--no-wait downloaded something")
	}

	g := hourglass(t, runOpts{dir: dir}, args([]string{"video", "get", id, "--json"}, api(emu))...)
	if g.code != 0 || parseResult(t, g).ID != id {
		t.Fatalf("get: exit %d %s %s", g.code, g.stdout, g.stderr)
	}

	w := hourglass(t, runOpts{dir: dir}, args([]string{"video", "wait", id, "--json"}, api(emu))...)
	if w.code != 0 {
		t.Fatalf("wait: exit %d: %s", w.code, w.stderr)
	}
	res := parseResult(t, w)
	if res.Status != "complete" || len(res.Downloads) == 0 || res.Outputs[0].Path != "" {
		t.Fatalf("wait result %+v", res)
	}

	d := hourglass(t, runOpts{dir: dir}, args([]string{"video", "download", id, "-o", ".", "--json"}, api(emu))...)
	if d.code != 0 {
		t.Fatalf("download: exit %d: %s", d.code, d.stderr)
	}
	checkOutputs(t, dir, parseResult(t, d))

	// --no-download waits and prints URLs.
	n := hourglass(t, runOpts{dir: dir}, args([]string{"audio", "speech", "--prompt", "hi", "--voice-name", "Morgan Freeman", "--no-download"}, api(emu))...)
	if n.code != 0 || !strings.Contains(n.stdout, "http://") {
		t.Fatalf("--no-download: exit %d\n%s\n%s", n.code, n.stdout, n.stderr)
	}

	x := hourglass(t, runOpts{dir: dir}, args([]string{"video", "delete", id}, api(emu))...)
	if x.code != 0 || !strings.Contains(x.stdout, "deleted video project "+id) {
		t.Fatalf("delete: exit %d %s %s", x.code, x.stdout, x.stderr)
	}
	if g := hourglass(t, runOpts{dir: dir}, args([]string{"video", "get", id}, api(emu))...); g.code != 3 {
		t.Fatalf("get after delete: exit %d, want 3 (404)", g.code)
	}
}

func TestE2EExitCodes(t *testing.T) {
	emu := newEmu(t)
	slow := emulator.NewServer(t, emulator.WithSpeed(1))
	strict := newEmu(t, emulator.WithAPIKeys("mhk_live_good"))
	dir := t.TempDir()
	writeMedia(t, dir, "face.png")
	writeMedia(t, dir, "notes.txt")
	writeMedia(t, dir, "in.mp3")
	ftv := []string{"video", "from-text", "--prompt", "x", "--end", "5"}
	cases := []struct {
		name   string
		argv   []string
		code   int
		stderr string
		noAPI  bool
	}{
		{"job error via noface", args(ftv, []string{"--name", "noface please"}, api(emu)), 1, "", false},
		{"job canceled via cancelme", args(ftv, []string{"--name", "cancelme"}, api(emu)), 1, "", false},
		{"unknown flag", args(ftv, []string{"--bogus"}, api(emu)), 2, "unknown flag: --bogus", true},
		{"not a number", args([]string{"video", "from-text", "--prompt", "x", "--end", "five"}, api(emu)), 2, `"--end"`, true},
		{"missing required flag", args([]string{"video", "from-text", "--prompt", "x"}, api(emu)), 2, "missing required flag --end", true},
		{"bad enum", args(ftv, []string{"--resolution", "8k"}, api(emu)), 2, `invalid --resolution: must be one of "360p"`, true},
		{"bad enum in a long list", args([]string{"audio", "speech", "--prompt", "x", "--voice-name", "Nobody"}, api(emu)), 2, "not one of the", true},
		{"missing file", args([]string{"image", "upscale", "--image", "nope.png", "--scale-factor", "2"}, api(emu)), 2, "--image: nope.png: no such file", true},
		{"unsupported extension", args([]string{"image", "upscale", "--image", "notes.txt", "--scale-factor", "2"}, api(emu)), 2, `unsupported file extension "txt"`, true},
		{"wrong media type", args([]string{"image", "upscale", "--image", "in.mp3", "--scale-factor", "2"}, api(emu)), 2, "audio file", true},
		{"URL without extension is sent (a warning, not a refusal)", args([]string{"image", "upscale", "--image", "https://example.com/pic", "--scale-factor", "2"}, api(emu)), 0, "", false},
		{"no api key", ftv, 2, "--emulator", true},
		{"bad key", args(ftv, []string{"--base-url", strict.URL, "--api-key", "wrong"}), 3, "401", false},
		{"network failure", args(ftv, []string{"--base-url", "http://127.0.0.1:1", "--api-key", "k"}), 3, "connection refused", false},
		{"timeout while waiting", args(ftv, api(slow), []string{"--timeout", "1ms"}), 4, "", false},
		{"timeout after create", args(ftv, api(slow), []string{"--timeout", "1s"}), 4, "hourglass video wait ", false},
		{"unknown command", []string{"video", "nope"}, 2, "unknown command", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := emu.Emulator.Stats().Creates + emu.Emulator.Stats().Uploads
			r := hourglass(t, runOpts{dir: dir}, c.argv...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
			}
			if c.stderr != "" && !strings.Contains(r.stderr, c.stderr) {
				t.Fatalf("stderr lacks %q:\n%s", c.stderr, r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 6 {
				t.Fatalf("error output too long or a stack trace:\n%s", r.stderr)
			}
			if c.noAPI {
				if after := emu.Emulator.Stats().Creates + emu.Emulator.Stats().Uploads; after != before {
					t.Fatalf("a usage error reached the API (%d → %d)", before, after)
				}
			}
		})
	}
	// The missing-flag message shows an example command line.
	r := hourglass(t, runOpts{dir: dir}, args([]string{"video", "lip-sync", "--start", "0", "--end", "1"}, api(emu))...)
	if r.code != 2 || !strings.Contains(r.stderr, "example: hourglass video lip-sync") || !strings.Contains(r.stderr, "--audio") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	// A failed job's JSON carries the error code.
	j := hourglass(t, runOpts{dir: dir}, args([]string{"image", "face-swap", "--source", "face.png", "--target", "face.png", "--name", "noface", "--json"}, api(emu))...)
	res := parseResult(t, j)
	if j.code != 1 || res.Status != "error" || res.Error == nil || res.Error.Code != "no_source_face" {
		t.Fatalf("exit %d, %+v", j.code, res)
	}
}

func TestE2EStdinComposition(t *testing.T) {
	emu := newEmu(t)
	dir := t.TempDir()
	first := hourglass(t, runOpts{dir: dir}, args([]string{"image", "generate", "--prompt", "a cat", "--image-count", "1", "--json"}, api(emu))...)
	if first.code != 0 {
		t.Fatalf("exit %d: %s", first.code, first.stderr)
	}
	second := hourglass(t, runOpts{dir: dir, stdin: strings.NewReader(first.stdout)},
		args([]string{"video", "from-image", "--image", "-", "--end", "5", "--json"}, api(emu))...)
	if second.code != 0 {
		t.Fatalf("exit %d: %s", second.code, second.stderr)
	}
	if res := parseResult(t, second); res.Kind != "video" || res.Status != "complete" {
		t.Fatalf("%+v", res)
	}
	if !strings.Contains(second.stderr, "uploading") {
		t.Errorf("the local output of the first command should have been uploaded:\n%s", second.stderr)
	}
	// A plain path line works too, and a URL is passed through.
	png := writeMedia(t, dir, "x.png")
	third := hourglass(t, runOpts{dir: dir, stdin: strings.NewReader(png + "\n")},
		args([]string{"image", "colorize", "--image", "-", "--no-download", "-q"}, api(emu))...)
	if third.code != 0 {
		t.Fatalf("exit %d: %s", third.code, third.stderr)
	}
	// Empty stdin is a usage error.
	empty := hourglass(t, runOpts{dir: dir, stdin: strings.NewReader("")},
		args([]string{"image", "colorize", "--image", "-"}, api(emu))...)
	if empty.code != 2 || !strings.Contains(empty.stderr, "stdin is empty") {
		t.Fatalf("exit %d: %s", empty.code, empty.stderr)
	}
}

func TestE2EEmulatorFlag(t *testing.T) {
	dir := t.TempDir()
	r := hourglass(t, runOpts{dir: dir}, "image", "generate", "--emulator", "--prompt", "a cat", "--image-count", "1", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	res := parseResult(t, r)
	checkOutputs(t, dir, res)
	if !strings.Contains(r.stdout, `"emulator":true`) || !strings.Contains(r.stderr, "placeholders") {
		t.Fatalf("the emulator run must say so:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
}

func TestE2EFilesAndFaces(t *testing.T) {
	emu := newEmu(t)
	dir := t.TempDir()
	writeMedia(t, dir, "a.png")
	writeMedia(t, dir, "b.mp3")
	r := hourglass(t, runOpts{dir: dir}, args([]string{"files", "upload", "a.png", "b.mp3"}, api(emu))...)
	lines := strings.Fields(r.stdout)
	if r.code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "api-assets/") {
		t.Fatalf("exit %d: %q %s", r.code, r.stdout, r.stderr)
	}
	// The uploaded path is accepted as is by a tool.
	u := hourglass(t, runOpts{dir: dir}, args([]string{"image", "colorize", "--image", lines[0], "--json"}, api(emu))...)
	if u.code != 0 {
		t.Fatalf("exit %d: %s", u.code, u.stderr)
	}
	f := hourglass(t, runOpts{dir: dir}, args([]string{"faces", "detect", "a.png", "--json"}, api(emu))...)
	var fd struct {
		Status string `json:"status"`
		Faces  []struct {
			Path string `json:"path"`
		} `json:"faces"`
	}
	if f.code != 0 || json.Unmarshal([]byte(f.stdout), &fd) != nil || fd.Status != "complete" || len(fd.Faces) == 0 {
		t.Fatalf("exit %d: %s %s", f.code, f.stdout, f.stderr)
	}
	// Face mappings: ORIGINAL=NEW, the new face a local file.
	m := hourglass(t, runOpts{dir: dir}, args([]string{"image", "face-swap", "--target", "a.png", "--face-mapping", fd.Faces[0].Path + "=a.png", "--json"}, api(emu))...)
	if m.code != 0 {
		t.Fatalf("face mapping: exit %d: %s", m.code, m.stderr)
	}
}

// syncBuf is a goroutine-safe buffer for a running process's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestE2EWebhookListen(t *testing.T) {
	const secret = "whsec_e2e"
	// The app the listener forwards to: it verifies what it gets.
	var fwdMu sync.Mutex
	var forwarded []string
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header, body, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fwdMu.Lock()
		forwarded = append(forwarded, string(body))
		fwdMu.Unlock()
	}))
	defer app.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "webhook", "listen", "--secret", secret, "--addr", "127.0.0.1:0", "--forward-to", app.URL)
	cmd.Env = cleanEnv()
	var out syncBuf
	cmd.Stdout = &out
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(errPipe)
	var url string
	re := regexp.MustCompile(`on (http://\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		t.Fatal("the listener did not say where it listens")
	}
	go func() { _, _ = io.Copy(io.Discard, errPipe) }()

	emu := newEmu(t, emulator.WithWebhookURL(url), emulator.WithWebhookSecret(secret))
	r := hourglass(t, runOpts{dir: t.TempDir()}, args([]string{"image", "generate", "--prompt", "a cat", "--image-count", "1", "--no-download", "-q"}, api(emu))...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	waitFor(t, "the image.completed line", 10*time.Second, func() bool { return strings.Contains(out.String(), "image.completed") })
	line := out.String()
	if !regexp.MustCompile(`image\.completed\s+\S+\s+complete\s+1 output`).MatchString(line) || !strings.Contains(line, "forwarded: 200") {
		t.Fatalf("event line:\n%s", line)
	}
	waitFor(t, "the forwarded event", 5*time.Second, func() bool {
		fwdMu.Lock()
		defer fwdMu.Unlock()
		return len(forwarded) > 0 && strings.Contains(forwarded[len(forwarded)-1], `"image.completed"`)
	})

	// A forged delivery: 401 and a line saying so.
	body := []byte(`{"type":"image.completed","payload":{"id":"forged","status":"complete"}}`)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	for k, v := range webhook.Headers("not-the-secret", time.Now(), body) {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged delivery answered %d", resp.StatusCode)
	}
	waitFor(t, "the REJECTED line", 5*time.Second, func() bool { return strings.Contains(out.String(), "REJECTED 401") })
	if strings.Contains(out.String(), "forged  complete") {
		t.Fatal("the forged event was printed as an event")
	}
}

func TestE2EInterrupt(t *testing.T) {
	slow := emulator.NewServer(t, emulator.WithSpeed(1))
	cmd := exec.Command(binary, args([]string{"video", "from-text", "--prompt", "x", "--end", "5"}, api(slow))...)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	var out, errb syncBuf
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job to be created", 20*time.Second, func() bool { return strings.Contains(errb.String(), "status: queued") })
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 4 {
		t.Fatalf("exit %v, want 4\n%s", err, errb.String())
	}
	if !regexp.MustCompile(`interrupted while waiting for video project (\S+) .*\nResume with: hourglass video wait \S+`).MatchString(errb.String()) {
		t.Fatalf("no resume hint:\n%s", errb.String())
	}
	if strings.Contains(errb.String(), "goroutine") {
		t.Fatalf("stack trace:\n%s", errb.String())
	}
}
