package magichour_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/magichour"
)

// startEmulator runs an in-process emulator that finishes jobs 1000× faster
// than Magic Hour; the examples point the client at it.
func startEmulator() *emulator.Server {
	srv, err := emulator.Listen(context.Background(), "127.0.0.1:0", emulator.WithSpeed(1000))
	if err != nil {
		log.Fatal(err)
	}
	return srv
}

// waitDone polls a project until it is terminal. (The package's Wait helper
// does this with adaptive backoff; the examples poll by hand.)
func waitDone(ctx context.Context, c *magichour.Client, kind magichour.Kind, id string) (*magichour.Project, error) {
	for {
		p, err := c.GetProject(ctx, kind, id)
		if err != nil || p.Status.Terminal() {
			return p, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Create an image with a typed service, wait for it, and read its outputs.
func Example() {
	srv := startEmulator()
	defer srv.Close()
	ctx := context.Background()

	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.AIImageGenerator.Create(ctx, magichour.AIImageGeneratorCreateParams{
		Name:       magichour.Ptr("lighthouse"),
		ImageCount: 1,
		Style:      magichour.AIImageGeneratorCreateParamsStyle{Prompt: "a lighthouse at dawn, oil painting"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("kind:", res.Kind, "tool:", res.Tool)

	p, err := waitDone(ctx, c, res.Kind, res.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", p.Status)
	fmt.Println("outputs:", len(p.Downloads))
	// Output:
	// kind: image tool: ai-image-generator
	// status: complete
	// outputs: 1
}

// Upload a local file and use its file path in a create request.
func ExampleFilesService_Upload() {
	srv := startEmulator()
	defer srv.Close()
	ctx := context.Background()
	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	photo := filepath.Join(dir, "portrait.jpg")
	_ = os.WriteFile(photo, append([]byte{0xff, 0xd8, 0xff, 0xe0}, make([]byte, 2048)...), 0o600)

	var sent int64
	path, err := c.Files.Upload(ctx, photo, magichour.WithUploadProgress(func(done, total int64) { sent = done }))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("uploaded bytes:", sent)
	fmt.Println("file path is an asset:", strings.HasPrefix(path, "api-assets/"))

	res, err := c.AIHeadshotGenerator.Create(ctx, magichour.AIHeadshotGeneratorCreateParams{
		Assets: magichour.AIHeadshotGeneratorCreateParamsAssets{ImageFilePath: path},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", res.Tool)

	// Unsupported files fail before any request.
	_, err = c.Files.Upload(ctx, filepath.Join(dir, "notes.txt"))
	fmt.Println("txt rejected:", errors.Is(err, magichour.ErrUnsupportedFile))
	// Output:
	// uploaded bytes: 2052
	// file path is an asset: true
	// created: ai-headshot-generator
	// txt rejected: true
}

// The untyped Create takes any tool and a map (or raw JSON); requests are
// checked against the API spec before anything is sent.
func ExampleClient_Create() {
	srv := startEmulator()
	defer srv.Close()
	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Create(context.Background(), magichour.ToolAIImageGenerator, map[string]any{
		"image_count": 1,
		"style":       map[string]any{"prompt": ""},
	})
	var ve *magichour.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fmt.Println(f.Field+":", f.Message)
		}
	}
	fmt.Println("invalid request:", errors.Is(err, magichour.ErrInvalidRequest))
	fmt.Println("creates on the server:", srv.Emulator.Stats().Creates)
	// Output:
	// style.prompt: must not be empty
	// invalid request: true
	// creates on the server: 0
}

// API errors match sentinels with errors.Is and carry details in *APIError.
func ExampleAPIError() {
	srv := startEmulator()
	defer srv.Close()
	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Video.Get(context.Background(), "no-such-project")
	var apiErr *magichour.APIError
	if errors.As(err, &apiErr) {
		fmt.Println("status:", apiErr.StatusCode)
	}
	fmt.Println("not found:", errors.Is(err, magichour.ErrNotFound))
	// Output:
	// status: 404
	// not found: true
}

// A create whose outcome is unknown is never resubmitted automatically.
func ExampleErrCreateOutcomeUnknown() {
	srv := startEmulator()
	defer srv.Close()
	_ = srv.Emulator.SetFaults(emulator.Faults{AmbiguousCreate: 1}) // create the job, then drop the connection
	c, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Create(context.Background(), magichour.ToolAIImageGenerator, map[string]any{
		"image_count": 1, "style": map[string]any{"prompt": "a cat"},
	})
	fmt.Println("outcome unknown:", errors.Is(err, magichour.ErrCreateOutcomeUnknown))
	fmt.Println("jobs created:", srv.Emulator.Stats().Creates)
	// Output:
	// outcome unknown: true
	// jobs created: 1
}

// Tools lists every create endpoint with its project kind and median time.
func ExampleTools() {
	for _, t := range magichour.Tools()[:3] {
		fmt.Println(t, t.Kind(), t.P50())
	}
	// Output:
	// ai-clothes-changer image 13s
	// ai-face-editor image 3s
	// ai-gif-generator image 23s
}
