package magichour_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/magichour"
)

// exampleSpeed runs the emulator (and the waits) 500 times faster than
// real time.
const exampleSpeed = 500

// startFlowEmulator starts an in-process emulator for the examples.
func startFlowEmulator(opts ...emulator.Option) *emulator.Server {
	srv, err := emulator.Listen(context.Background(), "127.0.0.1:0", append([]emulator.Option{emulator.WithSpeed(exampleSpeed)}, opts...)...)
	if err != nil {
		log.Fatal(err)
	}
	return srv
}

// Generate uploads the local input, creates the job, waits for it and
// saves the output.
func ExampleClient_Generate() {
	srv := startFlowEmulator()
	defer srv.Close()
	client, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "example-generate-")
	defer os.RemoveAll(dir)
	photo := filepath.Join(dir, "me.png")
	_ = os.WriteFile(photo, []byte("a photo"), 0o644)

	res, err := client.Generate(context.Background(), magichour.ToolImageBackgroundRemover,
		magichour.ImageBackgroundRemoverCreateParams{
			Assets: magichour.ImageBackgroundRemoverCreateParamsAssets{ImageFilePath: photo},
		},
		magichour.WithOutputDir(dir),
		magichour.WithProgress(magichour.Progress{
			Phase: func(p magichour.Phase) { fmt.Println("phase:", p) },
		}),
		magichour.WithWaitOptions(magichour.WithTimeScale(exampleSpeed)), // only because the emulator is sped up
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("uploaded:", strings.HasPrefix(res.Uploaded[photo], "api-assets/"))
	fmt.Println("status:", res.Project.Status)
	fmt.Println("saved:", filepath.Base(res.Files[0].Path) == res.Create.ID+"-0.png")
	// Output:
	// phase: check
	// phase: upload
	// phase: create
	// phase: wait
	// phase: download
	// uploaded: true
	// status: complete
	// saved: true
}

// Wait polls adaptively around the tool's median duration; Download
// saves every output without overwriting anything.
func ExampleClient_Wait() {
	srv := startFlowEmulator()
	defer srv.Close()
	client, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	job, err := client.AIImageGenerator.Create(ctx, magichour.AIImageGeneratorCreateParams{
		ImageCount: 2,
		Style:      magichour.AIImageGeneratorCreateParamsStyle{Prompt: "a lighthouse at dawn"},
	})
	if err != nil {
		log.Fatal(err)
	}
	project, err := client.Wait(ctx, job.Kind, job.ID,
		magichour.WithTool(magichour.ToolAIImageGenerator),
		magichour.WithTimeScale(exampleSpeed)) // only because the emulator is sped up
	if err != nil {
		log.Fatal(err) // a *JobError or *CanceledError says why the job did not complete
	}
	dir, _ := os.MkdirTemp("", "example-wait-")
	defer os.RemoveAll(dir)
	files, err := client.Download(ctx, project, dir)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range files {
		fmt.Println(f.Index, strings.TrimPrefix(filepath.Base(f.Path), project.ID))
	}
	// Output:
	// 0 -0.png
	// 1 -1.png
}

// A WebhookWaiter mounted on the webhook endpoint learns of finished jobs
// from Magic Hour's webhooks: no polling.
func ExampleWebhookWaiter() {
	const secret = "whsec_example"
	var waiter *magichour.WebhookWaiter
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		waiter.Handler(secret).ServeHTTP(w, r) // in a real server: mux.Handle("/webhooks/magichour", waiter.Handler(secret))
	}))
	defer endpoint.Close()
	srv := startFlowEmulator(emulator.WithWebhookURL(endpoint.URL), emulator.WithWebhookSecret(secret))
	defer srv.Close()
	client, err := magichour.NewClient(magichour.WithAPIKey(srv.APIKey), magichour.WithBaseURL(srv.URL))
	if err != nil {
		log.Fatal(err)
	}
	waiter = magichour.NewWebhookWaiter(client)

	ctx := context.Background()
	job, err := client.AIVoiceGenerator.Create(ctx, magichour.AIVoiceGeneratorCreateParams{
		Style: magichour.AIVoiceGeneratorCreateParamsStyle{Prompt: "Hello there", VoiceName: "Elon Musk"},
	})
	if err != nil {
		log.Fatal(err)
	}
	project, err := waiter.Wait(ctx, job.Kind, job.ID, magichour.WithTimeScale(exampleSpeed))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(project.Status, len(project.Downloads))
	fmt.Println("polls:", srv.Emulator.Stats().Polls[job.ID])
	// Output:
	// complete 1
	// polls: 0
}
