package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestEventTypeHelpers(t *testing.T) {
	if n := len(EventTypes()); n != 9 {
		t.Fatalf("EventTypes: %d", n)
	}
	kinds := map[Kind]int{}
	phases := map[Phase]int{}
	for _, e := range EventTypes() {
		if !e.Known() {
			t.Errorf("%s not Known", e)
		}
		kinds[e.Kind()]++
		phases[e.Phase()]++
		if string(e) != string(e.Kind())+"."+string(e.Phase()) {
			t.Errorf("%s: kind %q phase %q", e, e.Kind(), e.Phase())
		}
	}
	for _, k := range []Kind{KindVideo, KindImage, KindAudio} {
		if kinds[k] != 3 {
			t.Errorf("kind %s: %d events", k, kinds[k])
		}
	}
	for _, p := range []Phase{PhaseStarted, PhaseCompleted, PhaseErrored} {
		if phases[p] != 3 {
			t.Errorf("phase %s: %d events", p, phases[p])
		}
	}
	if EventVideoCompleted != "video.completed" || EventImageStarted != "image.started" || EventAudioErrored != "audio.errored" {
		t.Error("constant values")
	}
	for _, tt := range []struct {
		t     EventType
		kind  Kind
		phase Phase
		known bool
	}{
		{"video.canceled", KindVideo, "canceled", false},
		{"nodot", "", "", false},
		{"", "", "", false},
		{"a.b.c", "a", "b.c", false},
		{"VIDEO.COMPLETED", "VIDEO", "COMPLETED", false},
	} {
		if tt.t.Kind() != tt.kind || tt.t.Phase() != tt.phase || tt.t.Known() != tt.known {
			t.Errorf("%q: kind %q phase %q known %v", tt.t, tt.t.Kind(), tt.t.Phase(), tt.t.Known())
		}
	}
}

func TestEventFor(t *testing.T) {
	tests := []struct {
		k    Kind
		s    Status
		want EventType
		ok   bool
	}{
		{KindVideo, StatusRendering, EventVideoStarted, true},
		{KindVideo, StatusComplete, EventVideoCompleted, true},
		{KindImage, StatusError, EventImageErrored, true},
		{KindAudio, StatusComplete, EventAudioCompleted, true},
		{KindVideo, StatusCanceled, "", false},
		{KindVideo, StatusQueued, "", false},
		{KindVideo, StatusDraft, "", false},
		{"face-detection", StatusComplete, "", false},
	}
	for _, tt := range tests {
		got, ok := EventFor(tt.k, tt.s)
		if got != tt.want || ok != tt.ok {
			t.Errorf("EventFor(%s, %s) = %q, %v", tt.k, tt.s, got, ok)
		}
	}
	for _, s := range []Status{StatusComplete, StatusError, StatusCanceled} {
		if !s.Terminal() {
			t.Errorf("%s not terminal", s)
		}
	}
	for _, s := range []Status{StatusDraft, StatusQueued, StatusRendering, "unknown"} {
		if s.Terminal() {
			t.Errorf("%s terminal", s)
		}
	}
}

