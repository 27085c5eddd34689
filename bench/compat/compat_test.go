// Package compat proves that the official magic-hour Node client works
// against hourglass unchanged but for its base URL and key: against the
// emulator (compat.js) and through the gateway (dropin.js).
package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/internal/media"
)

// TestOfficialNodeClient runs compat.js (the npm package magic-hour@0.43.1)
// against the in-process emulator. .ci/run installs the package; elsewhere
// the test skips with a message.
func TestOfficialNodeClient(t *testing.T) {
	node := needNode(t)
	srv := emulator.NewServer(t, emulator.WithSpeed(5000))
	runChecks(t, node, "compat.js", srv.URL, srv.APIKey, 3*time.Minute)
}

// needNode returns node's path, or skips when node or the npm package is
// missing.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: skipping the official Node client check")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "magic-hour", "package.json")); err != nil {
		t.Skip("magic-hour npm package not installed: run `npm ci` in bench/compat (.ci/run does)")
	}
	return node
}

type result struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// runChecks prepares the inputs lib.js reads (the catalog's example body
// of every tool, a local PNG), runs script against baseURL with key, and
// fails the test for every failed check or when fewer than 30 pass.
func runChecks(t *testing.T, node, script, baseURL, key string, timeout time.Duration) {
	t.Helper()
	dir := t.TempDir()
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

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = append(os.Environ(),
		"MH_BASE_URL="+baseURL, "MH_KEY="+key,
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
			continue // the client's own log lines
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Errorf("unparseable line from %s: %s", script, sc.Text())
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
	t.Logf("%s: %d passed, %d failed", script, passed, failed)
	if runErr != nil && failed == 0 {
		t.Fatalf("%s failed: %v\n%s", script, runErr, stderr.String())
	}
	if passed < 30 {
		t.Fatalf("only %d checks passed; stderr:\n%s", passed, stderr.String())
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	must(t, err)
	must(t, os.WriteFile(path, b, 0o644))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
