package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// EventType is the "type" of a webhook delivery, "<kind>.<phase>", for
// example "video.completed".
type EventType string

// The event types Magic Hour sends.
const (
	EventVideoStarted   EventType = "video.started"
	EventVideoCompleted EventType = "video.completed"
	EventVideoErrored   EventType = "video.errored"
	EventImageStarted   EventType = "image.started"
	EventImageCompleted EventType = "image.completed"
	EventImageErrored   EventType = "image.errored"
	EventAudioStarted   EventType = "audio.started"
	EventAudioCompleted EventType = "audio.completed"
	EventAudioErrored   EventType = "audio.errored"
)

// EventTypes returns every event type Magic Hour sends, in a fixed order
// (video, image, audio; started, completed, errored).
func EventTypes() []EventType {
	return []EventType{
		EventVideoStarted, EventVideoCompleted, EventVideoErrored,
		EventImageStarted, EventImageCompleted, EventImageErrored,
		EventAudioStarted, EventAudioCompleted, EventAudioErrored,
	}
}

// Kind is the kind of project an event is about: the part of an
// [EventType] before the dot.
type Kind string

// The kinds of project that emit webhook events.
const (
	KindVideo Kind = "video"
	KindImage Kind = "image"
	KindAudio Kind = "audio"
)

// Phase is the step of a project's life an event reports: the part of an
// [EventType] after the dot.
type Phase string

// The phases that emit webhook events. There is no phase for a canceled
// project: Magic Hour sends no event when a job is canceled.
const (
	PhaseStarted   Phase = "started"   // queued to rendering; status "rendering"
	PhaseCompleted Phase = "completed" // status "complete"; downloads populated
	PhaseErrored   Phase = "errored"   // status "error"; error populated
)

// Kind returns the part of t before the first dot ("video" for
// "video.completed"), or "" if t has no dot. It does not check that t is
// known.
func (t EventType) Kind() Kind {
	k, _, ok := strings.Cut(string(t), ".")
	if !ok {
		return ""
	}
	return Kind(k)
}

// Phase returns the part of t after the first dot ("completed" for
// "video.completed"), or "" if t has no dot. It does not check that t is
// known.
func (t EventType) Phase() Phase {
	_, p, ok := strings.Cut(string(t), ".")
	if !ok {
		return ""
	}
	return Phase(p)
}

// Known reports whether t is one of the nine event types Magic Hour
// documents.
func (t EventType) Known() bool {
	switch t {
	case EventVideoStarted, EventVideoCompleted, EventVideoErrored,
		EventImageStarted, EventImageCompleted, EventImageErrored,
		EventAudioStarted, EventAudioCompleted, EventAudioErrored:
		return true
	}
	return false
}

// String returns t as a string.
func (t EventType) String() string { return string(t) }

// EventFor returns the event a project of kind k emits on entering status
// s: rendering gives started, complete gives completed and error gives
// errored. It returns false for other statuses (draft, queued, canceled emit
// nothing) and for unknown kinds. Senders use it to decide which callback
// to fire on a status transition.
func EventFor(k Kind, s Status) (EventType, bool) {
	switch k {
	case KindVideo, KindImage, KindAudio:
	default:
		return "", false
	}
	var p Phase
	switch s {
	case StatusRendering:
		p = PhaseStarted
	case StatusComplete:
		p = PhaseCompleted
	case StatusError:
		p = PhaseErrored
	default:
		return "", false
	}
	return EventType(string(k) + "." + string(p)), true
}

// Status is a project's status.
type Status string

// The project statuses. Terminal ones are complete, error and canceled.
const (
	StatusDraft     Status = "draft"
	StatusQueued    Status = "queued"
	StatusRendering Status = "rendering"
	StatusComplete  Status = "complete"
	StatusError     Status = "error"
	StatusCanceled  Status = "canceled"
)

// Terminal reports whether s is final: complete, error or canceled.
func (s Status) Terminal() bool {
	return s == StatusComplete || s == StatusError || s == StatusCanceled
}

