package cli_test

// Tests of issue 14's CLI paper cuts, each as a user meets it.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/emulator"
)

func TestE2EOutputFolderIsCreated(t *testing.T) {
	t.Parallel()
	emu := newEmu(t)
	dir := t.TempDir()
	r := hourglass(t, runOpts{dir: dir}, args([]string{"image", "generate", "--prompt", "a cat", "--image-count", "1", "-o", "out/nested", "--json"}, api(emu))...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	res := parseResult(t, r)
	checkOutputs(t, dir, res)
	if !strings.HasPrefix(res.Outputs[0].Path, filepath.Join("out", "nested")+string(filepath.Separator)) {
		t.Fatalf("saved at %q, want under out/nested", res.Outputs[0].Path)
	}
	// download ID -o new-folder too.
	r = hourglass(t, runOpts{dir: dir}, args([]string{"image", "download", res.ID, "-o", "again", "--json"}, api(emu))...)
	if r.code != 0 {
		t.Fatalf("download exit %d: %s", r.code, r.stderr)
	}
	checkOutputs(t, dir, parseResult(t, r))
}

func TestE2EMissingObjectNamesItsFlags(t *testing.T) {
	t.Parallel()
	r := hourglass(t, runOpts{dir: t.TempDir()}, "image", "generate", "--image-count", "1", "--emulator")
	if r.code != 2 || !strings.Contains(r.stderr, "missing required flag --prompt") || strings.Contains(r.stderr, "flag style") {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
}

func TestE2EDidYouMean(t *testing.T) {
	t.Parallel()
	cases := []struct {
		argv []string
		want string
	}{
		{[]string{"image", "generate", "--promt", "x"}, "did you mean --prompt?"},
		{[]string{"image", "genrate"}, `did you mean "generate"?`},
		{[]string{"genrate"}, `did you mean "image generate"?`},
		{[]string{"vidoe", "wait", "x"}, `did you mean "video"?`},
		{[]string{"config", "set", "api_kye", "x"}, "did you mean api_key?"},
	}
	for _, c := range cases {
		r := hourglass(t, runOpts{dir: t.TempDir()}, c.argv...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.argv, r.code, r.stderr, c.want)
		}
	}
}

// TestE2EJSONErrors: with --json every failure is exactly one JSON object
// on stdout, whatever stage it failed at.
func TestE2EJSONErrors(t *testing.T) {
	t.Parallel()
	strict := newEmu(t, emulator.WithAPIKeys("mhk_live_good"))
	cases := []struct {
		name string
		argv []string
		code int
		ecod string
	}{
		{"unknown flag", []string{"image", "generate", "--promt", "x", "--json"}, 2, "usage_error"},
		{"unknown command", []string{"image", "genrate", "--json"}, 2, "usage_error"},
		{"no key", []string{"image", "generate", "--prompt", "x", "--image-count", "1", "--json"}, 2, "usage_error"},
		{"bad key", []string{"image", "generate", "--prompt", "x", "--image-count", "1", "--json", "--base-url", strict.URL, "--api-key", "nope"}, 3, "unauthorized"},
		{"unreachable", []string{"image", "get", "cm1", "--json", "--base-url", "http://127.0.0.1:1", "--api-key", "k"}, 3, "api_error"},
		{"not found", []string{"video", "get", "cm-none", "--json", "--base-url", strict.URL, "--api-key", "mhk_live_good"}, 3, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := hourglass(t, runOpts{dir: t.TempDir()}, c.argv...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, c.code, r.stderr)
			}
			out := strings.TrimSpace(r.stdout)
			if strings.Count(out, "\n") != 0 {
				t.Fatalf("more than one line on stdout:\n%s", out)
			}
			var v struct {
				Error *struct {
					Code, Message string
				} `json:"error"`
				ExitCode int `json:"exit_code"`
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil || v.Error == nil {
				t.Fatalf("stdout is not a JSON error object (%v): %q", err, out)
			}
			if v.Error.Code != c.ecod || v.ExitCode != c.code || v.Error.Message == "" {
				t.Fatalf("got %+v %+v", v, *v.Error)
			}
			if strings.Contains(v.Error.Message, "WithAPIKey") || strings.Contains(r.stderr, "WithAPIKey") {
				t.Fatalf("SDK words in a CLI error: %s / %s", v.Error.Message, r.stderr)
			}
		})
	}
}

