package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hourglasshq/hourglass/magichour/webhook"
)

// A receiver: NewHandler verifies, parses and de-duplicates; the function
// sees only new, authentic events. A test sender signs with Headers.
func Example() {
	secret := "whsec_example" // from the Magic Hour dashboard, e.g. os.Getenv

	h := webhook.NewHandler(secret, func(ctx context.Context, e *webhook.Event) error {
		switch e.Type.Phase() {
		case webhook.PhaseCompleted:
			for _, d := range e.Payload.Downloads {
				fmt.Printf("%s %s ready: %s\n", e.Type.Kind(), e.Payload.ID, d.URL)
			}
		case webhook.PhaseErrored:
			fmt.Printf("%s failed: %s\n", e.Payload.ID, e.Payload.Error.Message)
		}
		return nil // a non-nil error answers 500: Magic Hour retries
	})
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/magichour", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// What Magic Hour sends.
	body := `{"type":"image.completed","payload":{"id":"img_1","name":null,"status":"complete","image_count":1,"type":"AI_HEADSHOT","created_at":"2025-01-01T00:00:00Z","enabled":true,"credits_charged":50,"downloads":[{"url":"https://images.magichour.ai/img_1/0.png","expires_at":"2025-01-02T00:00:00Z"}],"error":null}}`
	send := func(secret string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhooks/magichour", strings.NewReader(body))
		for k, v := range webhook.Headers(secret, time.Now(), []byte(body)) {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	send(secret)   // delivered
	send(secret)   // a repeat: acknowledged, not delivered again
	send("forged") // wrong secret
	// Output:
	// image img_1 ready: https://images.magichour.ai/img_1/0.png
	// 200 OK
	// 200 OK
	// 401 Unauthorized
}

// Verifying by hand, for frameworks that are not net/http: verify the raw
// body first, then parse it.
func ExampleVerify() {
	body := []byte(`{"type":"video.started","payload":{"id":"vid_1","status":"rendering"}}`)
	header := http.Header{}
	header.Set(webhook.HeaderTimestamp, "1700000000")
	header.Set(webhook.HeaderSignature, webhook.Sign("secret", time.Unix(1700000000, 0), body))
	now := time.Unix(1700000060, 0) // a minute later

	if err := webhook.Verify("secret", header, body, now); err != nil {
		fmt.Println("reject:", err)
		return
	}
	e, err := webhook.Parse(body)
	if err != nil {
		fmt.Println("bad body:", err)
		return
	}
	fmt.Println(e.Type, e.Payload.ID, e.Payload.Status)

	// Ten minutes later the same delivery is stale.
	fmt.Println(webhook.Verify("secret", header, body, now.Add(10*time.Minute)))
	// During a secret rotation, accept both secrets.
	fmt.Println(webhook.VerifyAny([]string{"new-secret", "secret"}, header, body, now))
	// Output:
	// video.started vid_1 rendering
	// webhook: timestamp out of range
	// <nil>
}
