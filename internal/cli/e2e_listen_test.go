package cli_test

import (
	"bufio"
	"encoding/json"
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

	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// received is what a local test receiver got: verified deliveries only.
type received struct {
	mu     sync.Mutex
	bodies []string
	types  []string // Hourglass-Event-Type for callbacks, the body's type for webhooks
	bad    int
}

func (rc *received) handler(secret string, answer int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if err := webhook.Verify(secret, r.Header, body, time.Now()); err != nil {
			rc.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var v struct{ Type string }
		_ = json.Unmarshal(body, &v)
		rc.bodies = append(rc.bodies, string(body))
		rc.types = append(rc.types, v.Type)
		w.WriteHeader(answer)
		_, _ = io.WriteString(w, `{"ok":true}`)
	}
}

func (rc *received) has(typ string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, t := range rc.types {
		if t == typ {
			return true
		}
	}
	return false
}

// startProcess runs the binary in the background, returns a scanner-fed
// buffer of its stdout and stderr; it is interrupted at the end of the test.
func startProcess(t *testing.T, env []string, argv ...string) (*syncBuf, *syncBuf) {
	t.Helper()
	cmd := exec.Command(binary, argv...)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Dir = t.TempDir()
	var out, errb syncBuf
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return &out, &errb
}

// TestE2EListenRelaysGatewayEvents: a job submitted to a gateway running in
// another process reaches a local receiver through `hourglass listen`: its
// Magic Hour webhooks and its tenant callback, re-signed with the local
// secret and verified by the receiver.
func TestE2EListenRelaysGatewayEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, errb := startProcess(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", "sqlite://"+filepath.Join(dir, "hg.db"),
		"--storage", "file://"+filepath.Join(dir, "outputs"), "--emulator-speed", "200", "--workers", "2")
	waitFor(t, "the gateway's banner", 30*time.Second, func() bool {
		return strings.Contains(out.String(), "listening on ") && strings.Contains(out.String(), "tenant key: ")
	})
	banner := out.String()
	gw := strings.Fields(strings.SplitN(banner, "listening on ", 2)[1])[0]
	keyOf := func(label string) string {
		m := regexp.MustCompile(label + `: (\S+)`).FindStringSubmatch(banner)
		if m == nil {
			t.Fatalf("no %s in the banner:\n%s\n%s", label, banner, errb.String())
		}
		return m[1]
	}
	tenantKey := keyOf("tenant key")

	const local = "whsec_local_app"
	var rc received
	app := httptest.NewServer(rc.handler(local, http.StatusOK))
	defer app.Close()
	cfg := t.TempDir()
	lout, lerr := startProcess(t, []string{"XDG_CONFIG_HOME=" + cfg}, "listen", "--gateway", gw, "--key", tenantKey, "--forward-to", app.URL, "--secret", local)
	waitFor(t, "listen to connect", 20*time.Second, func() bool { return strings.Contains(lerr.String(), "Ready! Connected") })
	if !strings.Contains(lerr.String(), "tenant ten_") {
		t.Errorf("listen does not say whose events it gets: %s", lerr.String())
	}

	body := `{"tool":"ai-image-generator","params":{"image_count":1,"style":{"prompt":"a lighthouse"}},"idempotency_key":"listen-1"}`
	req, _ := http.NewRequest(http.MethodPost, gw+"/api/jobs", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tenantKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("submit: %s", resp.Status)
	}
	waitFor(t, "the webhook and the callback on the local receiver", 30*time.Second, func() bool {
		return rc.has("image.completed") && rc.has("job.stored")
	})
	rc.mu.Lock()
	bad := rc.bad
	rc.mu.Unlock()
	if bad != 0 {
		t.Fatalf("%d deliveries failed verification", bad)
	}
	waitFor(t, "the relay lines", 5*time.Second, func() bool {
		s := lout.String()
		return regexp.MustCompile(`webhook\s+image\.completed\s+job_\S+ \(\S+\)\s+→ 200 OK\s+\[dlv_\S+\]`).MatchString(s) &&
			regexp.MustCompile(`callback\s+job\.stored\s+job_\S+\s+→ 200 OK`).MatchString(s)
	})

	// The relayed deliveries are in the log: resend one, re-signed, to
	// another receiver.
	m := regexp.MustCompile(`callback\s+job\.stored.*\[(dlv_\S+)\]`).FindStringSubmatch(lout.String())
	var rc2 received
	app2 := httptest.NewServer(rc2.handler(local, http.StatusOK))
	defer app2.Close()
	r := hourglass(t, runOpts{env: []string{"XDG_CONFIG_HOME=" + cfg}}, "webhook", "resend", m[1], "--to", app2.URL, "--secret", local)
	if r.code != 0 || !rc2.has("job.stored") || !strings.Contains(r.stdout, "200 OK") {
		t.Fatalf("resend: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestE2EListenBadInput(t *testing.T) {
	t.Parallel()
	cases := []struct {
		argv []string
		code int
		want string
	}{
		{[]string{"listen", "--gateway", "http://127.0.0.1:1", "--key", "k", "--forward-to", "http://127.0.0.1:2/", "--secret", "s"}, 3, "cannot reach the gateway at http://127.0.0.1:1"},
		{[]string{"listen", "--key", "k", "--forward-to", "http://127.0.0.1:2/", "--secret", "s"}, 2, "no gateway"},
		{[]string{"listen", "--gateway", "http://127.0.0.1:1", "--forward-to", "http://127.0.0.1:2/", "--secret", "s"}, 2, "no gateway key"},
		{[]string{"listen", "--gateway", "http://127.0.0.1:1", "--key", "k", "--secret", "s"}, 2, "--forward-to"},
	}
	for _, c := range cases {
		r := hourglass(t, runOpts{}, c.argv...)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.argv, r.code, r.stderr, c.code, c.want)
		}
	}
	// A server that refuses the key: exit 3, says so.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"code":"unauthorized","message":"invalid API key"}}`)
	}))
	defer refuse.Close()
	r := hourglass(t, runOpts{}, "listen", "--gateway", refuse.URL, "--key", "nope", "--forward-to", "http://127.0.0.1:2/", "--secret", "s")
	if r.code != 3 || !strings.Contains(r.stderr, "refused the key") {
		t.Fatalf("refused key: exit %d %s", r.code, r.stderr)
	}
}

