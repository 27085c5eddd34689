package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runBatchCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	root := NewRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"batch", "run"}, args...))
	err := root.Execute()
	if err != nil {
		Report(&errb, err)
	}
	return ExitCode(err), out.String(), errb.String()
}

func TestBatchRunCommand(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	in := filepath.Join(dir, "shots.jsonl")
	lines := `{"tool":"ai-image-generator","name":"a","params":{"image_count":1,"style":{"prompt":"a"}}}
{"tool":"image generate","params":{}}
{"tool":"ai-image-generator","name":"c","params":{"image_count":1,"style":{"prompt":"c"}}}
`
	if err := os.WriteFile(in, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runBatchCLI(t, in, "--emulator", "-q")
	if code != ExitUsage || !strings.Contains(stderr, "line 2: tool:") || !strings.Contains(stderr, "nothing was created") {
		t.Fatalf("invalid file: exit %d\n%s", code, stderr)
	}
	out := filepath.Join(dir, "out")
	code, stdout, stderr := runBatchCLI(t, in, "--emulator", "--skip-invalid", "-o", out+"/{name}-{n}.{ext}", "--json", "--tool-concurrency", "ai-image-generator=1")
	if code != ExitJob { // line 2 stays invalid
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var sum struct {
		Manifest string         `json:"manifest"`
		Lines    int            `json:"lines"`
		Counts   map[string]int `json:"counts"`
	}
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil || sum.Lines != 3 || sum.Counts["complete"] != 2 || sum.Counts["invalid"] != 1 {
		t.Fatalf("summary %q: %v", stdout, err)
	}
	if sum.Manifest != filepath.Join(dir, "shots.manifest.jsonl") {
		t.Fatalf("manifest at %s", sum.Manifest)
	}
	for _, f := range []string{"a-0.png", "c-0.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Fatalf("output: %v (stderr %s)", err, stderr)
		}
	}
	if !strings.Contains(stderr, "total") || !strings.Contains(stderr, "emulator") {
		t.Fatalf("no summary table or emulator note:\n%s", stderr)
	}
	code, _, stderr = runBatchCLI(t, in, "--emulator", "--dry-run", "--skip-invalid")
	if code != ExitOK || !strings.Contains(stderr, "nothing was created") {
		t.Fatalf("dry run: exit %d\n%s", code, stderr)
	}
	for _, bad := range [][]string{{"--tool-concurrency", "x"}, {"--concurrency", "0"}, {"--names", "{nope}"}} {
		if code, _, stderr := runBatchCLI(t, append([]string{in, "--emulator"}, bad...)...); code != ExitUsage {
			t.Errorf("%v: exit %d %s", bad, code, stderr)
		}
	}
	if code, _, _ := runBatchCLI(t, filepath.Join(dir, "missing.jsonl")); code != ExitUsage {
		t.Errorf("missing file: exit %d", code)
	}
}

func TestSplitOutput(t *testing.T) {
	for in, want := range map[string][2]string{
		"out":                   {"out", ""},
		"out/{line}.{ext}":      {"out", "{line}.{ext}"},
		"a/b/{name}/{n}.{ext}":  {"a/b", "{name}/{n}.{ext}"},
		"{key}.{ext}":           {".", "{key}.{ext}"},
		"/abs/dir/{line}.{ext}": {"/abs/dir", "{line}.{ext}"},
	} {
		d, tm := splitOutput(in)
		if d != filepath.FromSlash(want[0]) || tm != want[1] {
			t.Errorf("splitOutput(%q) = %q, %q; want %q", in, d, tm, want)
		}
	}
}
