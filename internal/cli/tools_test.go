package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/magichour"
)

func TestEveryToolHasACommand(t *testing.T) {
	root := NewRoot()
	root.InitDefaultCompletionCmd()
	docs, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range catalog.Creates() {
		name := commandName(op)
		cmd, _, err := root.Find([]string{string(op.Kind), name})
		if err != nil || cmd.Name() != name {
			t.Errorf("%s: no command %s %s", op.Name, op.Kind, name)
			continue
		}
		if alias, _, err := root.Find([]string{string(op.Kind), op.Name}); err != nil || alias != cmd {
			t.Errorf("%s: the tool name is not an alias of %s %s", op.Name, op.Kind, name)
		}
		if !strings.Contains(string(docs), fmt.Sprintf("| `%s %s` | %s |", op.Kind, name, op.Name)) {
			t.Errorf("docs/cli.md does not list `%s %s` (%s)", op.Kind, name, op.Name)
		}
	}
	for _, k := range []string{"image", "video", "audio"} {
		for _, sub := range []string{"get", "wait", "download", "delete"} {
			if c, _, err := root.Find([]string{k, sub}); err != nil || c.Name() != sub {
				t.Errorf("no %s %s", k, sub)
			}
		}
	}
	for _, path := range [][]string{{"files", "upload"}, {"faces", "detect"}, {"webhook", "listen"}, {"version"}, {"completion"}} {
		if c, _, err := root.Find(path); err != nil || c.Name() != path[len(path)-1] {
			t.Errorf("no %v", path)
		}
	}
}

func TestReadableNames(t *testing.T) {
	want := map[string]string{
		"ai-image-generator": "generate", "face-swap-photo": "face-swap", "face-swap": "face-swap",
		"lip-sync": "lip-sync", "ai-voice-generator": "speech", "ai-voice-cloner": "clone",
		"ai-gif-generator": "gif", "ai-image-upscaler": "upscale", "image-background-remover": "remove-background",
		"photo-colorizer": "colorize", "auto-subtitle-generator": "subtitles", "ai-headshot-generator": "headshot",
		"ai-image-editor": "edit", "ai-qr-code-generator": "qr-code", "ai-meme-generator": "meme",
		"ai-clothes-changer": "clothes", "ai-face-editor": "face-edit", "image-to-video": "from-image",
		"text-to-video": "from-text", "audio-to-video": "from-audio", "ai-video-editor": "edit",
		"ai-talking-photo": "talking-photo", "character-replace": "character-replace", "animation": "animate",
		"video-to-video": "style",
	}
	for tool, name := range want {
		op := catalog.Lookup(tool)
		if op == nil {
			t.Fatalf("no tool %s in the catalog", tool)
		}
		if got := commandName(op); got != name {
			t.Errorf("%s: command %q, want %q", tool, got, name)
		}
	}
}

func flagsOf(t *testing.T, tool string) map[string]*field {
	t.Helper()
	out := map[string]*field{}
	for _, f := range toolFields(catalog.Lookup(tool)) {
		out[f.Flag] = f
	}
	return out
}

func TestFlagNames(t *testing.T) {
	for _, op := range catalog.Creates() {
		seen := map[string]string{}
		for _, f := range toolFields(op) {
			if prev, dup := seen[f.Flag]; dup {
				t.Errorf("%s: --%s for both %s and %s", op.Name, f.Flag, prev, f.Path)
			}
			if reservedFlags[f.Flag] {
				t.Errorf("%s: --%s collides with a CLI flag", op.Name, f.Flag)
			}
			seen[f.Flag] = f.Path
		}
	}
	cases := map[string]map[string]string{
		"ai-image-generator":      {"prompt": "style.prompt", "image-count": "image_count", "tool": "style.tool"},
		"ai-image-upscaler":       {"image": "assets.image_file_path", "scale-factor": "scale_factor"},
		"lip-sync":                {"start": "start_seconds", "end": "end_seconds", "video": "assets.video_file_path", "audio": "assets.audio_file_path"},
		"face-swap":               {"face-mapping": "assets.face_mappings", "image": "assets.image_file_path"},
		"ai-image-editor":         {"image-file-paths": "assets.image_file_paths"},
		"auto-subtitle-generator": {"custom-config-font": "style.custom_config.font"},
		"ai-meme-generator":       {"search-web": "style.searchWeb"},
		"image-to-video":          {"end-image": "assets.end_image_file_path", "audio": "audio"},
	}
	for tool, want := range cases {
		got := flagsOf(t, tool)
		for flag, path := range want {
			if got[flag] == nil || got[flag].Path != path {
				t.Errorf("%s: --%s should set %s", tool, flag, path)
			}
		}
	}
	if !flagsOf(t, "ai-image-generator")["prompt"].Required || flagsOf(t, "ai-image-generator")["model"].Required {
		t.Error("required marks are wrong")
	}
}

