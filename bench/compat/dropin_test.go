package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/gateway"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/internal/media"
	"github.com/hourglasshq/hourglass/magichour"
)

// TestOfficialNodeClientThroughGateway runs dropin.js: the npm magic-hour
// client, pointed at a gateway (SQLite, backed by the in-process emulator
// with its webhooks wired to the gateway) with a tenant key, creates jobs
// of every tool, polls them to complete and downloads the gateway's
// stored copies. Skips without node or bench/compat/node_modules.
func TestOfficialNodeClientThroughGateway(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: skipping the drop-in check with the official Node client")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "magic-hour", "package.json")); err != nil {
		t.Skip("magic-hour npm package not installed: run `npm ci` in bench/compat (.ci/run does)")
	}
	ctx := context.Background()
	dir := t.TempDir()
	front := httptest.NewUnstartedServer(nil)
	front.Start()
	defer front.Close()
	const secret = "whsec_dropin"
	const speed = 5000
	emu := emulator.NewServer(t, emulator.WithSpeed(speed), emulator.WithOutputSize(16<<10),
		emulator.WithWebhookURL(front.URL+"/hooks/magichour"), emulator.WithWebhookSecret(secret))
	up, err := magichour.NewClient(magichour.WithAPIKey(emu.APIKey), magichour.WithBaseURL(emu.URL))
	must(t, err)
	store, err := gateway.OpenStore(ctx, "sqlite://"+filepath.Join(dir, "gw.db"))
	must(t, err)
	defer store.Close()
	storage, err := gateway.NewFileStorage(filepath.Join(dir, "outputs"))
	must(t, err)
	gw, err := gateway.New(gateway.Config{Store: store, Storage: storage, Upstream: up, WebhookSecrets: []string{secret},
		Workers: 8, Speed: speed, IdlePoll: 50 * time.Millisecond, MinPollInterval: 20 * time.Millisecond,
		MaxPollInterval: 200 * time.Millisecond, RetryBase: 20 * time.Millisecond, UpstreamRPS: -1})
	must(t, err)
	defer gw.Close()
	front.Config.Handler = gw.Handler()
	_, tenantKey, _, err := gateway.Bootstrap(ctx, store)
	must(t, err)

	type example struct {
		Kind string         `json:"kind"`
		Body map[string]any `json:"body"`
	}
	tools := map[string]example{}
	for _, op := range catalog.Creates() {
		tools[op.Name] = example{Kind: string(op.Kind), Body: op.ExampleBody()}
	}
	writeJSON(t, filepath.Join(dir, "examples.json"), map[string]any{"tools": tools})
	inputs := filepath.Join(dir, "inputs")
	must(t, os.MkdirAll(inputs, 0o755))
	png, err := media.Image("png", 64, 64, 1)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(inputs, "input.png"), png, 0o644))

	cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, node, "dropin.js")
	cmd.Env = append(os.Environ(),
		"MH_BASE_URL="+front.URL, "MH_KEY="+tenantKey,
		"MH_EXAMPLES="+filepath.Join(dir, "examples.json"),
		"MH_INPUTS="+inputs, "MH_OUT="+filepath.Join(dir, "out"),
		"MAGIC_HOUR_POLL_INTERVAL=0.02",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, runErr := cmd.Output()
	var passed, failed int
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		if !bytes.HasPrefix(sc.Bytes(), []byte("{")) {
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("unparseable line from dropin.js: %s", sc.Text())
			continue
		}
		if r.OK {
			passed++
			t.Logf("ok   %s: %s", r.Check, r.Detail)
		} else {
			failed++
			t.Errorf("FAIL %s: %s", r.Check, r.Detail)
		}
	}
	t.Logf("drop-in checks: %d passed, %d failed", passed, failed)
	if runErr != nil && failed == 0 {
		t.Fatalf("dropin.js failed: %v\n%s", runErr, stderr.String())
	}
	if passed < 30 {
		t.Fatalf("only %d checks passed; stderr:\n%s", passed, stderr.String())
	}
}
