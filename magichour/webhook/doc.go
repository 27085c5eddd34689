// Package webhook receives, verifies and parses Magic Hour webhook deliveries,
// and signs deliveries for senders (test harnesses, the gateway's own
// callbacks).
//
// # Wire format
//
// Magic Hour POSTs a JSON body
//
//	{"type": "<event>", "payload": <exactly the GET-project response>}
//
// where <event> is one of video.started, video.completed, video.errored,
// image.started, image.completed, image.errored, audio.started,
// audio.completed or audio.errored. There is no event for a canceled
// project (only polling detects it), and fast image jobs may skip
// image.started, so a receiver must accept completed without started.
//
// Two headers authenticate a delivery:
//
//	magic-hour-event-timestamp: <Unix seconds>
//	magic-hour-event-signature: <lowercase hex HMAC-SHA256>
//
// The signature is HMAC-SHA256 keyed with the webhook secret over the
// message "<timestamp>.<raw body>", where <timestamp> is the header's text
// and <raw body> the request body byte for byte as received. Never
// re-serialize the body before verifying it: any change of whitespace, key
// order or escaping invalidates the signature.
//
// # Receiving
//
// [NewHandler] returns an [http.Handler] that does everything: POST only,
// a body size limit, signature and timestamp verification, parsing, and
// de-duplication of repeated deliveries, then calls your function with the
// parsed [Event]. Lower-level pieces are available for other frameworks:
// [Verify] (or [VerifyAny] / [Verifier] for secret rotation) and [Parse].
//
// # Sending
//
// [Sign] computes a signature and [Headers] builds both headers for a body.
//
// This package deliberately does not import the parent magichour SDK package
// (which imports this one); it defines its own [Project] payload type.
package webhook
