package compat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/media"
	"github.com/hourglasshq/hourglass/magichour"
)

// TestOfficialMCPClient runs mcp.js: the official TypeScript MCP client
// (npm @modelcontextprotocol/sdk) drives `hourglass mcp` (built here) over
// stdio and over streamable HTTP, standalone, with the in-process emulator
// as the upstream. Skips without node or the npm package.
func TestOfficialMCPClient(t *testing.T) {
	node := needNode(t)
	if _, err := os.Stat(filepath.Join("node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		t.Skip("@modelcontextprotocol/sdk npm package not installed: run `npm ci` in bench/compat (.ci/run does)")
	}
	bin := filepath.Join(t.TempDir(), "hourglass")
	build := exec.Command("go", "build", "-o", bin, "github.com/hourglasshq/hourglass/cmd/hourglass")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	png, err := media.Image("png", 40, 40, 3)
	must(t, err)
	input := filepath.Join(t.TempDir(), "input.png")
	must(t, os.WriteFile(input, png, 0o644))

	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			clock := &freezeClock{}
			emu := emulator.NewServer(t, emulator.WithSpeed(1000), emulator.WithClock(clock))
			ctl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/freeze":
					clock.Freeze()
				case "/resume":
					clock.Resume(10 * time.Minute)
				default:
					http.NotFound(w, r)
				}
			}))
			defer ctl.Close()
			args := []string{"mcp", "--data-dir", t.TempDir(), "--base-url", emu.URL, "--upstream-speed", "1000", "--log-level", "error"}
			env := append(os.Environ(), magichour.EnvAPIKey+"="+emu.APIKey, "MH_EMU_URL="+emu.URL, "HG_CONTROL="+ctl.URL,
				"HG_INPUT="+input, "HG_MODE="+mode)
			if mode == "stdio" {
				a, _ := json.Marshal(args)
				env = append(env, "HG_BIN="+bin, "HG_ARGS="+string(a))
			} else {
				url, key := startMCPHTTP(t, bin, env, append(args, "--http", "127.0.0.1:0")...)
				env = append(env, "HG_MCP_URL="+url, "HG_MCP_KEY="+key)
			}
			runNodeChecks(t, node, "mcp.js", env, 12, 4*time.Minute)
		})
	}
}

// startMCPHTTP starts `hourglass mcp --http` and returns the endpoint and
// the tenant key it printed.
func startMCPHTTP(t *testing.T, bin string, env []string, args ...string) (url, key string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, ok := strings.CutPrefix(line, "tenant key:"); ok {
			key = strings.TrimSpace(k)
		}
		if rest, ok := strings.CutPrefix(line, "hourglass mcp listening on "); ok {
			url, _, _ = strings.Cut(rest, " ")
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if url == "" || key == "" {
		t.Fatalf("hourglass mcp --http printed no address or key (url %q)", url)
	}
	return url, key
}

// runNodeChecks runs script with env and fails the test for every failed
// check line or when fewer than min pass.
func runNodeChecks(t *testing.T, node, script string, env []string, min int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, runErr := cmd.Output()
	var passed, failed int
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	for sc.Scan() {
		var r result
		if !bytes.HasPrefix(sc.Bytes(), []byte("{")) || json.Unmarshal(sc.Bytes(), &r) != nil {
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
	if runErr != nil && failed == 0 {
		t.Fatalf("%s failed: %v\n%s", script, runErr, stderr.String())
	}
	if passed < min {
		t.Fatalf("%s: only %d checks passed (want %d); stderr:\n%s", script, passed, min, stderr.String())
	}
}

// freezeClock is real time plus an offset that the script can freeze (no
// job advances, so a wait must time out) and resume later.
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