func TestE2EResumeHintsCarryConnectionFlags(t *testing.T) {
	t.Parallel()
	emu := newEmu(t)
	r := hourglass(t, runOpts{dir: t.TempDir()}, args([]string{"video", "from-text", "--prompt", "x", "--end", "5", "--no-wait"}, api(emu))...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	want := "hourglass video wait " + id + " --base-url " + emu.URL + " --api-key …"
	if !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, emu.APIKey) {
		t.Fatalf("hint lacks %q or shows the key:\n%s", want, r.stderr)
	}
	// With a profile the hint names the profile, and pasting it works.
	cfg := t.TempDir()
	envs := []string{"XDG_CONFIG_HOME=" + cfg}
	for _, kv := range [][]string{{"base_url", emu.URL}, {"api_key", emu.APIKey}} {
		if r := hourglass(t, runOpts{env: envs}, "config", "set", "--profile", "emu", kv[0], kv[1]); r.code != 0 {
			t.Fatalf("config set: %d %s", r.code, r.stderr)
		}
	}
	r = hourglass(t, runOpts{dir: t.TempDir(), env: envs}, "video", "from-text", "--prompt", "x", "--end", "5", "--no-wait", "--profile", "emu")

	m := regexp.MustCompile(`follow it with: (hourglass video wait \S+ --profile emu)\n`).FindStringSubmatch(r.stderr)
	if r.code != 0 || m == nil || strings.Contains(r.stderr, emu.APIKey) {
		t.Fatalf("exit %d, no profile hint:\n%s", r.code, r.stderr)
	}
	w := hourglass(t, runOpts{dir: t.TempDir(), env: envs}, append(strings.Fields(m[1])[1:], "--json")...)
	if w.code != 0 || parseResult(t, w).Status != "complete" {
		t.Fatalf("pasted hint: exit %d\n%s\n%s", w.code, w.stdout, w.stderr)
	}
}

func TestE2EGlobalFlagsOnlyWhereUsed(t *testing.T) {
	t.Parallel()
	for _, argv := range [][]string{
		{"serve", "--json"}, {"serve", "--emulator"}, {"emulate", "--timeout", "1s"}, {"webhook", "listen", "--emulator"},
		{"webhook", "listen", "--timeout", "1s"},
	} {
		r := hourglass(t, runOpts{dir: t.TempDir()}, argv...)
		if r.code != 2 || !strings.Contains(r.stderr, "unknown flag") {
			t.Errorf("%v: exit %d: %s", argv, r.code, r.stderr)
		}
	}
	for _, argv := range [][]string{{"serve", "--help"}, {"emulate", "--help"}, {"webhook", "listen", "--help"}} {
		r := hourglass(t, runOpts{}, argv...)
		for _, f := range []string{"--emulator", "--timeout"} {
			if strings.Contains(r.stdout, f+" ") {
				t.Errorf("%v lists %s:\n%s", argv, f, r.stdout)
			}
		}
		// The value column: every flag line is "--name type   usage",
		// no word of the usage taken as the type.
		for _, line := range strings.Split(r.stdout, "\n") {
			if strings.Contains(line, "--upstream-speed") && !strings.Contains(line, "--upstream-speed float") {
				t.Errorf("mangled value column: %q", line)
			}
		}
	}
	r := hourglass(t, runOpts{}, "image", "generate", "--help")
	for _, f := range []string{"--api-key", "--base-url", "--profile", "--emulator", "--timeout", "--json", "--overwrite"} {
		if !strings.Contains(r.stdout, f) {
			t.Errorf("image generate --help lacks %s", f)
		}
	}
}