// Project is the payload of a webhook: exactly what GET
// /v1/{video|image|audio}-projects/{id} returns. It holds the union of the
// fields of the three responses; the fields only some kinds carry are
// pointers, nil when the payload lacks them. Unknown fields are ignored, so
// fields Magic Hour adds later do not break parsing; [Event.Raw] keeps the
// payload byte for byte.
//
// Marshaling a Project omits nil kind-specific fields (including a video's
// null "download"); forward [Event.Raw] when the exact response matters.
type Project struct {
	// ID is the project id, as used with the GET and DELETE project routes.
	ID string `json:"id"`
	// Name is the project's name, nil when Magic Hour sent null.
	Name *string `json:"name"`
	// Status is the project's status at the time of the event.
	Status Status `json:"status"`
	// Type is the tool that made the project, for example "FACE_SWAP",
	// "AI_HEADSHOT" or "VOICE_GENERATOR".
	Type string `json:"type"`
	// CreatedAt is when the project was created.
	CreatedAt time.Time `json:"created_at"`
	// Enabled is false once the project has been deleted or disabled.
	Enabled bool `json:"enabled"`
	// CreditsCharged is the credits charged: an estimate until the job
	// completes, adjusted on completion, refunded (0) on error or cancel.
	CreditsCharged int `json:"credits_charged"`
	// Downloads holds the outputs of a completed project. The URLs expire
	// (about 24 h); a fresh GET of the project gives fresh ones.
	Downloads []Download `json:"downloads"`
	// Error says why the project failed, nil unless Status is "error".
	Error *ProjectError `json:"error"`

	// Width is the output width in pixels (video only).
	Width *int `json:"width,omitempty"`
	// Height is the output height in pixels (video only).
	Height *int `json:"height,omitempty"`
	// StartSeconds is where the output starts in the input (video only).
	StartSeconds *float64 `json:"start_seconds,omitempty"`
	// EndSeconds is where the output ends in the input (video only).
	EndSeconds *float64 `json:"end_seconds,omitempty"`
	// FPS is the output frame rate (video only).
	FPS *float64 `json:"fps,omitempty"`
	// ImageCount is the number of images the project makes (image only).
	ImageCount *int `json:"image_count,omitempty"`

	// TotalFrameCost is the cost in credits (video and image).
	//
	// Deprecated: use CreditsCharged. Magic Hour still sends it for old
	// clients; it is absent from the published spec.
	TotalFrameCost *int `json:"total_frame_cost,omitempty"`
	// Download is the first entry of Downloads, or nil (video only).
	//
	// Deprecated: use Downloads. Magic Hour still sends it for old clients;
	// it is absent from the published spec.
	Download *Download `json:"download,omitempty"`
}

// Download is one output of a completed project.
type Download struct {
	// URL is where to fetch the output. It expires at ExpiresAt.
	URL string `json:"url"`
	// ExpiresAt is when URL stops working.
	ExpiresAt time.Time `json:"expires_at"`
}

// ProjectError says why a project failed.
type ProjectError struct {
	// Code is a machine-readable reason, such as "no_source_face",
	// "invalid_video_file" or "unknown_error".
	Code string `json:"code"`
	// Message is a human-readable explanation.
	Message string `json:"message"`
}

// Event is one parsed webhook delivery.
type Event struct {
	// Type is the event, for example [EventVideoCompleted].
	Type EventType
	// Payload is the project as the GET-project route would return it.
	Payload Project
	// Raw is the "payload" member of the body exactly as received (the raw
	// GET-project response), for storing or forwarding without
	// re-serializing. It does not alias the body passed to [Parse].
	Raw json.RawMessage
	// Timestamp is the verified magic-hour-event-timestamp of the delivery.
	// [Handler] sets it; [Parse], which sees only the body, leaves it zero.
	// Deliveries may arrive out of order or more than once: compare
	// timestamps (or better, Payload.Status) rather than arrival order.
	Timestamp time.Time
}

// Errors returned by [Parse], wrapped with detail; test with [errors.Is].
var (
	// ErrMalformedBody means the body is not a JSON object of the expected
	// shape (not JSON, trailing data, or a field of the wrong type).
	ErrMalformedBody = errors.New("webhook: malformed body")
	// ErrMissingType means the body has no "type" or an empty one.
	ErrMissingType = errors.New("webhook: missing event type")
	// ErrMissingPayload means the body has no "payload" object.
	ErrMissingPayload = errors.New("webhook: missing payload")
	// ErrMissingProjectID means the payload has no "id" or an empty one.
	ErrMissingProjectID = errors.New("webhook: missing payload.id")
	// ErrUnknownEvent means the body is well formed but its type is not one
	// of the nine documented events. Parse still returns the parsed event
	// alongside this error.
	ErrUnknownEvent = errors.New("webhook: unknown event type")
)

// envelope is the top level of a delivery body.
type envelope struct {
	Type    *string         `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// Parse parses a webhook body. It does not verify the signature: call
// [Verify] on the same raw bytes first (or use [Handler], which does both).
//
// Errors wrap [ErrMalformedBody], [ErrMissingType], [ErrMissingPayload],
// [ErrMissingProjectID] or [ErrUnknownEvent]. Unknown fields are ignored
// at both levels.
//
// An event type Magic Hour may add later (say "video.canceled") is not
// rejected outright: when the body is otherwise well formed, Parse returns
// the fully parsed event together with an error wrapping [ErrUnknownEvent],
// so a caller can acknowledge and ignore it, or handle it anyway. For every
// other error the event is nil.
func Parse(body []byte) (*Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedBody, err)
	}
	// json.Unmarshal accepts a top-level null into a struct, leaving it zero;
	// insist on an object.
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrMalformedBody)
	}
	if env.Type == nil || *env.Type == "" {
		return nil, ErrMissingType
	}
	raw := bytes.TrimSpace(env.Payload)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, ErrMissingPayload
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("%w: payload is not a JSON object", ErrMalformedBody)
	}
	e := &Event{Type: EventType(*env.Type), Raw: env.Payload}
	if err := json.Unmarshal(raw, &e.Payload); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformedBody, err)
	}
	if e.Payload.ID == "" {
		return nil, ErrMissingProjectID
	}
	if !e.Type.Known() {
		return e, fmt.Errorf("%w: %q", ErrUnknownEvent, e.Type)
	}
	return e, nil
}
