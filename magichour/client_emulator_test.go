package magichour

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
)

func emulatorClient(t *testing.T, srv *emulator.Server, opts ...Option) *Client {
	t.Helper()
	return newTestClient(t, srv.URL, append([]Option{WithAPIKey(srv.APIKey)}, opts...)...)
}

func pollUntilTerminal(t *testing.T, c *Client, kind Kind, id string) *Project {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := c.GetProject(context.Background(), kind, id)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Terminal() {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("project %s still %s", id, p.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEmulatorCreateGetDelete(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(1000))
	c := emulatorClient(t, srv)
	ctx := context.Background()
	res, err := c.AIImageGenerator.Create(ctx, AIImageGeneratorCreateParams{
		ImageCount: 1,
		Style:      AIImageGeneratorCreateParamsStyle{Prompt: "a lighthouse at dawn"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kind != KindImage || res.ID == "" || res.CreditsCharged <= 0 {
		t.Errorf("res %+v", res)
	}
	p := pollUntilTerminal(t, c, KindImage, res.ID)
	if p.Status != StatusComplete || len(p.Downloads) == 0 || p.Downloads[0].URL == "" || p.Err() != nil {
		t.Errorf("project %+v", p)
	}
	if err := c.Image.Delete(ctx, res.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Video.Get(ctx, "no-such-project"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown project: %v", err)
	}
}

func TestEmulatorUploadThenCreate(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(1000))
	c := emulatorClient(t, srv)
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 4096)...)
	path := filepath.Join(t.TempDir(), "me.png")
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	fp, err := c.Files.Upload(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if st := srv.Emulator.Stats(); st.Uploads != 1 {
		t.Errorf("uploads = %d", st.Uploads)
	}
	res, err := c.AIHeadshotGenerator.Create(context.Background(), AIHeadshotGeneratorCreateParams{
		Assets: AIHeadshotGeneratorCreateParamsAssets{ImageFilePath: fp},
	})
	if err != nil {
		t.Fatal(err)
	}
	pollUntilTerminal(t, c, KindImage, res.ID)
}

func TestEmulatorErrors(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithCredits(0), emulator.WithAPIKeys("mhk_test_good"))
	ctx := context.Background()
	bad := newTestClient(t, srv.URL, WithAPIKey("mhk_live_wrong"))
	if _, err := bad.Video.Get(ctx, "x"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("bad key: %v", err)
	}
	c := emulatorClient(t, srv)
	_, err := c.AIImageGenerator.Create(ctx, AIImageGeneratorCreateParams{ImageCount: 1, Style: AIImageGeneratorCreateParamsStyle{Prompt: "x"}})
	if !errors.Is(err, ErrPaymentRequired) {
		t.Errorf("no credits: %v", err)
	}
}

// TestEmulatorAmbiguousCreate: the emulator creates the job and drops the
// connection; the client must not create a second one.
func TestEmulatorAmbiguousCreate(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithFaults(emulator.Faults{AmbiguousCreate: 1}))
	c := emulatorClient(t, srv, fastRetry(5))
	_, err := c.Create(context.Background(), ToolAIImageGenerator, imageBody)
	if !errors.Is(err, ErrCreateOutcomeUnknown) {
		t.Fatalf("err = %v", err)
	}
	if n := srv.Emulator.Stats().Creates; n != 1 {
		t.Fatalf("Stats().Creates = %d, want exactly 1", n)
	}
}

// TestEmulatorTransientFaults: creates and reads survive injected 502/503
// (and GETs also 500) without ever creating a duplicate job.
func TestEmulatorTransientFaults(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(1000), emulator.WithSeed(7),
		emulator.WithFaults(emulator.Faults{BadGateway: 0.3, Unavailable: 0.3}))
	c := emulatorClient(t, srv, fastRetry(20))
	ctx := context.Background()
	const n = 8
	for i := range n {
		res, err := c.Create(ctx, ToolAIImageGenerator, imageBody)
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		if _, err := c.Image.Get(ctx, res.ID); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	st := srv.Emulator.Stats()
	if st.Creates != n {
		t.Errorf("Stats().Creates = %d, want %d", st.Creates, n)
	}
	faults := st.Requests["POST /v1/ai-image-generator 502"] + st.Requests["POST /v1/ai-image-generator 503"]
	if faults == 0 {
		t.Errorf("no faults were injected: %v", st.Requests)
	}

	// GETs also retry 500s.
	if err := srv.Emulator.SetFaults(emulator.Faults{ServerError: 0.5}); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := c.Image.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get: %v", err)
		}
	}
}
