package magichour

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hourglasshq/hourglass/emulator"
)

func localInput(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("input bytes for "+name), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGenerateEachKind(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv)
	in := t.TempDir()
	face := localInput(t, in, "face.png")
	cases := []struct {
		tool   Tool
		params map[string]any
		ext    string
		upl    int
	}{
		{ToolFaceSwapPhoto, map[string]any{"assets": map[string]any{
			"source_file_path": face, "target_file_path": localInput(t, in, "target.jpg"), "face_swap_mode": "all-faces"}}, "png", 2},
		{ToolFaceSwap, map[string]any{"start_seconds": 0, "end_seconds": 5, "assets": map[string]any{
			"image_file_path": face, "video_file_path": localInput(t, in, "clip.mp4"), "video_source": "file", "face_swap_mode": "all-faces"}}, "mp4", 2},
		{ToolAIVoiceCloner, map[string]any{"style": map[string]any{"prompt": "hello"}, "assets": map[string]any{
			"audio_file_path": localInput(t, in, "voice.mp3")}}, "wav", 1},
		// A remote URL needs no upload.
		{ToolAIVoiceCloner, map[string]any{"style": map[string]any{"prompt": "hi"}, "assets": map[string]any{
			"audio_file_path": "https://example.com/voice.mp3"}}, "wav", 0},
	}
	for _, tc := range cases {
		t.Run(string(tc.tool), func(t *testing.T) {
			out := t.TempDir()
			var mu sync.Mutex
			var phases []Phase
			var created *CreateResponse
			res, err := c.Generate(context.Background(), tc.tool, tc.params,
				WithOutputDir(out), WithWaitOptions(WithTimeScale(flowSpeed)),
				WithProgress(Progress{
					Phase:   func(p Phase) { mu.Lock(); phases = append(phases, p); mu.Unlock() },
					Created: func(cr *CreateResponse) { created = cr },
				}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Project.Status != StatusComplete || res.Create != created || len(res.Files) != 1 || len(res.Uploaded) != tc.upl {
				t.Fatalf("result %+v", res)
			}
			if got := filepath.Base(res.Files[0].Path); got != res.Create.ID+"-0."+tc.ext {
				t.Errorf("saved as %s", got)
			}
			for local, fp := range res.Uploaded {
				if !strings.HasPrefix(fp, "api-assets/") || !strings.HasPrefix(local, in) {
					t.Errorf("uploaded %s -> %s", local, fp)
				}
			}
			want := []Phase{PhaseCheck, PhaseUpload, PhaseCreate, PhaseWait, PhaseDownload}
			if tc.upl == 0 {
				want = slices.Delete(want, 1, 2)
			}
			if !slices.Equal(phases, want) {
				t.Errorf("phases %v, want %v", phases, want)
			}
		})
	}
	// The same face used twice in face-swap-photo was uploaded once per job:
	// 2 + 2 + 1 uploads.
	if got := srv.Emulator.Stats().Uploads; got != 5 {
		t.Errorf("%d uploads, want 5", got)
	}
}

func TestGenerateRejectsBeforeSending(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv)
	in := t.TempDir()
	good := localInput(t, in, "ok.png")
	cases := []struct {
		name   string
		params map[string]any
		is     error
		say    []string
	}{
		{"unsupported", map[string]any{"assets": map[string]any{"source_file_path": localInput(t, in, "notes.txt"), "target_file_path": good}},
			ErrUnsupportedFile, []string{"assets.source_file_path", `"txt"`, "png"}},
		{"missing", map[string]any{"assets": map[string]any{"source_file_path": good, "target_file_path": filepath.Join(in, "nope.png")}},
			os.ErrNotExist, []string{"assets.target_file_path", "nope.png", "no such file"}},
		{"wrong media", map[string]any{"assets": map[string]any{"source_file_path": localInput(t, in, "a.mp4"), "target_file_path": good}},
			nil, []string{"assets.source_file_path", "video file", "takes image"}},
		{"invalid params", map[string]any{"assets": map[string]any{"source_file_path": good}},
			ErrInvalidRequest, []string{"target_file_path"}},
	}
	for _, tc := range cases {
		_, err := c.Generate(context.Background(), ToolFaceSwapPhoto, tc.params, WithOutputDir(t.TempDir()))
		var ge *GenerateError
		if !errors.As(err, &ge) || ge.Phase != PhaseCheck {
			t.Errorf("%s: err = %v, want a check-phase GenerateError", tc.name, err)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.is)
		}
		for _, s := range tc.say {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, s)
			}
		}
	}
	if _, err := c.Generate(context.Background(), "no-such-tool", nil); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("unknown tool: %v", err)
	}
	st := srv.Emulator.Stats()
	if st.Creates != 0 || st.Uploads != 0 || len(st.Requests) != 0 {
		t.Errorf("something was sent: %+v", st)
	}
}

func TestGenerateJobFailureAndNoWait(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(flowSpeed))
	c := flowClient(t, srv)
	in := t.TempDir()
	params := map[string]any{"name": "noface", "assets": map[string]any{
		"source_file_path": localInput(t, in, "s.png"), "target_file_path": localInput(t, in, "t.png")}}
	res, err := c.Generate(context.Background(), ToolFaceSwapPhoto, params, WithOutputDir(t.TempDir()), WithWaitOptions(WithTimeScale(flowSpeed)))
	var ge *GenerateError
	var je *JobError
	if !errors.As(err, &ge) || ge.Phase != PhaseWait || !errors.As(err, &je) || je.Code != "no_source_face" || ge.ProjectID != res.Create.ID {
		t.Fatalf("err = %v", err)
	}
	if res.Project == nil || res.Project.Status != StatusError || len(res.Uploaded) != 2 {
		t.Fatalf("result %+v", res)
	}

	res, err = c.Generate(context.Background(), ToolAIImageGenerator, map[string]any{"image_count": 1, "style": map[string]any{"prompt": "x"}}, WithNoWait())
	if err != nil || res.Create == nil || res.Project != nil {
		t.Fatalf("no-wait: %+v, %v", res, err)
	}
	out := t.TempDir()
	res, err = c.Generate(context.Background(), ToolAIImageGenerator, map[string]any{"image_count": 2, "style": map[string]any{"prompt": "x"}},
		WithNoDownload(), WithOutputDir(out), WithWaitOptions(WithTimeScale(flowSpeed)))
	if err != nil || res.Project.Status != StatusComplete || len(res.Files) != 0 || len(dirNames(t, out)) != 0 {
		t.Fatalf("no-download: %+v, %v", res, err)
	}
}

func TestGenerateWithWebhookWaiter(t *testing.T) {
	t.Parallel()
	rig := newHookRig(t, nil)
	res, err := rig.c.Generate(context.Background(), ToolAIImageGenerator, map[string]any{"image_count": 1, "style": map[string]any{"prompt": "x"}},
		WithWebhookWaiter(rig.w), WithOutputDir(t.TempDir()), WithWaitOptions(WithTimeScale(flowSpeed)))
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	if n := rig.srv.Emulator.Stats().Polls[res.Create.ID]; n != 0 {
		t.Errorf("%d polls with a webhook waiter", n)
	}
}