func TestE2EVersion(t *testing.T) {
	t.Parallel()
	a := hourglass(t, runOpts{}, "version")
	b := hourglass(t, runOpts{}, "--version")
	if a.code != 0 || b.code != 0 || a.stdout != b.stdout || !regexp.MustCompile(`^hourglass \S+ .*go1\.\d+`).MatchString(a.stdout) || strings.Contains(a.stdout, "dev ") {
		t.Fatalf("version %q / --version %q", a.stdout, b.stdout)
	}
}

// TestE2EFailureMarkerInLocalFileName: a local file named noface.png makes
// the emulator fail the job, although the upload renames the file.
func TestE2EFailureMarkerInLocalFileName(t *testing.T) {
	t.Parallel()
	emu := newEmu(t)
	dir := t.TempDir()
	writeMedia(t, dir, "noface.png")
	writeMedia(t, dir, "team.png")
	r := hourglass(t, runOpts{dir: dir}, args([]string{"image", "face-swap", "--source", "noface.png", "--target", "team.png", "--json"}, api(emu))...)
	res := parseResult(t, r)
	if r.code != 1 || res.Error == nil || res.Error.Code != "no_source_face" {
		t.Fatalf("exit %d, %+v\n%s", r.code, res, r.stderr)
	}
	// A name given explicitly is kept.
	r = hourglass(t, runOpts{dir: dir}, args([]string{"image", "face-swap", "--source", "noface.png", "--target", "team.png", "--name", "mine", "--json"}, api(emu))...)
	if r.code != 0 {
		t.Fatalf("with --name: exit %d %s", r.code, r.stderr)
	}
}

func TestE2EIdenticalDownloadSkipped(t *testing.T) {
	t.Parallel()
	emu := newEmu(t)
	dir := t.TempDir()
	r := hourglass(t, runOpts{dir: dir}, args([]string{"image", "generate", "--prompt", "a cat", "--image-count", "1", "--json"}, api(emu))...)
	first := parseResult(t, r)
	again := hourglass(t, runOpts{dir: dir}, args([]string{"image", "download", first.ID}, api(emu))...)
	if again.code != 0 || !strings.Contains(again.stdout, "unchanged "+first.Outputs[0].Path) {
		t.Fatalf("second download: exit %d\n%s", again.code, again.stdout)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("want 1 file, got %d", len(entries))
	}
	// A different file under the name: kept, the new one saved as (2);
	// --overwrite replaces it.
	if err := os.WriteFile(filepath.Join(dir, first.Outputs[0].Path), []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = hourglass(t, runOpts{dir: dir}, args([]string{"image", "download", first.ID, "--json"}, api(emu))...)
	if p := parseResult(t, r).Outputs[0].Path; !strings.Contains(p, " (2).") {
		t.Fatalf("saved as %q, want a (2) name", p)
	}
	r = hourglass(t, runOpts{dir: dir}, args([]string{"image", "download", first.ID, "--overwrite", "--json"}, api(emu))...)
	if p := parseResult(t, r).Outputs[0].Path; p != first.Outputs[0].Path {
		t.Fatalf("--overwrite saved as %q", p)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, first.Outputs[0].Path)); string(b) == "edited" {
		t.Fatal("--overwrite did not replace the file")
	}
}

