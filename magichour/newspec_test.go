package magichour

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/hourglasshq/hourglass/emulator"
	"github.com/hourglasshq/hourglass/internal/catalog"
	"github.com/hourglasshq/hourglass/internal/catalog/catalogtest"
)

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		body   string
		want   error
		code   string
	}{
		{400, `{"code":"invalid_request","message":"bad"}`, ErrInvalidRequest, "invalid_request"},
		{401, `{"code":"unauthorized","message":"Unauthorized"}`, ErrUnauthorized, "unauthorized"},
		{402, `{"code":"insufficient_credits","message":"x"}`, ErrInsufficientCredits, "insufficient_credits"},
		{402, `{"code":"subscription_required","message":"x"}`, ErrSubscriptionRequired, "subscription_required"},
		{402, `{"code":"plan_upgrade_required","message":"x"}`, ErrPlanUpgradeRequired, "plan_upgrade_required"},
		{404, `{"code":"not_found","message":"Not Found"}`, ErrNotFound, "not_found"},
		{422, `{"code":"unprocessable_entity","message":"Unable to create video"}`, ErrUnprocessableEntity, "unprocessable_entity"},
		{500, `{"code":"internal_server_error","message":"x"}`, ErrInternalServerError, "internal_server_error"},
		// the old {message} shape matches by status
		{402, `{"message":"Not enough credits"}`, ErrInsufficientCredits, ""},
		{403, `{"message":"Forbidden"}`, ErrPlanUpgradeRequired, ""},
		{422, `{"message":"Unable to create video"}`, ErrUnprocessableEntity, ""},
		{404, `{"message":"Not Found"}`, ErrNotFound, ""},
	}
	for _, tt := range tests {
		e := newAPIError("POST", "/v1/x", &http.Response{StatusCode: tt.status, Header: http.Header{}}, []byte(tt.body))
		if !errors.Is(e, tt.want) || e.Code != tt.code {
			t.Errorf("%d %s: Is(%v) = %v, Code %q", tt.status, tt.body, tt.want, errors.Is(e, tt.want), e.Code)
		}
	}
	e := newAPIError("POST", "/v1/x", &http.Response{StatusCode: 402, Header: http.Header{}}, []byte(`{"code":"plan_upgrade_required","message":"x"}`))
	if errors.Is(e, ErrInsufficientCredits) || !errors.Is(e, ErrPaymentRequired) {
		t.Errorf("plan_upgrade_required matches insufficient credits or not 402: %v", e)
	}
}