// TestE2EWebhookTriggerListenResend: trigger sends a signed sample event
// to webhook listen, which answers what the app answered (502 when the
// app is down) and logs it; resend replays the logged delivery.
func TestE2EWebhookTriggerListenResend(t *testing.T) {
	t.Parallel()
	const secret = "whsec_trigger"
	cfg := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + cfg}
	var rc received
	app := httptest.NewServer(rc.handler(secret, http.StatusAccepted))
	defer app.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	listenOn := func(fwd string) string {
		out, errb := startProcess(t, env, "webhook", "listen", "--secret", secret, "--addr", "127.0.0.1:0", "--forward-to", fwd)
		waitFor(t, "the listener", 15*time.Second, func() bool { return strings.Contains(errb.String(), "Listening") })
		_ = out
		return regexp.MustCompile(`on (http://\S+)`).FindStringSubmatch(errb.String())[1]
	}
	up := listenOn(app.URL)
	r := hourglass(t, runOpts{env: env}, "webhook", "trigger", "video.completed", "--to", up, "--secret", secret)
	if r.code != 0 || !strings.Contains(r.stdout, "202 Accepted") || !rc.has("video.completed") {
		t.Fatalf("trigger via listen: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Forward target down: the sender is answered 502 and trigger says so.
	dn := listenOn(downURL)
	r = hourglass(t, runOpts{env: env}, "webhook", "trigger", "image.errored", "--to", dn, "--secret", secret)
	if r.code != 3 || !strings.Contains(r.stdout, "502") {
		t.Fatalf("trigger via a listener whose target is down: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A wrong secret: listen answers 401.
	r = hourglass(t, runOpts{env: env}, "webhook", "trigger", "audio.started", "--to", up, "--secret", "not-it")
	if r.code != 3 || !strings.Contains(r.stdout, "401") {
		t.Fatalf("forged trigger: exit %d %s", r.code, r.stdout)
	}
	if r := hourglass(t, runOpts{env: env}, "webhook", "trigger", "video.complete", "--secret", secret); r.code != 2 || !strings.Contains(r.stderr, "did you mean video.completed") {
		t.Fatalf("bad event: %d %s", r.code, r.stderr)
	}
	// The listener logged the failed delivery; resend it to the app.
	l := hourglass(t, runOpts{env: env}, "webhook", "deliveries", "--json")
	var failed string
	sc := bufio.NewScanner(strings.NewReader(l.stdout))
	for sc.Scan() {
		var d struct {
			ID, Type, Source, Error string
		}
		if json.Unmarshal(sc.Bytes(), &d) == nil && d.Type == "image.errored" && d.Source == "webhook listen" && d.Error != "" {
			failed = d.ID
		}
	}
	if failed == "" {
		t.Fatalf("the failed delivery is not in the log:\n%s", l.stdout)
	}
	r = hourglass(t, runOpts{env: env}, "webhook", "resend", failed, "--to", app.URL, "--secret", secret)
	if r.code != 0 || !rc.has("image.errored") {
		t.Fatalf("resend: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := hourglass(t, runOpts{env: env}, "webhook", "resend", "dlv_nope", "--secret", secret); r.code != 2 || !strings.Contains(r.stderr, "no delivery dlv_nope") {
		t.Fatalf("unknown delivery: %d %s", r.code, r.stderr)
	}
	st, err := os.Stat(filepath.Join(cfg, "hourglass", "deliveries.jsonl"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("delivery log: %v %v", err, st)
	}
}