// TestE2EWaitUsesTheTool: wait ID expects the tool's median (from the
// project's type), scaled to the emulator's speed, not the kind's default.
func TestE2EWaitUsesTheTool(t *testing.T) {
	t.Parallel()
	// Speed 10: text-to-video (51s) takes ~5s, so the job is still running
	// when wait starts even on a loaded machine.
	emu := emulator.NewServer(t, emulator.WithSpeed(10))
	r := hourglass(t, runOpts{dir: t.TempDir()}, args([]string{"video", "from-text", "--prompt", "x", "--end", "5", "--no-wait"}, api(emu))...)
	if r.code != 0 {
		t.Fatalf("--no-wait: exit %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	w := hourglass(t, runOpts{dir: t.TempDir()}, args([]string{"video", "wait", id}, api(emu))...)
	// text-to-video's median is 51s: 5.1s at speed 10 (the video default
	// would be 2m, 12s at speed 10).
	if w.code != 0 || !regexp.MustCompile(`expected ~5\.1s`).MatchString(w.stderr) {
		t.Fatalf("exit %d; wait did not expect text-to-video's median at speed 10:\n%s", w.code, w.stderr)
	}
	if !strings.Contains(w.stdout, "text-to-video "+id+" complete") {
		t.Fatalf("stdout: %s", w.stdout)
	}
}

func TestE2EConfigProfiles(t *testing.T) {
	t.Parallel()
	emu := newEmu(t)
	cfg := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + cfg}
	hg := func(stdin string, argv ...string) run {
		t.Helper()
		return hourglass(t, runOpts{dir: t.TempDir(), env: env, stdin: strings.NewReader(stdin)}, argv...)
	}
	if r := hg("", "config", "set", "--profile", "local", "base_url", emu.URL); r.code != 0 {
		t.Fatalf("set: %d %s", r.code, r.stderr)
	}
	r := hg(emu.APIKey+"\n", "config", "set", "--profile", "local", "api-key") // value from stdin
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, emu.APIKey) {
		t.Fatalf("set api_key: %d %q %q", r.code, r.stdout, r.stderr)
	}
	file := filepath.Join(cfg, "hourglass", "config.toml")
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", err, st.Mode())
	}
	for _, argv := range [][]string{{"config", "get", "--profile", "local", "api_key"}, {"config", "list"}} {
		r := hg("", argv...)
		if r.code != 0 || strings.Contains(r.stdout, emu.APIKey) || !strings.Contains(r.stdout, "hidden") {
			t.Fatalf("%v: %d %q", argv, r.code, r.stdout)
		}
	}
	if r := hg("", "config", "get", "--profile", "local", "base_url"); strings.TrimSpace(r.stdout) != emu.URL {
		t.Fatalf("get base_url: %q", r.stdout)
	}
	// Not the default yet: no key.
	gen := []string{"image", "generate", "--prompt", "x", "--image-count", "1", "--no-download", "--json"}
	if r := hg("", gen...); r.code != 2 {
		t.Fatalf("without a profile: exit %d", r.code)
	}
	env2 := append(append([]string(nil), env...), "HOURGLASS_PROFILE=local")
	if r := hourglass(t, runOpts{dir: t.TempDir(), env: env2}, gen...); r.code != 0 {
		t.Fatalf("HOURGLASS_PROFILE: exit %d %s", r.code, r.stderr)
	}
	if r := hg("", "config", "use", "local"); r.code != 0 {
		t.Fatalf("use: %d %s", r.code, r.stderr)
	}
	if r := hg("", gen...); r.code != 0 || parseResult(t, r).Status != "complete" {
		t.Fatalf("default profile: exit %d %s", r.code, r.stderr)
	}
	if r := hg("", append(gen, "--profile", "nope")...); r.code != 2 || !strings.Contains(r.stderr, `no profile "nope"`) {
		t.Fatalf("unknown profile: %d %s", r.code, r.stderr)
	}
	// Bad input: wrong permissions, bad syntax, unknown key: a clear
	// message, exit 2, the file unchanged.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(file)
	for _, argv := range [][]string{gen, {"config", "list"}, {"config", "set", "base_url", "http://127.0.0.1:1"}} {
		if r := hg("", argv...); r.code != 2 || !strings.Contains(r.stderr, "chmod 600") {
			t.Fatalf("%v with 0644: exit %d %s", argv, r.code, r.stderr)
		}
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Fatal("the config file changed")
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("[profiles.local]\nbase_url = \"http://x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := hg("", gen...); r.code != 2 || !strings.Contains(r.stderr, "config.toml: line 2") {
		t.Fatalf("bad syntax: exit %d %s", r.code, r.stderr)
	}
	if err := os.WriteFile(file, []byte("[profiles.local]\napi_kee = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := hg("", "config", "list"); r.code != 2 || !strings.Contains(r.stderr, `unknown key "api_kee"`) {
		t.Fatalf("unknown key: exit %d %s", r.code, r.stderr)
	}
}