// TestEveryOperationOfTheSpec runs each tool of the newest spec, with its
// example body, through Generate against the emulator: create, poll to
// complete, download.
func TestEveryOperationOfTheSpec(t *testing.T) {
	t.Parallel()
	srv := emulator.NewServer(t, emulator.WithSpeed(20000))
	c := emulatorClient(t, srv)
	for _, op := range catalog.Creates() {
		t.Run(op.Name, func(t *testing.T) {
			t.Parallel()
			res, err := c.Generate(context.Background(), Tool(op.Name), op.ExampleBody(), WithOutputDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			if res.Project.Status != StatusComplete || len(res.Files) == 0 {
				t.Fatalf("status %s, %d files", res.Project.Status, len(res.Files))
			}
		})
	}
}

func TestAccountTiersAndSavedItems(t *testing.T) {
	t.Parallel()
	var items []emulator.SavedItem
	for i := range 5 {
		items = append(items, emulator.SavedItem{ID: fmt.Sprint("item", i), Type: "character",
			Assets: []emulator.SavedItemAsset{{FilePath: fmt.Sprintf("saved-items/u/item%d/image.png", i), MediaKind: "IMAGE", IsPrimary: true}}})
	}
	items = append(items, emulator.SavedItem{ID: "voice", Type: "voice",
		Assets: []emulator.SavedItemAsset{{FilePath: "saved-items/u/voice/a.mp3", MediaKind: "AUDIO", IsPrimary: true}}})
	srv := emulator.NewServer(t, emulator.WithSpeed(20000), emulator.WithTier("free"), emulator.WithCredits(500), emulator.WithSavedItems(items))
	c := emulatorClient(t, srv)
	ctx := context.Background()

	a, err := c.Account.Get(ctx)
	if err != nil || a.Tier != AccountTierFree || a.Credits != 500 || a.Subscription != nil {
		t.Fatalf("account = %+v, %v", a, err)
	}

	// pagination: 5 characters, 2 per page
	var got []string
	for it, err := range c.SavedItems.List(ctx, SavedItemsParams{Type: "character", Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, it.ID)
		if len(it.Assets) != 1 || it.Assets[0].URL == "" {
			t.Fatalf("assets %+v", it.Assets)
		}
	}
	if strings.Join(got, ",") != "item0,item1,item2,item3,item4" {
		t.Errorf("listed %v", got)
	}
	if st := srv.Emulator.Stats(); st.Requests["GET /v1/saved-items 200"] != 3 {
		t.Errorf("pages fetched = %d, want 3", st.Requests["GET /v1/saved-items 200"])
	}

	// a tier rule of the spec, end to end
	_, err = c.AIVideoTranslator.Create(ctx, AIVideoTranslatorCreateParams{EndSeconds: 5, TargetLanguage: "Spanish",
		Resolution: Ptr(AIVideoTranslatorCreateParamsResolution720p), Assets: AIVideoTranslatorCreateParamsAssets{VideoFilePath: "https://cdn.example.com/v/123"}})
	var ae *APIError
	if !errors.Is(err, ErrPlanUpgradeRequired) || !errors.As(err, &ae) || ae.Code != CodePlanUpgradeRequired {
		t.Fatalf("free 720p translate: %v", err)
	}
	// saved-items, legacy and extension-less references reach the emulator and run
	for _, ref := range []string{"saved-items/u/item3/image.png", "image/legacy/photo.png", "https://cdn.example.com/img/42"} {
		res, err := c.Generate(ctx, ToolPhotoColorizer, map[string]any{"assets": map[string]any{"image_file_path": ref}}, WithNoDownload())
		if err != nil || res.Project.Status != StatusComplete {
			t.Fatalf("%s: %v", ref, err)
		}
	}
	if _, err := c.PhotoColorizer.Create(ctx, PhotoColorizerCreateParams{Assets: PhotoColorizerCreateParamsAssets{ImageFilePath: "saved-items/u/nope/x.png"}}); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("unknown saved item: %v", err)
	}
	// not enough credits, in the new shape
	srv.Emulator.SetBalance(0)
	if _, err := c.PhotoColorizer.Create(ctx, PhotoColorizerCreateParams{Assets: PhotoColorizerCreateParamsAssets{ImageFilePath: "image/a.png"}}); !errors.Is(err, ErrInsufficientCredits) {
		t.Errorf("no credits: %v", err)
	}
}

// TestExtraToolFromANewerSpec runs a tool only a newer spec has through the
// generic Create/Generate of a client and an emulator on that spec.
func TestExtraToolFromANewerSpec(t *testing.T) {
	t.Parallel()
	spec := catalogtest.ExtraSpec()
	cat, err := catalog.Load(spec)
	if err != nil {
		t.Fatal(err)
	}
	srv := emulator.NewServer(t, emulator.WithSpeed(20000), emulator.WithCatalog(cat))
	c := emulatorClient(t, srv, WithSpec(spec))
	ctx := context.Background()
	params := json.RawMessage(`{"style":{"prompt":"calm piano"},"assets":{"audio_file_path":"https://cdn.example.com/ref"}}`)
	res, err := c.Generate(ctx, Tool(catalogtest.ExtraTool), params, WithOutputDir(t.TempDir()))
	if err != nil || res.Create.Kind != KindAudio || len(res.Files) != 1 {
		t.Fatalf("generate extra tool: %+v %v", res, err)
	}
	img := map[string]any{"model": catalogtest.ExtraModel, "image_count": 1, "style": map[string]any{"prompt": "x"}}
	if _, err := c.Create(ctx, ToolAIImageGenerator, img); err != nil {
		t.Errorf("extra model: %v", err)
	}
	old := emulatorClient(t, srv)
	if _, err := old.Create(ctx, Tool(catalogtest.ExtraTool), params); !errors.Is(err, ErrInvalidRequest) {
		t.Errorf("built-in catalog accepted the extra tool: %v", err)
	}
	var ve *ValidationError
	if _, err := old.Create(ctx, ToolAIImageGenerator, img); !errors.As(err, &ve) || !strings.Contains(ve.Hint, "WithoutValidation()") {
		t.Errorf("old catalog refusal: %v", err)
	}
	if _, err := NewClient(WithAPIKey("k"), WithSpec([]byte(`{"swagger":"2.0"}`))); err == nil || !strings.Contains(err.Error(), "not OpenAPI 3") {
		t.Errorf("bad spec: %v", err)
	}
}
