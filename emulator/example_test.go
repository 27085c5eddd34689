package emulator_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/emulator"
)

// Example starts an emulator, creates an image, polls it and downloads it.
func Example() {
	ctx := context.Background()
	srv, err := emulator.Listen(ctx, "127.0.0.1:0", emulator.WithSpeed(1000), emulator.WithCredits(100))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	call := func(method, path, body string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		return resp
	}
	resp := call("POST", "/v1/ai-headshot-generator", `{"assets":{"image_file_path":"https://example.com/me.png"}}`)
	var created struct {
		ID             string `json:"id"`
		CreditsCharged int    `json:"credits_charged"`
	}
	_ = jsonDecode(resp.Body, &created)
	resp.Body.Close()
	fmt.Println("charged:", created.CreditsCharged)

	var project struct {
		Status    string `json:"status"`
		Downloads []struct {
			URL string `json:"url"`
		} `json:"downloads"`
	}
	for project.Status != "complete" {
		time.Sleep(10 * time.Millisecond)
		resp := call("GET", "/v1/image-projects/"+created.ID, "")
		_ = jsonDecode(resp.Body, &project)
		resp.Body.Close()
	}
	dl, err := http.Get(project.Downloads[0].URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	head := make([]byte, 4)
	_, _ = io.ReadFull(dl.Body, head)
	dl.Body.Close()
	fmt.Println("status:", project.Status, "content:", dl.Header.Get("Content-Type"), "magic:", string(head[1:4]))
	fmt.Println("balance:", srv.Emulator.Balance())
	// Output:
	// charged: 50
	// status: complete content: image/png magic: PNG
	// balance: 50
}