func TestConvert(t *testing.T) {
	fs := flagsOf(t, "face-swap")
	v, err := fs["face-mapping"].convert("api-assets/x/0-0.png=me.png")
	if m, ok := v.(map[string]any); err != nil || !ok || m["original_face"] != "api-assets/x/0-0.png" || m["new_face"] != "me.png" {
		t.Fatalf("face mapping: %v %v", v, err)
	}
	if _, err := fs["face-mapping"].convert("nothing"); err == nil {
		t.Fatal("a mapping without = must fail")
	}
	cr := flagsOf(t, "character-replace")
	v, err = cr["point"].convert("position_x=1,position_y=2,time_seconds=0.5")
	if m, ok := v.(map[string]any); err != nil || !ok || fmt.Sprint(m["time_seconds"]) != "0.5" {
		t.Fatalf("point: %v %v", v, err)
	}
	if _, err := flagsOf(t, "lip-sync")["end"].convert("ten"); err == nil {
		t.Fatal("a bad number must fail")
	}
	if v, err := flagsOf(t, "text-to-video")["audio"].convert("true"); err != nil || v != true {
		t.Fatalf("bool: %v %v", v, err)
	}
}

// parse runs the root command in-process, without a key.
func parse(t *testing.T, argv ...string) (*cobra.Command, error) {
	t.Helper()
	root := NewRoot()
	root.SetArgs(argv)
	root.SetOut(&syncBuffer{})
	root.SetErr(&syncBuffer{})
	root.SetIn(strings.NewReader(""))
	t.Setenv("MAGIC_HOUR_API_KEY", "")
	err := root.ExecuteContext(context.Background())
	return root, err
}

func TestValidationMessagesNameFlags(t *testing.T) {
	cases := []struct {
		argv []string
		want []string
	}{
		{[]string{"video", "from-text", "--prompt", "x"}, []string{"missing required flag --end", "example: hourglass video from-text --end 5 --prompt"}},
		{[]string{"video", "from-text", "--prompt", "x", "--end", "5", "--resolution", "8k"}, []string{`invalid --resolution: must be one of "360p"`}},
		{[]string{"image", "face-edit", "--image", "https://example.com/a.png", "--mouth-smile", "7"}, []string{"invalid --mouth-smile: must be a multiple of 5"}},
		{[]string{"video", "lip-sync", "--start", "0", "--end", "1", "--audio", "https://example.com/a.mp3"}, []string{`missing required flag --video when video_source is "file"`}},
		{[]string{"video", "lip-sync", "--start", "0", "--end", "1", "--audio", "https://example.com/a.png"}, []string{"invalid --audio: unsupported file extension"}},
		{[]string{"video", "from-text", "--json-body", "{", "--end", "5"}, []string{"--json-body: not a JSON object"}},
		{[]string{"video", "from-text", "--param", "nokey"}, []string{"want key.path=value"}},
	}
	for _, c := range cases {
		_, err := parse(t, c.argv...)
		if ExitCode(err) != ExitUsage {
			t.Errorf("%v: exit %d (%v), want 2", c.argv, ExitCode(err), err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q lacks %q", c.argv, err, w)
			}
		}
	}
	// Valid requests get as far as the key check: a usage error naming --emulator.
	_, err := parse(t, "video", "from-text", "--prompt", "x", "--end", "5")
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--emulator") {
		t.Fatalf("no key: %v", err)
	}
}

func TestExitCodeClassification(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		err  error
		code int
	}{
		{&magichour.APIError{StatusCode: 401}, ExitAPI},
		{&magichour.APIError{StatusCode: 400}, ExitAPI},
		{fmt.Errorf("wrap: %w", &magichour.JobError{Code: "no_source_face"}), ExitJob},
		{&magichour.CanceledError{}, ExitJob},
		{&magichour.ValidationError{Tool: "x"}, ExitUsage},
		{fmt.Errorf("wait: %w", context.DeadlineExceeded), ExitInterrup},
		{fmt.Errorf("wait: %w", context.Canceled), ExitInterrup},
		{magichour.ErrCreateOutcomeUnknown, ExitAPI},
		{errors.New("dial tcp: connection refused"), ExitAPI},
	}
	for _, c := range cases {
		if got := ExitCode(apiError(ctx, c.err)); got != c.code {
			t.Errorf("%v: exit %d, want %d", c.err, got, c.code)
		}
	}
	if ExitCode(errors.New(`unknown command "x" for "hourglass"`)) != ExitUsage {
		t.Error("cobra usage errors are 2")
	}
	if ExitCode(errors.New("emulator: listen: address in use")) != ExitJob {
		t.Error("other errors are 1")
	}
	if ExitCode(nil) != ExitOK {
		t.Error("nil is 0")
	}
}