func TestParseVideo(t *testing.T) {
	e, err := Parse([]byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	p := e.Payload
	if e.Type != EventVideoCompleted || p.ID != "cm4abc123" || p.Name == nil || *p.Name != "My video" ||
		p.Status != StatusComplete || p.Type != "FACE_SWAP" || !p.Enabled || p.CreditsCharged != 450 {
		t.Errorf("common fields: %+v", p)
	}
	if !p.CreatedAt.Equal(time.Date(2024, 11, 20, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("created_at %v", p.CreatedAt)
	}
	if p.Width == nil || *p.Width != 512 || p.Height == nil || *p.Height != 512 ||
		p.StartSeconds == nil || *p.StartSeconds != 0 || p.EndSeconds == nil || *p.EndSeconds != 5.5 ||
		p.FPS == nil || *p.FPS != 30 || p.ImageCount != nil {
		t.Errorf("video fields: %+v", p)
	}
	if p.TotalFrameCost == nil || *p.TotalFrameCost != 450 || p.Download == nil || p.Download.URL != "https://videos.magichour.ai/id/output.mp4" {
		t.Errorf("deprecated fields: %+v", p)
	}
	if p.Error != nil || len(p.Downloads) != 1 || p.Downloads[0].URL != "https://videos.magichour.ai/id/output.mp4" ||
		!p.Downloads[0].ExpiresAt.Equal(time.Date(2024, 11, 21, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("downloads/error: %+v", p)
	}
	// Raw is the payload byte for byte, not aliasing the input.
	body := []byte(vecBody)
	e, _ = Parse(body)
	start := bytes.Index(body, []byte(`{"id"`))
	if want := body[start : len(body)-1]; !bytes.Equal(e.Raw, want) {
		t.Errorf("Raw = %s\nwant %s", e.Raw, want)
	}
	for i := range body {
		body[i] = 'x'
	}
	if !json.Valid(e.Raw) {
		t.Error("Raw aliases the body")
	}
}

func TestParseImageAudio(t *testing.T) {
	e, err := Parse([]byte(vec2Body))
	if err != nil {
		t.Fatal(err)
	}
	p := e.Payload
	if e.Type != EventImageErrored || p.Name != nil || p.ImageCount == nil || *p.ImageCount != 1 ||
		p.Width != nil || p.Download != nil || p.Error == nil || p.Error.Code != "no_source_face" ||
		p.Downloads == nil || len(p.Downloads) != 0 || p.Status != StatusError {
		t.Errorf("image payload: %+v", p)
	}
	audio := `{"type":"audio.completed","payload":{"id":"a1","name":"Voice","status":"complete","type":"VOICE_GENERATOR","created_at":"2025-01-02T03:04:05Z","enabled":true,"credits_charged":10,"downloads":[{"url":"https://x/a.mp3","expires_at":"2025-01-03T03:04:05Z"}],"error":null,"future_field":{"x":[1,2]}},"extra_top":1}`
	e, err = Parse([]byte(audio))
	if err != nil {
		t.Fatal(err)
	}
	if e.Type.Kind() != KindAudio || e.Payload.ID != "a1" || len(e.Payload.Downloads) != 1 || e.Payload.TotalFrameCost != nil {
		t.Errorf("audio payload: %+v", e.Payload)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty", ``, ErrMalformedBody},
		{"not json", `hello`, ErrMalformedBody},
		{"truncated", `{"type":"video.completed","payload":{"id":"x"}`, ErrMalformedBody},
		{"trailing data", `{"type":"video.completed","payload":{"id":"x"}} {}`, ErrMalformedBody},
		{"array", `[]`, ErrMalformedBody},
		{"null", `null`, ErrMalformedBody},
		{"string", `"video.completed"`, ErrMalformedBody},
		{"type not string", `{"type":1,"payload":{"id":"x"}}`, ErrMalformedBody},
		{"payload not object", `{"type":"video.completed","payload":"x"}`, ErrMalformedBody},
		{"payload array", `{"type":"video.completed","payload":[]}`, ErrMalformedBody},
		{"bad created_at", `{"type":"video.completed","payload":{"id":"x","created_at":"yesterday"}}`, ErrMalformedBody},
		{"bad width", `{"type":"video.completed","payload":{"id":"x","width":"wide"}}`, ErrMalformedBody},
		{"missing type", `{"payload":{"id":"x"}}`, ErrMissingType},
		{"null type", `{"type":null,"payload":{"id":"x"}}`, ErrMissingType},
		{"empty type", `{"type":"","payload":{"id":"x"}}`, ErrMissingType},
		{"missing payload", `{"type":"video.completed"}`, ErrMissingPayload},
		{"null payload", `{"type":"video.completed","payload":null}`, ErrMissingPayload},
		{"missing id", `{"type":"video.completed","payload":{"status":"complete"}}`, ErrMissingProjectID},
		{"empty id", `{"type":"video.completed","payload":{"id":""}}`, ErrMissingProjectID},
		{"unknown type", `{"type":"video.canceled","payload":{"id":"x"}}`, ErrUnknownEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse = %v, want %v", err, tt.want)
			}
			if tt.want == ErrUnknownEvent {
				if e == nil || e.Type != "video.canceled" || e.Payload.ID != "x" {
					t.Errorf("unknown event not returned: %+v", e)
				}
			} else if e != nil {
				t.Errorf("event returned with error: %+v", e)
			}
		})
	}
}

func TestProjectMarshalRoundTrip(t *testing.T) {
	e, err := Parse([]byte(vec2Body))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(e.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "name", "status", "image_count", "type", "created_at", "enabled", "credits_charged", "downloads", "error", "total_frame_cost"} {
		if _, ok := m[k]; !ok {
			t.Errorf("marshaled image payload lacks %q: %s", k, b)
		}
	}
	for _, k := range []string{"width", "fps", "download", "start_seconds"} {
		if _, ok := m[k]; ok {
			t.Errorf("marshaled image payload has video field %q: %s", k, b)
		}
	}
}
